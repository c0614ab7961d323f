"""Any labelled folder of faces, described by a CSV manifest.

The manifest has the columns ``file`` (relative to the folder), ``identity``, ``emotion`` and an optional
``orientation`` (yaw in degrees, default 0). Other columns are ignored.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from facegen.data.images import decode_images, describe_path, validate_crop
from facegen.faceset import RAFD_EMOTIONS, DataError, FaceSet, one_hot_emotions

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("file", "identity", "emotion")


def _identity_order(name: str) -> tuple:
    """Sort numeric identity names by value ("2" before "10") and others alphabetically."""
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


class ManifestSource:
    """Reads the images that a CSV manifest lists, with their identity, emotion and orientation labels."""

    def __init__(
        self,
        root: str | Path,
        manifest: str = "labels.csv",
        emotions: Sequence[str] = RAFD_EMOTIONS,
        crop: Mapping[str, float] | None = None,
        on_bad_file: str = "error",
    ) -> None:
        self.root = Path(root).expanduser()
        self.manifest = self.root / manifest
        self.emotions = [e.lower() for e in emotions]
        self.crop = dict(crop) if crop else None
        self.on_bad_file = on_bad_file
        validate_crop(self.crop)

    def _rows(self) -> list[dict]:
        """Read and check the manifest rows; raise DataError naming the file, line and value."""
        if not self.root.is_dir():
            raise DataError(f"data folder not found: {describe_path(self.root)}; set data.root to the folder that holds {self.manifest.name}")
        if not self.manifest.is_file():
            raise DataError(f"manifest not found: {self.manifest}; create it with columns {', '.join(REQUIRED_COLUMNS)} or set data.manifest")
        with open(self.manifest, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = [c.strip() for c in reader.fieldnames or []]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise DataError(f"{self.manifest}: missing column(s) {', '.join(missing)}; the header is {columns}")
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
                rows.append(self._check_row(row, line))
        if not rows:
            raise DataError(f"{self.manifest} lists no images; add one row per image")
        return rows

    def _check_row(self, row: dict, line: int) -> dict:
        where = f"{self.manifest}, line {line}"
        for column in REQUIRED_COLUMNS:
            if not row.get(column):
                raise DataError(f"{where}: the {column!r} column is empty")
        row["emotion"] = row["emotion"].lower()
        if row["emotion"] not in self.emotions:
            raise DataError(
                f"{where}: unknown emotion {row['emotion']!r}; allowed emotions are {', '.join(self.emotions)}. "
                "Fix the label, or list it in data.emotions"
            )
        orientation = row.get("orientation") or "0"
        try:
            row["yaw"] = float(orientation)
        except ValueError:
            raise DataError(f"{where}: orientation {orientation!r} is not a number of degrees") from None
        row["path"] = self.root / row["file"]
        row["where"] = where
        return row

    def fingerprint(self) -> dict:
        rows = self._rows()
        files = []
        for row in rows:
            path = row["path"]
            stat = path.stat() if path.exists() else None
            files.append((row["file"], row["identity"], row["emotion"], row["yaw"], stat and stat.st_size, stat and stat.st_mtime_ns))
        return {
            "source": "manifest",
            "manifest": str(self.manifest.resolve()),
            "files": files,
            "emotions": self.emotions,
            "crop": self.crop,
            "on_bad_file": self.on_bad_file,
        }

    def load(self, width: int, height: int, channels: int) -> FaceSet:
        rows = self._rows()
        for row in rows:
            if not row["path"].is_file() and self.on_bad_file != "skip":
                raise DataError(f"{row['where']}: image not found: {row['path']}; fix the path or set data.on_bad_file=skip")
        images, kept = decode_images([row["path"] for row in rows], channels, width, height, self.crop, self.on_bad_file)
        rows = [rows[i] for i in kept]

        identity_names = sorted({row["identity"] for row in rows}, key=_identity_order)
        identity_index = {name: i for i, name in enumerate(identity_names)}
        present = {row["emotion"] for row in rows}
        emotion_names = [e for e in self.emotions if e in present]
        files = [str(row["path"]) for row in rows]
        return FaceSet(
            images=images,
            identities=torch.tensor([identity_index[row["identity"]] for row in rows], dtype=torch.long),
            emotions=one_hot_emotions([row["emotion"] for row in rows], emotion_names, files),
            yaws=torch.tensor([row["yaw"] for row in rows], dtype=torch.float32),
            identity_names=identity_names,
            emotion_names=emotion_names,
            files=files,
        )
