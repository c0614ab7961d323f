"""The one label schema that every data source produces.

A face set is a batch of in-memory records: identity (an index into
``identity_names``), emotion (a vector over ``emotion_names``, one-hot for real
photos), orientation (yaw in degrees, 0 = frontal, positive = the face turned
towards the camera's left) and a uint8 image. Nothing downstream of a source
looks at where the records came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

# RaFD's eight emotions, in the order RaFD's documentation lists them.
RAFD_EMOTIONS = (
    "angry",
    "contemptuous",
    "disgusted",
    "fearful",
    "happy",
    "neutral",
    "sad",
    "surprised",
)


class DataError(ValueError):
    """Invalid or unreadable training data; the message names the path or value and the fix."""


@dataclass
class FaceSet:
    """Decoded training records, all tensors on the CPU.

    images: (N, C, H, W) uint8; identities: (N,) int64; emotions: (N, E) float32;
    yaws: (N,) float32 in degrees. ``files`` names each record's source for messages.
    """

    images: torch.Tensor
    identities: torch.Tensor
    emotions: torch.Tensor
    yaws: torch.Tensor
    identity_names: list[str]
    emotion_names: list[str]
    files: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = self.images.shape[0]
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be a (N, C, H, W) uint8 tensor, got {tuple(self.images.shape)} {self.images.dtype}")
        for name in ("identities", "emotions", "yaws"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"{name} has {getattr(self, name).shape[0]} rows but there are {n} images")
        if self.emotions.shape[1] != len(self.emotion_names):
            raise ValueError(f"emotion vectors have {self.emotions.shape[1]} entries but there are {len(self.emotion_names)} emotion names")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def subset(self, index: torch.Tensor) -> "FaceSet":
        """Return the records at ``index``, keeping every identity and emotion name."""
        files = [self.files[i] for i in index.tolist()] if self.files else []
        return FaceSet(
            images=self.images[index],
            identities=self.identities[index],
            emotions=self.emotions[index],
            yaws=self.yaws[index],
            identity_names=self.identity_names,
            emotion_names=self.emotion_names,
            files=files,
        )


def encode_orientation(yaw_degrees: torch.Tensor) -> torch.Tensor:
    """Encode yaw in degrees as (sin, cos), the generator's orientation input: (N,) -> (N, 2)."""
    radians = yaw_degrees * (math.pi / 180.0)
    return torch.stack([torch.sin(radians), torch.cos(radians)], dim=-1)


def one_hot_emotions(names: list[str], emotion_names: list[str], where: list[str]) -> torch.Tensor:
    """Turn emotion names into one-hot rows; ``where`` names each row's file for the error message."""
    lookup = {name: i for i, name in enumerate(emotion_names)}
    rows = torch.zeros(len(names), len(emotion_names))
    for row, (name, source) in enumerate(zip(names, where)):
        if name not in lookup:
            raise DataError(
                f"{source}: unknown emotion {name!r}; allowed emotions are {', '.join(emotion_names)}. "
                "Fix the label, or list it in data.emotions."
            )
        rows[row, lookup[name]] = 1.0
    return rows
