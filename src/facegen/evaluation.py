"""Held-out evaluation: which records training never sees, the baselines they are compared with, and the
comparison sheet.

A held-out record is scored by PSNR and SSIM (torchmetrics, data range [0, 1]) of the generated image
against the real photo, next to two baselines that need no network:

- ``same_identity``: the same person's closest training photo. That is the same emotion at the nearest
  trained yaw when one exists (a yaw holdout), otherwise the neutral photo at the nearest yaw, otherwise
  another emotion at the nearest yaw (an emotion holdout).
- ``mean_emotion``: the pixel mean of every training photo with the held-out record's emotion.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset
from torchmetrics import MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure
from torchvision.utils import make_grid

from facegen.faceset import FaceSet, encode_orientation
from facegen.generator import ConfigError

log = logging.getLogger(__name__)

BASELINES = ("same_identity", "mean_emotion")
# Tolerance when a holdout combination names a yaw, in degrees.
YAW_TOLERANCE = 0.5


@dataclass(frozen=True)
class Holdout:
    """Records to keep out of training. The held-out set is the union of what each field selects.

    combinations: ``(identity, emotion)`` or ``(identity, emotion, yaw degrees)`` entries.
    emotion with count or fraction: that emotion of ``count`` identities (or that fraction of them),
    drawn with ``seed`` among identities that also have a photo with another emotion.
    count or fraction without emotion: that many (identity, emotion) combinations, drawn with ``seed``.
    yaw_ranges: every record whose yaw lies in one of the ``[low, high]`` ranges (degrees, inclusive).
    """

    combinations: tuple[tuple, ...] = ()
    emotion: str | None = None
    count: int | None = None
    fraction: float | None = None
    seed: int = 0
    yaw_ranges: tuple[tuple[float, float], ...] = field(default_factory=tuple)

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None) -> "Holdout | None":
        """Build from the ``holdout`` config group; return None for an empty group (``holdout=none``)."""
        if not config:
            return None
        known = {"combinations", "emotion", "count", "fraction", "seed", "yaw_ranges"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(f"unknown holdout setting(s) {unknown}; allowed are {sorted(known)}")
        count, fraction = config.get("count"), config.get("fraction")
        if count is not None and fraction is not None:
            raise ConfigError(
                f"set holdout.count or holdout.fraction, not both (got {count} and {fraction}); a preset may set one of them, "
                "so clear the other, for example holdout.count=null"
            )
        if count is not None and (not isinstance(count, int) or count < 1):
            raise ConfigError(f"holdout.count must be a positive integer, got {count!r}")
        if fraction is not None and not 0.0 < float(fraction) < 1.0:
            raise ConfigError(f"holdout.fraction must lie strictly between 0 and 1, got {fraction!r}")
        emotion = config.get("emotion")
        if emotion is not None and count is None and fraction is None:
            raise ConfigError(f"holdout.emotion={emotion!r} needs holdout.count or holdout.fraction to say how many identities to hold out")

        combinations = []
        for entry in config.get("combinations") or ():
            if isinstance(entry, (str, bytes)) or len(entry) not in (2, 3):
                raise ConfigError(f"each holdout combination must be [identity, emotion] or [identity, emotion, yaw], got {entry!r}")
            combinations.append(tuple(entry))
        ranges = [parse_yaw_range(entry) for entry in yaw_range_list(config.get("yaw_ranges"))]

        holdout = cls(
            combinations=tuple(combinations),
            emotion=emotion,
            count=count,
            fraction=None if fraction is None else float(fraction),
            seed=int(config.get("seed") or 0),
            yaw_ranges=tuple(ranges),
        )
        if not (holdout.combinations or holdout.yaw_ranges or count is not None or fraction is not None):
            raise ConfigError(
                "the holdout settings select nothing; set holdout.combinations, holdout.emotion with holdout.count, "
                "holdout.yaw_ranges, or choose holdout=none"
            )
        return holdout

    def select(self, faceset: FaceSet) -> torch.Tensor:
        """Return a (N,) bool mask of the held-out records.

        Raises ConfigError if nothing is held out, or if training would lose every record of an identity or emotion.
        """
        mask = torch.zeros(len(faceset), dtype=torch.bool)
        for entry in self.combinations:
            mask |= self._combination_mask(faceset, entry)
        if self.yaw_ranges:
            for low, high in self.yaw_ranges:
                mask |= (faceset.yaws >= low) & (faceset.yaws <= high)
        if self.emotion is not None:
            mask |= self._emotion_mask(faceset)
        elif self.count is not None or self.fraction is not None:
            mask |= self._random_combinations_mask(faceset, mask)
        check_split(faceset, mask)
        return mask

    def _combination_mask(self, faceset: FaceSet, entry: tuple) -> torch.Tensor:
        identity = identity_index(faceset, entry[0])
        emotion = emotion_index(faceset, entry[1])
        mask = (faceset.identities == identity) & (emotion_labels(faceset) == emotion)
        if len(entry) == 3:
            mask &= (faceset.yaws - float(entry[2])).abs() <= YAW_TOLERANCE
        if not mask.any():
            raise ConfigError(f"holdout combination {list(entry)} matches no record; check the identity, emotion and yaw")
        return mask

    def _emotion_mask(self, faceset: FaceSet) -> torch.Tensor:
        emotion = emotion_index(faceset, self.emotion)
        labels = emotion_labels(faceset)
        candidates = [
            person
            for person in range(len(faceset.identity_names))
            if ((faceset.identities == person) & (labels == emotion)).any() and ((faceset.identities == person) & (labels != emotion)).any()
        ]
        requested = self.count if self.count is not None else max(1, round(self.fraction * len(candidates)))
        if requested > len(candidates):
            raise ConfigError(
                f"holdout.count={requested} but only {len(candidates)} identities have a {self.emotion!r} photo and a photo "
                "with another emotion; lower holdout.count"
            )
        order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(self.seed))
        chosen = torch.tensor([candidates[i] for i in order[:requested].tolist()], dtype=torch.long)
        return torch.isin(faceset.identities, chosen) & (labels == emotion)

    def _random_combinations_mask(self, faceset: FaceSet, already: torch.Tensor) -> torch.Tensor:
        """Draw whole (identity, emotion) combinations, skipping any whose removal would leave an identity
        or an emotion without training records."""
        labels = emotion_labels(faceset)
        combos = sorted({(int(p), int(e)) for p, e in zip(faceset.identities[~already].tolist(), labels[~already].tolist())})
        requested = self.count if self.count is not None else max(1, round(self.fraction * len(combos)))
        order = torch.randperm(len(combos), generator=torch.Generator().manual_seed(self.seed)).tolist()
        mask = already.clone()
        taken = 0
        for i in order:
            if taken == requested:
                break
            person, emotion = combos[i]
            candidate = mask | ((faceset.identities == person) & (labels == emotion))
            kept = ~candidate
            if (faceset.identities[kept] == person).any() and (labels[kept] == emotion).any():
                mask, taken = candidate, taken + 1
        if taken < requested:
            raise ConfigError(f"only {taken} of the {requested} requested holdout combinations can be held out without losing an identity or emotion from training")
        return mask


def yaw_range_list(value: Any) -> list:
    """Return ``holdout.yaw_ranges`` as a list of entries, rejecting a single number or a flat pair."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, int, float)) or not all(isinstance(entry, (list, tuple)) for entry in value):
        raise ConfigError(f"holdout.yaw_ranges must be a list of [low, high] pairs in degrees, for example [[20,40]], got {value!r}")
    return list(value)


