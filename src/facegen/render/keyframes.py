"""Interpolation between keyframes.

Keyframe k is drawn at frame ``length_1 + ... + length_(k-1)`` with exactly its own inputs; the frames up
to the next keyframe blend the two linearly in the limited input vectors and limit the blend again (with
``constrained=true`` that scales it back to unit length). Two yaws blend by angle, so 0 to 90 degrees
turns the head through 45; a free (sin, cos) pair blends component by component. The last keyframe is
held for its length, one frame when it has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from facegen.render.errors import RenderError
from facegen.render.inputs import FrameInputs, limit_orientation, limit_vectors, make_frame_inputs
from facegen.render.spec import INPUT_NAMES, RenderSpec
from facegen.render.values import Orientation, parse_mixture, parse_orientation


@dataclass
class KeyState:
    """A keyframe's limited inputs: (n,) identity and emotion vectors, a yaw or a free pair, and its length."""

    identity: torch.Tensor
    emotion: torch.Tensor
    orientation: Orientation
    length: int


def key_states(spec: RenderSpec, identity_names: Sequence[str], emotion_names: Sequence[str]) -> list[KeyState]:
    """Resolve each keyframe's values, carrying over the previous keyframe's (the first starts from the top-level values)."""
    current = {"identity": spec.identity, "emotion": spec.emotion, "orientation": spec.orientation}
    sources = {name: name for name in INPUT_NAMES}
    states = []
    for number, keyframe in enumerate(spec.keyframes, start=1):
        for name in INPUT_NAMES:
            if getattr(keyframe, name) is not None:
                current[name] = getattr(keyframe, name)
                sources[name] = f"keyframe {number} {name}"
            if current[name] is None:
                raise RenderError(f"keyframe {number} sets no {name} and the top-level {name} is null; set {name} in the first keyframe")

        settings = spec.inputs
        identity = parse_mixture(current["identity"], identity_names, "identity", sources["identity"])
        emotion = parse_mixture(current["emotion"], emotion_names, "emotion", sources["emotion"])
        orientation = parse_orientation(current["orientation"], spec.constrained, sources["orientation"])
        states.append(
            KeyState(
                identity=limit_vectors(identity[None], settings["identity"], spec.constrained, "identity")[0],
                emotion=limit_vectors(emotion[None], settings["emotion"], spec.constrained, "emotion")[0],
                orientation=limit_orientation(orientation, settings["orientation"]),
                length=keyframe.length or 1,
            )
        )
    return states


def blend_orientation(start: Orientation, end: Orientation, weight: float) -> Orientation:
    if not isinstance(start, tuple) and not isinstance(end, tuple):
        return start + weight * (end - start)
    start_pair, end_pair = (as_pair(value) for value in (start, end))
    return tuple(a + weight * (b - a) for a, b in zip(start_pair, end_pair))


def as_pair(value: Orientation) -> tuple[float, float]:
    if isinstance(value, tuple):
        return value
    radians = torch.deg2rad(torch.tensor(value, dtype=torch.float64))
    return (float(torch.sin(radians)), float(torch.cos(radians)))


def interpolate(spec: RenderSpec, identity_names: Sequence[str], emotion_names: Sequence[str]) -> FrameInputs:
    states = key_states(spec, identity_names, emotion_names)
    settings = spec.inputs
    identities, emotions, orientations = [], [], []
    for start, end in zip(states, states[1:]):
        for offset in range(start.length):
            if offset == 0:
                # The keyframe itself, unchanged by blending and re-limiting.
                identities.append(start.identity)
                emotions.append(start.emotion)
                orientations.append(start.orientation)
                continue
            weight = offset / start.length
            frame = len(identities)
            identity = torch.lerp(start.identity, end.identity, weight)
            emotion = torch.lerp(start.emotion, end.emotion, weight)
            identities.append(limit_vectors(identity[None], settings["identity"], spec.constrained, "identity", frame)[0])
            emotions.append(limit_vectors(emotion[None], settings["emotion"], spec.constrained, "emotion", frame)[0])
            orientations.append(limit_orientation(blend_orientation(start.orientation, end.orientation, weight), settings["orientation"]))

    last = states[-1]
    for _ in range(last.length):
        identities.append(last.identity)
        emotions.append(last.emotion)
        orientations.append(last.orientation)
    return make_frame_inputs(torch.stack(identities), torch.stack(emotions), orientations, settings)
