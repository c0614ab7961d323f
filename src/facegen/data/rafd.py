"""Radboud Faces Database (RaFD) folders, labelled by their file names.

A RaFD file name reads ``Rafd{angle}_{id}_{ethnicity}_{gender}_{emotion}_{gaze}.jpg``, for example
``Rafd090_01_Caucasian_female_angry_frontal.jpg``. The angle is the camera position (000, 045, 090,
135, 180 degrees, 090 frontal), so the face's yaw is ``angle - 90``. Child models carry ``Kid`` in the
ethnicity field.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from facegen.data.images import decode_images, list_images, validate_crop
from facegen.faceset import RAFD_EMOTIONS, DataError, FaceSet, one_hot_emotions

log = logging.getLogger(__name__)

CAMERA_ANGLES = (0, 45, 90, 135, 180)
GAZES = ("frontal", "left", "right")
GENDERS = ("male", "female")

_NAME = re.compile(
    r"^Rafd(?P<angle>\d{3})_(?P<model>\d+)_(?P<ethnicity>[A-Za-z]+)_(?P<gender>[A-Za-z]+)"
    r"_(?P<emotion>[A-Za-z]+)_(?P<gaze>[A-Za-z]+)\.(?:jpe?g|png)$",
    re.IGNORECASE,
)

# Default crop of the 681x1024 portrait photos, as fractions of width and height: trims the
# background border and the chest, keeps hair and chin, and is close to a 4:5 box.
DEFAULT_CROP = {"left": 0.07, "top": 0.12, "right": 0.93, "bottom": 0.83}


@dataclass(frozen=True)
class RafdName:
    """The labels in one RaFD file name."""

    camera_angle: int
    model_id: str
    ethnicity: str
    gender: str
    emotion: str
    gaze: str

    @property
    def yaw(self) -> float:
        return float(self.camera_angle - 90)

    @property
    def is_kid(self) -> bool:
        return self.ethnicity.lower() == "kid"


def parse_rafd_name(file_name: str) -> RafdName:
    """Parse a RaFD file name; raise DataError that shows the expected pattern when it does not fit."""
    match = _NAME.match(file_name)
    if match is None:
        raise DataError(
            f"{file_name!r} is not a RaFD file name; expected Rafd{{angle}}_{{id}}_{{ethnicity}}_{{gender}}_{{emotion}}_{{gaze}}.jpg, "
            "for example Rafd090_01_Caucasian_female_angry_frontal.jpg. Rename or remove it, or set data.on_bad_file=skip"
        )
    angle = int(match["angle"])
    if angle not in CAMERA_ANGLES:
        raise DataError(f"{file_name!r}: camera angle {match['angle']} is not one of 000, 045, 090, 135, 180")
    gender = match["gender"].lower()
    if gender not in GENDERS:
        raise DataError(f"{file_name!r}: gender {match['gender']!r} is not one of {', '.join(GENDERS)}")
    gaze = match["gaze"].lower()
    if gaze not in GAZES:
        raise DataError(f"{file_name!r}: gaze {match['gaze']!r} is not one of {', '.join(GAZES)}")
    return RafdName(
        camera_angle=angle,
        model_id=match["model"],
        ethnicity=match["ethnicity"],
        gender=gender,
        emotion=match["emotion"].lower(),
        gaze=gaze,
    )


class RafdSource:
    """Reads a RaFD folder; each filter is a setting, with the defaults of the 1s-S-deep face work:
    frontal gaze, adults only, every camera angle."""

    def __init__(
        self,
        root: str | Path,
        emotions: Sequence[str] = RAFD_EMOTIONS,
        camera_angles: Sequence[int] = CAMERA_ANGLES,
        gazes: Sequence[str] = ("frontal",),
        include_kids: bool = False,
        crop: Mapping[str, float] | None = None,
        on_bad_file: str = "error",
    ) -> None:
        self.root = Path(root).expanduser()
        self.emotions = list(emotions)
        self.camera_angles = [int(a) for a in camera_angles]
        self.gazes = [g.lower() for g in gazes]
        self.include_kids = include_kids
        self.crop = dict(DEFAULT_CROP if crop is None else crop)
        self.on_bad_file = on_bad_file
        self._selected: list[tuple[Path, RafdName]] | None = None
        validate_crop(self.crop)
        bad_angles = sorted(set(self.camera_angles) - set(CAMERA_ANGLES))
        if bad_angles:
            raise DataError(f"data.camera_angles has {bad_angles}; allowed camera angles are {list(CAMERA_ANGLES)}")
        bad_gazes = sorted(set(self.gazes) - set(GAZES))
        if bad_gazes:
            raise DataError(f"data.gazes has {bad_gazes}; allowed gazes are {list(GAZES)}")

    def _select(self) -> list[tuple[Path, RafdName]]:
        """Parse every image name and keep those that pass the filters; computed once per source."""
        if self._selected is None:
            self._selected = self._parse_and_filter()
        return self._selected

    def _parse_and_filter(self) -> list[tuple[Path, RafdName]]:
        selected = []
        skipped = []
        for path in list_images(self.root):
            try:
                name = parse_rafd_name(path.name)
                if name.emotion not in self.emotions:
                    raise DataError(
                        f"{path}: unknown emotion {name.emotion!r}; allowed emotions are {', '.join(self.emotions)}"
                    )
            except DataError as error:
                if self.on_bad_file != "skip":
                    raise DataError(f"{self.root}: {error}") from error
                skipped.append(str(error))
                continue
            if name.is_kid and not self.include_kids:
                continue
            if name.camera_angle in self.camera_angles and name.gaze in self.gazes:
                selected.append((path, name))
        if skipped:
            log.warning("skipped %d file(s) whose names do not parse (data.on_bad_file=skip):\n  %s", len(skipped), "\n  ".join(skipped))
        if not selected:
            raise DataError(
                f"no RaFD images in {self.root} pass the filters camera_angles={self.camera_angles}, "
                f"gazes={self.gazes}, include_kids={self.include_kids}; widen them or check data.root"
            )
        return selected

    def fingerprint(self) -> dict:
        """Describe the files and settings that determine the decoded set, for the cache key."""
        files = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p, _ in self._select()]
        return {
            "source": "rafd",
            "root": str(self.root.resolve()),
            "files": files,
            "emotions": self.emotions,
            "crop": self.crop,
            "on_bad_file": self.on_bad_file,
        }

    def load(self, width: int, height: int, channels: int) -> FaceSet:
        selected = self._select()
        images, kept = decode_images([p for p, _ in selected], channels, width, height, self.crop, self.on_bad_file)
        selected = [selected[i] for i in kept]

        # Number identities contiguously by model id, so names and indices stay stable across runs.
        model_ids = sorted({name.model_id for _, name in selected}, key=lambda m: (int(m), m))
        identity_index = {m: i for i, m in enumerate(model_ids)}
        present = {name.emotion for _, name in selected}
        emotion_names = [e for e in self.emotions if e in present]
        files = [str(p) for p, _ in selected]
        return FaceSet(
            images=images,
            identities=torch.tensor([identity_index[name.model_id] for _, name in selected], dtype=torch.long),
            emotions=one_hot_emotions([name.emotion for _, name in selected], emotion_names, files),
            yaws=torch.tensor([name.yaw for _, name in selected], dtype=torch.float32),
            identity_names=model_ids,
            emotion_names=emotion_names,
            files=files,
        )