def parse_yaw_range(entry: Any) -> tuple[float, float]:
    """Return one ``[low, high]`` yaw range in degrees as floats, with low <= high."""
    try:
        low, high = (float(bound) for bound in entry)
    except (TypeError, ValueError):
        low = high = None
    if low is None or low > high:
        raise ConfigError(f"each holdout yaw range must be [low, high] in degrees with low <= high, got {entry!r}")
    return low, high


def emotion_labels(faceset: FaceSet) -> torch.Tensor:
    """Return each record's emotion index, (N,) int64: the largest entry of its emotion vector."""
    return faceset.emotions.argmax(dim=1)


def identity_index(faceset: FaceSet, name: Any) -> int:
    """Find an identity by name; a number such as 1 (how YAML reads ``001``) matches the name "001"."""
    text = str(name)
    if text in faceset.identity_names:
        return faceset.identity_names.index(text)
    if isinstance(name, int):
        numeric = [i for i, n in enumerate(faceset.identity_names) if n.isdigit() and int(n) == name]
        if len(numeric) == 1:
            return numeric[0]
    shown = ", ".join(faceset.identity_names[:10]) + (" ..." if len(faceset.identity_names) > 10 else "")
    raise ConfigError(f"unknown identity {name!r} in the holdout settings; identities are {shown}")


