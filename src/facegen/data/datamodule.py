"""The LightningDataModule: one decoded face set in memory, served as batches of generator inputs."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from facegen.data.cache import load_cached
from facegen.evaluation import HeldOutDataset, Holdout, describe_records
from facegen.faceset import FaceSet, encode_orientation

log = logging.getLogger(__name__)


class FaceDataset(Dataset):
    """Serves records of a face set as float images in [0, 1] with one-hot identities.

    With ``hflip`` each record is mirrored with probability 0.5, negating its yaw, unless the negated yaw
    falls in one of ``no_flip_yaw_ranges`` (degrees, inclusive), so a held-out yaw range stays unseen.
    """

    def __init__(self, faceset: FaceSet, hflip: bool = False, no_flip_yaw_ranges: Sequence[tuple[float, float]] = ()) -> None:
        self.faceset = faceset
        self.hflip = hflip
        self.no_flip_yaw_ranges = list(no_flip_yaw_ranges)
        self.num_identities = len(faceset.identity_names)

    def __len__(self) -> int:
        return len(self.faceset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.faceset.images[index]
        yaw = self.faceset.yaws[index]
        if self.hflip and torch.rand(()) < 0.5 and not any(low <= -yaw <= high for low, high in self.no_flip_yaw_ranges):
            image, yaw = image.flip(-1), -yaw
        return {
            "image": image.float().div_(255.0),
            "identity": torch.nn.functional.one_hot(self.faceset.identities[index], self.num_identities).float(),
            "emotion": self.faceset.emotions[index],
            "orientation": encode_orientation(yaw),
        }


class FaceDataModule(L.LightningDataModule):
    """Decodes the source once (through the cache) and serves the training records.

    With a ``holdout``, the held-out records are left out of training and served, with their baselines,
    as the validation and test sets.
    """

    def __init__(
        self,
        source: Any,
        width: int,
        height: int,
        channels: int = 3,
        batch_size: int = 16,
        num_workers: int = 0,
        hflip: bool = False,
        cache_dir: str | Path | None = None,
        holdout: Holdout | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.width, self.height, self.channels = width, height, channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.hflip = hflip
        self.cache_dir = cache_dir
        self.holdout = holdout
        self.faceset: FaceSet | None = None
        self.train_index: torch.Tensor | None = None
        self.heldout_index: torch.Tensor | None = None
        self.train_faceset: FaceSet | None = None

    @classmethod
    def from_config(cls, data: Mapping, source: Any, width: int, height: int, holdout: Holdout | None = None) -> "FaceDataModule":
        """Build from the ``data`` config group, whose loader settings sit beside the source's own."""
        return cls(
            source=source,
            width=width,
            height=height,
            channels=data.get("channels", 3),
            batch_size=data.get("batch_size", 16),
            num_workers=data.get("num_workers", 0),
            hflip=data.get("hflip", False),
            cache_dir=data.get("cache_dir"),
            holdout=holdout,
        )

    def load(self) -> FaceSet:
        """Decode (or read from the cache) the face set once; later calls return the same tensors."""
        if self.faceset is None:
            self.faceset = load_cached(self.source, self.width, self.height, self.channels, self.cache_dir)
            log.info(
                "data: %d faces, %d identities, emotions %s, yaw %.0f..%.0f degrees",
                len(self.faceset),
                len(self.faceset.identity_names),
                self.faceset.emotion_names,
                self.faceset.yaws.min(),
                self.faceset.yaws.max(),
            )
        return self.faceset

    def split(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the indices of the training and the held-out records; without a holdout none is held out."""
        if self.train_index is None:
            faceset = self.load()
            heldout = self.holdout.select(faceset) if self.holdout else torch.zeros(len(faceset), dtype=torch.bool)
            self.train_index = torch.nonzero(~heldout).flatten()
            self.heldout_index = torch.nonzero(heldout).flatten()
            # Copy the images only when records are left out.
            self.train_faceset = faceset.subset(self.train_index) if heldout.any() else faceset
            if self.holdout:
                shown = describe_records(faceset, self.heldout_index[:10])
                more = f" and {len(self.heldout_index) - len(shown)} more" if len(self.heldout_index) > len(shown) else ""
                log.info("holdout: %d records kept out of training: %s%s", len(self.heldout_index), shown, more)
        return self.train_index, self.heldout_index

    def heldout_records(self) -> list[list]:
        """Return [identity, emotion, yaw] of every held-out record, in a fixed order."""
        return describe_records(self.load(), self.split()[1])

    def heldout_dataset(self) -> HeldOutDataset:
        if not self.holdout:
            raise ValueError("this data module has no holdout, so there is nothing to evaluate; set holdout=emotion or holdout=yaw")
        train_index, heldout_index = self.split()
        return HeldOutDataset(self.load(), train_index, heldout_index)

    def setup(self, stage: str | None = None) -> None:
        self.split()

    def train_dataloader(self) -> DataLoader:
        self.split()
        no_flip = self.holdout.yaw_ranges if self.holdout else ()
        return DataLoader(
            FaceDataset(self.train_faceset, hflip=self.hflip, no_flip_yaw_ranges=no_flip),
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader | list:
        # Without a holdout, Lightning skips validation when it gets no loader.
        return self._heldout_loader() if self.holdout else []

    def test_dataloader(self) -> DataLoader:
        return self._heldout_loader()

    def _heldout_loader(self) -> DataLoader:
        return DataLoader(self.heldout_dataset(), batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)
