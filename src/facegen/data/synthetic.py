"""Procedural cartoon faces whose identity, emotion and yaw are known exactly.

Needs no files and is deterministic for a seed, so it is the embedded default data set. Identity sets face
shape, skin tone, eye spacing, eye colour and hair. Emotion moves brows, eyes and mouth. Yaw rotates the
head as a sphere, so features slide and foreshorten and one ear shows. Faces are drawn at 4x the target
size and downsampled for smooth edges.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw

from facegen.faceset import RAFD_EMOTIONS, DataError, FaceSet

SUPERSAMPLE = 4
# Part of the cache key: bump it whenever a change to the drawing code changes the pictures.
RENDERER_VERSION = 2
BACKGROUND = (236, 236, 232)


@dataclass(frozen=True)
class Expression:
    """Feature settings for one emotion; zero is the relaxed face."""

    brow_raise: float = 0.0  # whole brow up (+) or down (-), in face radii x 0.1
    brow_tilt: float = 0.0  # inner end up (+, sad/fearful) or down (-, angry)
    eye_open: float = 1.0  # eyelid opening, 1 = relaxed
    mouth_curve: float = 0.0  # corners up (+) or down (-)
    mouth_open: float = 0.0  # lip gap, 0 = closed
    mouth_width: float = 1.0
    smirk: float = 0.0  # raises one mouth corner only
    brow_skew: float = 0.0  # raises the brow on the same side as the smirk
    teeth: bool = False
    nose_wrinkle: bool = False


EXPRESSIONS = {
    "angry": Expression(brow_raise=-0.6, brow_tilt=-1.0, eye_open=0.75, mouth_curve=-0.35, mouth_width=0.8),
    "contemptuous": Expression(eye_open=0.8, smirk=1.8, brow_skew=0.9, mouth_width=0.9),
    "disgusted": Expression(brow_raise=-0.3, brow_tilt=-0.3, eye_open=0.45, mouth_curve=-0.9, mouth_open=0.35, mouth_width=1.0, nose_wrinkle=True),
    "fearful": Expression(brow_raise=0.6, brow_tilt=1.3, eye_open=1.45, mouth_curve=-0.6, mouth_open=0.35, mouth_width=1.4),
    "happy": Expression(eye_open=0.8, mouth_curve=1.0, mouth_open=0.45, mouth_width=1.2, teeth=True),
    "neutral": Expression(),
    "sad": Expression(brow_raise=0.2, brow_tilt=1.0, eye_open=0.75, mouth_curve=-0.8, mouth_width=0.9),
    "surprised": Expression(brow_raise=1.5, eye_open=1.6, mouth_open=1.3, mouth_width=0.55),
}

SKIN_TONES = ((255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 90), (141, 85, 54), (95, 58, 38))
HAIR_COLOURS = ((30, 24, 20), (80, 50, 30), (150, 100, 50), (210, 170, 90), (120, 120, 118), (170, 60, 30))
EYE_COLOURS = ((60, 40, 25), (50, 90, 140), (70, 110, 60), (90, 70, 50))


@dataclass(frozen=True)
class Identity:
    """The fixed look of one synthetic person."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    eye_colour: tuple[int, int, int]
    face_width: float  # half-width as a fraction of the canvas's shorter side
    face_height: float
    eye_spacing: float  # eye longitude in degrees from the face's midline
    hair_style: int  # 0 short, 1 long, 2 receding, 3 fringe
    nose_length: float


def make_identity(seed: int, index: int) -> Identity:
    rng = np.random.default_rng([seed, index])
    return Identity(
        skin=SKIN_TONES[rng.integers(len(SKIN_TONES))],
        hair=HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
        eye_colour=EYE_COLOURS[rng.integers(len(EYE_COLOURS))],
        face_width=float(rng.uniform(0.26, 0.34)),
        face_height=float(rng.uniform(0.34, 0.41)),
        eye_spacing=float(rng.uniform(22.0, 34.0)),
        hair_style=int(rng.integers(4)),
        nose_length=float(rng.uniform(0.10, 0.18)),
    )


class _Head:
    """Projects points on a sphere-like head, given by longitude (degrees) and height, to the canvas."""

    def __init__(self, cx: float, cy: float, rx: float, ry: float, yaw: float) -> None:
        self.cx, self.cy, self.rx, self.ry, self.yaw = cx, cy, rx, ry, yaw

    def x(self, longitude: float, depth: float = 1.0) -> float:
        return self.cx + depth * self.rx * math.sin(math.radians(longitude + self.yaw))

    def facing(self, longitude: float) -> float:
        """Foreshortening of a feature at ``longitude``: 1 facing the camera, <= 0 hidden."""
        return math.cos(math.radians(longitude + self.yaw))

    def y(self, height: float) -> float:
        return self.cy + height * self.ry