def emotion_index(faceset: FaceSet, name: str) -> int:
    if name not in faceset.emotion_names:
        raise ConfigError(f"unknown emotion {name!r} in the holdout settings; this data set has {', '.join(faceset.emotion_names)}")
    return faceset.emotion_names.index(name)


def check_split(faceset: FaceSet, heldout: torch.Tensor) -> None:
    """Raise ConfigError unless something is held out and every identity and emotion keeps a training record,
    because the generator cannot learn an input that training never shows."""
    if not heldout.any():
        yaws = f"{float(faceset.yaws.min()):g} to {float(faceset.yaws.max()):g}" if len(faceset) else "none"
        raise ConfigError(
            "the holdout settings select no record; check holdout.combinations, holdout.emotion and holdout.yaw_ranges "
            f"(this data set's yaws run from {yaws} degrees)"
        )
    kept = ~heldout
    lost_people = sorted(set(range(len(faceset.identity_names))) - set(faceset.identities[kept].tolist()))
    if lost_people:
        names = [faceset.identity_names[i] for i in lost_people]
        raise ConfigError(f"the holdout removes every training record of identities {names}; hold out fewer of their records")
    lost_emotions = sorted(set(range(len(faceset.emotion_names))) - set(emotion_labels(faceset)[kept].tolist()))
    if lost_emotions:
        names = [faceset.emotion_names[i] for i in lost_emotions]
        raise ConfigError(f"the holdout removes every training record with emotions {names}; hold out fewer of them")


def describe_records(faceset: FaceSet, index: torch.Tensor) -> list[list]:
    """Return [identity name, emotion name, yaw] for each record at ``index``, as stored in checkpoints."""
    labels = emotion_labels(faceset)
    return [
        [faceset.identity_names[int(faceset.identities[i])], faceset.emotion_names[int(labels[i])], round(float(faceset.yaws[i]), 3)]
        for i in index.tolist()
    ]


def same_identity_baselines(faceset: FaceSet, train_index: torch.Tensor, heldout_index: torch.Tensor) -> torch.Tensor:
    """For each held-out record, return the index of the same identity's closest training record.

    Closest means, in this order: the same emotion, then the neutral emotion, then the nearest yaw.
    """
    labels = emotion_labels(faceset)
    neutral = faceset.emotion_names.index("neutral") if "neutral" in faceset.emotion_names else -1
    chosen = []
    for i in heldout_index.tolist():
        candidates = train_index[faceset.identities[train_index] == faceset.identities[i]]
        # Lexicographic cost: different emotion, then not neutral, then yaw distance in degrees (< 360).
        cost = (
            (labels[candidates] != labels[i]).float() * 1000.0
            + (labels[candidates] != neutral).float() * 500.0
            + (faceset.yaws[candidates] - faceset.yaws[i]).abs()
        )
        chosen.append(int(candidates[cost.argmin()]))
    return torch.tensor(chosen, dtype=torch.long)


