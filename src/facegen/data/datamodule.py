"""The LightningDataModule: one decoded face set in memory, served as batches of generator inputs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from facegen.data.cache import load_cached
from facegen.faceset import FaceSet, encode_orientation

log = logging.getLogger(__name__)


class FaceDataset(Dataset):
    """Serves records of a face set as float images in [0, 1] with one-hot identities.

    With ``hflip`` each record is mirrored with probability 0.5, negating its yaw.
    """

    def __init__(self, faceset: FaceSet, hflip: bool = False) -> None:
        self.faceset = faceset
        self.hflip = hflip
        self.num_identities = len(faceset.identity_names)

    def __len__(self) -> int:
        return len(self.faceset)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        image = self.faceset.images[index]
        yaw = self.faceset.yaws[index]
        if self.hflip and torch.rand(()) < 0.5:
            image, yaw = image.flip(-1), -yaw
        return {
            "image": image.float().div_(255.0),
            "identity": torch.nn.functional.one_hot(self.faceset.identities[index], self.num_identities).float(),
            "emotion": self.faceset.emotions[index],
            "orientation": encode_orientation(yaw),
        }


class FaceDataModule(L.LightningDataModule):
    """Decodes the source once (through the cache) and serves the training records."""

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
    ) -> None:
        super().__init__()
        self.source = source
        self.width, self.height, self.channels = width, height, channels
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.hflip = hflip
        self.cache_dir = cache_dir
        self.faceset: FaceSet | None = None

    @classmethod
    def from_config(cls, data: Mapping, source: Any, width: int, height: int) -> "FaceDataModule":
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

    def setup(self, stage: str | None = None) -> None:
        self.load()

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            FaceDataset(self.load(), hflip=self.hflip),
            batch_size=self.batch_size,
            shuffle=True,
            num_workers=self.num_workers,
            pin_memory=torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,
        )