def _draw_hair(draw: ImageDraw.ImageDraw, head: _Head, who: Identity, back: bool) -> None:
    cx, cy, rx, ry = head.cx, head.cy, head.rx, head.ry
    # The back of the head shows on the side away from where the face turns.
    shift = -math.sin(math.radians(head.yaw)) * rx * 0.35
    if back and who.hair_style == 1:
        draw.ellipse([cx - rx * 1.18 + shift, cy - ry * 1.12, cx + rx * 1.18 + shift, cy + ry * 1.15], fill=who.hair)
    elif back:
        draw.ellipse([cx - rx * 1.06 + shift, cy - ry * 1.10, cx + rx * 1.06 + shift, cy + ry * 0.35], fill=who.hair)
    elif who.hair_style in (0, 1, 3):
        top = cy - ry * 1.10
        bottom = cy - ry * (0.45 if who.hair_style == 3 else 0.62)
        draw.chord([cx - rx * 1.05 + shift * 0.5, top, cx + rx * 1.05 + shift * 0.5, bottom + (bottom - top)], 180, 360, fill=who.hair)
    else:
        draw.chord([cx - rx * 0.95 + shift * 0.5, cy - ry * 1.06, cx + rx * 0.95 + shift * 0.5, cy - ry * 0.30], 200, 340, fill=who.hair)


def _draw_eye(draw: ImageDraw.ImageDraw, head: _Head, who: Identity, face: Expression, side: int, unit: float) -> None:
    longitude = side * who.eye_spacing
    facing = head.facing(longitude)
    if facing <= 0.05:
        return
    x, y = head.x(longitude), head.y(-0.12)
    half_w = 0.075 * unit * facing
    half_h = 0.035 * unit * face.eye_open
    draw.ellipse([x - half_w, y - half_h, x + half_w, y + half_h], fill=(250, 250, 250), outline=(40, 30, 30), width=max(1, int(unit * 0.008)))
    iris = min(half_h, 0.032 * unit) * 0.95
    draw.ellipse([x - iris * facing, y - iris, x + iris * facing, y + iris], fill=who.eye_colour)
    pupil = iris * 0.45
    draw.ellipse([x - pupil * facing, y - pupil, x + pupil * facing, y + pupil], fill=(10, 10, 10))

    # Brow: ``side`` is -1 for the face's right eye (canvas left), so the inner end is at the midline side.
    brow_y = head.y(-0.30 - 0.08 * (face.brow_raise + face.brow_skew * max(side, 0)))
    inner_lift = 0.07 * face.brow_tilt * unit
    outer_x, inner_x = head.x(longitude + side * 16), head.x(longitude - side * 14)
    draw.line([(outer_x, brow_y), (inner_x, brow_y - inner_lift)], fill=tuple(int(c * 0.6) for c in who.hair), width=max(1, int(unit * 0.022)))


def _draw_mouth(draw: ImageDraw.ImageDraw, head: _Head, face: Expression, unit: float) -> None:
    width_degrees = 26.0 * face.mouth_width
    y0 = head.y(0.48)
    curve = 0.06 * unit
    gap = 0.09 * unit * face.mouth_open
    upper, lower = [], []
    for t in np.linspace(-1.0, 1.0, 25):
        longitude = t * width_degrees
        if head.facing(longitude) <= 0:
            continue
        lift = face.mouth_curve * curve * t * t + face.smirk * curve * max(t, 0.0) ** 2 * 1.4
        x = head.x(longitude)
        upper.append((x, y0 - lift))
        lower.append((x, y0 - lift + gap * (1 - t * t)))
    if len(upper) < 2:
        return
    if face.mouth_open > 0.05:
        draw.polygon(upper + lower[::-1], fill=(110, 30, 40), outline=(150, 60, 60))
        if face.teeth:
            teeth = [(x, y + 0.35 * (ly - y)) for (x, y), (_, ly) in zip(upper, lower)]
            draw.polygon(upper + teeth[::-1], fill=(245, 245, 240))
    else:
        draw.line(upper, fill=(150, 60, 60), width=max(1, int(unit * 0.018)), joint="curve")


