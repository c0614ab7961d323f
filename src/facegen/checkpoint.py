"""Load a trained generator from a FaceGen checkpoint, without Lightning or the training data."""

from __future__ import annotations

import zipfile

from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from facegen.generator import Generator
# CheckpointError is defined beside the LightningModule, which raises it too, and imported from here.
from facegen.module import CHECKPOINT_FORMAT, CheckpointError, checkpoint_digest

__all__ = ["CheckpointError", "LoadedGenerator", "load_generator", "read_checkpoint", "resolve_checkpoint", "run_data_config"]


@dataclass
class LoadedGenerator:
    generator: Generator
    identity_names: list[str]
    emotion_names: list[str]
    epoch: int
    global_step: int
    path: Path
    # [identity name, emotion name, yaw] of each record kept out of training; empty without a holdout.
    holdout: list[list] = field(default_factory=list)
    # The run's resolved data, resolution and holdout settings; None in checkpoints written before they were stored.
    data_config: dict | None = None

    @property
    def config(self) -> dict:
        return {
            "channels": self.generator.channels,
            "width": self.generator.width,
            "height": self.generator.height,
        }


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a ``.ckpt`` file or a run folder (its ``checkpoints/last.ckpt``)."""
    path = Path(path).expanduser()
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.ckpt", path / "last.ckpt"):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"no last.ckpt in the run folder {path} (looked in {path / 'checkpoints'} and {path})")
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}; pass a .ckpt file or a run folder")
    return path


def read_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint file into a dict; raise CheckpointError for a truncated, corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), probably from an interrupted write; use another checkpoint")
    if not zipfile.is_zipfile(path):
        # torch.save has written zip archives since PyTorch 1.6; anything else is a foreign or cut-off file.
        raise CheckpointError(f"{path} is not a readable checkpoint (not a zip archive as torch.save writes); it may be truncated or corrupt, or another kind of file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - damaged bytes fail in many ways, e.g. IndexError for a text file
        raise CheckpointError(f"{path} is not a readable checkpoint ({type(error).__name__}: {error}); it may be truncated or corrupt") from error
    if not isinstance(checkpoint, dict) or "facegen" not in checkpoint or "state_dict" not in checkpoint:
        raise CheckpointError(f"{path} is not a FaceGen checkpoint: it has no 'facegen' entry; pass a checkpoint written by train.py")
    stored_format = checkpoint["facegen"].get("format")
    if stored_format != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} has FaceGen checkpoint format {stored_format}, this version reads format {CHECKPOINT_FORMAT}")
    # Checkpoints written before the digest was added have none and are read unchecked.
    stored_digest = checkpoint["facegen"].get("digest")
    if stored_digest is not None and checkpoint_digest(checkpoint) != stored_digest:
        raise CheckpointError(
            f"{path} is corrupt: its weights or optimizer state no longer match the SHA-256 digest written with them; "
            "use another checkpoint"
        )
    return checkpoint


def load_generator(path: str | Path, device: str | torch.device = "cpu") -> LoadedGenerator:
    """Rebuild the generator stored in a checkpoint (file or run folder), in eval mode on ``device``."""
    path = resolve_checkpoint(path)
    checkpoint = read_checkpoint(path)
    meta = checkpoint["facegen"]
    generator = Generator(**meta["generator"])
    prefix = "generator."
    state = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    try:
        generator.load_state_dict(state)
    except RuntimeError as error:
        raise CheckpointError(f"{path}: the stored weights do not fit the stored model config ({error})") from error
    generator.to(device).eval()
    return LoadedGenerator(
        generator=generator,
        identity_names=list(meta["identity_names"]),
        emotion_names=list(meta["emotion_names"]),
        epoch=int(checkpoint.get("epoch", -1)),
        global_step=int(checkpoint.get("global_step", -1)),
        path=path,
        holdout=[list(record) for record in meta.get("holdout") or []],
        data_config=meta.get("data_config"),
    )


def run_data_config(loaded: LoadedGenerator, run_dir: str | Path) -> DictConfig:
    """Return the data, resolution and holdout settings that trained ``loaded``.

    Checkpoints store them. Older checkpoints fall back to RUN_DIR/.hydra/config.yaml, which Hydra rewrites
    at every start in that folder, rejected starts included.
    """
    if loaded.data_config is not None:
        return OmegaConf.create(loaded.data_config)
    config_path = Path(run_dir) / ".hydra" / "config.yaml"
    if not config_path.is_file():
        raise CheckpointError(f"{loaded.path} stores no data settings and {config_path} is not found; pass the folder of a train.py run")
    return OmegaConf.load(config_path)