def mean_emotion_images(faceset: FaceSet, train_index: torch.Tensor) -> torch.Tensor:
    """Return the mean training photo of each emotion as (E, C, H, W) floats in [0, 1]."""
    labels = emotion_labels(faceset)[train_index]
    images = faceset.images[train_index].float().div_(255.0)
    means = torch.zeros(len(faceset.emotion_names), *images.shape[1:])
    for emotion in range(len(faceset.emotion_names)):
        if (labels == emotion).any():
            means[emotion] = images[labels == emotion].mean(dim=0)
    return means


class HeldOutDataset(Dataset):
    """Serves held-out records with their two baseline images, never flipped."""

    def __init__(self, faceset: FaceSet, train_index: torch.Tensor, heldout_index: torch.Tensor) -> None:
        self.faceset = faceset
        self.index = heldout_index
        self.same_identity = same_identity_baselines(faceset, train_index, heldout_index)
        self.means = mean_emotion_images(faceset, train_index)
        self.labels = emotion_labels(faceset)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        i = int(self.index[position])
        faceset = self.faceset
        return {
            "image": faceset.images[i].float().div_(255.0),
            "identity": torch.nn.functional.one_hot(faceset.identities[i], len(faceset.identity_names)).float(),
            "emotion": faceset.emotions[i],
            "orientation": encode_orientation(faceset.yaws[i]),
            "same_identity": faceset.images[int(self.same_identity[position])].float().div_(255.0),
            "mean_emotion": self.means[int(self.labels[i])],
        }


def image_metrics(prefix: str, postfix: str = "") -> MetricCollection:
    """PSNR and SSIM of images in [0, 1]; PSNR is computed per image, then averaged over images."""
    return MetricCollection(
        {
            "psnr": PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3)),
            "ssim": StructuralSimilarityIndexMeasure(data_range=1.0),
        },
        prefix=prefix,
        postfix=postfix,
    )


@torch.no_grad()
def comparison_sheet(generator: torch.nn.Module, dataset: HeldOutDataset, max_rows: int = 12) -> torch.Tensor:
    """Draw a (C, H, W) sheet with one row per held-out record (at most ``max_rows``, spread evenly) and the
    columns same-identity baseline, mean-emotion baseline, generated image, real photo."""
    rows = min(max_rows, len(dataset))
    picks = sorted({round(i * (len(dataset) - 1) / max(1, rows - 1)) for i in range(rows)})
    items = [dataset[i] for i in picks]
    device = next(generator.parameters()).device
    inputs = {key: torch.stack([item[key] for item in items]).to(device) for key in ("identity", "emotion", "orientation")}
    was_training = generator.training
    generator.eval()
    generated = generator(inputs["identity"], inputs["emotion"], inputs["orientation"]).float().cpu()
    generator.train(was_training)
    tiles = []
    for item, image in zip(items, generated):
        tiles.extend([item["same_identity"], item["mean_emotion"], image, item["image"]])
    return make_grid(torch.stack(tiles), nrow=4, padding=2, pad_value=1.0)


def sheet_caption(dataset: HeldOutDataset, max_rows: int = 12) -> str:
    return (
        f"{len(dataset)} held-out records (up to {max_rows} shown); columns: same-identity baseline, "
        "mean-emotion baseline, generated, real"
    )


def format_results(metrics: Mapping[str, float], stage: str = "test") -> str:
    """Format the logged PSNR and SSIM of the generator and both baselines as a small text table."""
    lines = [f"{'':16s} {'PSNR (dB)':>10s} {'SSIM':>8s}"]
    for name, postfix in (("generated", ""), *((b, f"_{b}") for b in BASELINES)):
        psnr, ssim = metrics.get(f"{stage}/psnr{postfix}"), metrics.get(f"{stage}/ssim{postfix}")
        if psnr is None or ssim is None:
            continue
        lines.append(f"{name:16s} {psnr:10.2f} {ssim:8.4f}")
    return "\n".join(lines)


def sheet_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "holdout_sheet.png"