def render_face(who: Identity, emotion: str, yaw: float, width: int, height: int) -> Image.Image:
    """Draw one face as an RGB image of ``width`` x ``height`` pixels."""
    face = EXPRESSIONS[emotion]
    canvas_w, canvas_h = width * SUPERSAMPLE, height * SUPERSAMPLE
    unit = min(canvas_w, canvas_h)
    image = Image.new("RGB", (canvas_w, canvas_h), BACKGROUND)
    draw = ImageDraw.Draw(image)
    head = _Head(canvas_w / 2, canvas_h * 0.52, who.face_width * unit, who.face_height * unit, yaw)
    line = max(1, int(unit * 0.01))

    # Neck and shoulders, then hair behind the head, ears, the face, hair on top.
    draw.rectangle([head.cx - head.rx * 0.45, head.cy + head.ry * 0.6, head.cx + head.rx * 0.45, canvas_h], fill=tuple(int(c * 0.9) for c in who.skin))
    draw.ellipse([head.cx - head.rx * 1.8, head.cy + head.ry * 1.15, head.cx + head.rx * 1.8, head.cy + head.ry * 2.6], fill=(70, 80, 110))
    _draw_hair(draw, head, who, back=True)
    for side in (-1, 1):
        facing = head.facing(side * 90)
        if facing > -0.35:
            ex = head.x(side * 90, depth=1.02)
            ear_w = head.rx * 0.16 * (1.0 - 0.5 * max(facing, 0))
            draw.ellipse([ex - ear_w, head.y(-0.22), ex + ear_w, head.y(0.18)], fill=tuple(int(c * 0.93) for c in who.skin), outline=(120, 80, 60), width=line)
    draw.ellipse([head.cx - head.rx, head.cy - head.ry, head.cx + head.rx, head.cy + head.ry], fill=who.skin, outline=(120, 80, 60), width=line)
    _draw_hair(draw, head, who, back=False)

    for side in (-1, 1):
        _draw_eye(draw, head, who, face, side, unit)

    # Nose: bridge on the face, tip standing off the sphere so it swings further than the eyes.
    bridge = (head.x(0), head.y(-0.05))
    tip = (head.x(0, depth=1.0 + who.nose_length * 0.9), head.y(0.22 + who.nose_length * 0.3))
    base = (head.x(0), head.y(0.28))
    draw.line([bridge, tip, base], fill=tuple(int(c * 0.7) for c in who.skin), width=max(1, int(unit * 0.014)), joint="curve")
    if face.nose_wrinkle:
        for dy in (-0.02, 0.02):
            draw.line([(head.x(-10), head.y(0.02 + dy)), (head.x(10), head.y(0.02 + dy))], fill=tuple(int(c * 0.6) for c in who.skin), width=line)

    _draw_mouth(draw, head, face, unit)
    return image.resize((width, height), Image.Resampling.LANCZOS)


class SyntheticSource:
    """A procedural face set: every identity with every emotion at ``yaws_per_face`` seeded random yaws."""

    def __init__(
        self,
        num_identities: int = 12,
        emotions: Sequence[str] = RAFD_EMOTIONS,
        yaws_per_face: int = 3,
        yaw_range: Sequence[float] = (-60.0, 60.0),
        seed: int = 0,
    ) -> None:
        unknown = [e for e in emotions if e not in EXPRESSIONS]
        if unknown:
            raise DataError(f"data.emotions has {unknown}; the synthetic renderer draws {', '.join(EXPRESSIONS)}")
        if num_identities < 1 or yaws_per_face < 1:
            raise DataError(f"data.num_identities and data.yaws_per_face must be at least 1, got {num_identities} and {yaws_per_face}")
        low, high = (float(v) for v in yaw_range)
        if not -90.0 <= low <= high <= 90.0:
            raise DataError(f"data.yaw_range={list(yaw_range)} must satisfy -90 <= low <= high <= 90 degrees")
        self.num_identities = num_identities
        self.emotions = list(emotions)
        self.yaws_per_face = yaws_per_face
        self.yaw_range = (low, high)
        self.seed = seed

    def fingerprint(self) -> dict:
        return {
            "source": "synthetic",
            "renderer_version": RENDERER_VERSION,
            "num_identities": self.num_identities,
            "emotions": self.emotions,
            "yaws_per_face": self.yaws_per_face,
            "yaw_range": self.yaw_range,
            "seed": self.seed,
        }

    def load(self, width: int, height: int, channels: int) -> FaceSet:
        rng = np.random.default_rng(self.seed)
        people = [make_identity(self.seed, i) for i in range(self.num_identities)]
        images, identities, emotions, yaws = [], [], [], []
        for identity, who in enumerate(people):
            for emotion_index, emotion in enumerate(self.emotions):
                for yaw in rng.uniform(*self.yaw_range, size=self.yaws_per_face):
                    picture = render_face(who, emotion, float(yaw), width, height)
                    if channels == 1:
                        picture = picture.convert("L")
                    array = np.asarray(picture, dtype=np.uint8).reshape(height, width, channels)
                    images.append(torch.from_numpy(array.copy()).permute(2, 0, 1))
                    identities.append(identity)
                    emotions.append(emotion_index)
                    yaws.append(float(yaw))
        return FaceSet(
            images=torch.stack(images),
            identities=torch.tensor(identities, dtype=torch.long),
            emotions=torch.nn.functional.one_hot(torch.tensor(emotions), len(self.emotions)).float(),
            yaws=torch.tensor(yaws, dtype=torch.float32),
            identity_names=[f"synthetic_{i:02d}" for i in range(self.num_identities)],
            emotion_names=list(self.emotions),
            files=[],
        )
