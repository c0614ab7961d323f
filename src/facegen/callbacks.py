"""Training callbacks: sample grids for people to look at, a ``last.ckpt`` kept current for resuming, and
checkpoint files that are written atomically."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.plugins.io import TorchCheckpointIO
from PIL import Image
from torchvision.utils import make_grid

from facegen.faceset import encode_orientation
from facegen.generator import ConfigError
from facegen.io import atomic_save_with

log = logging.getLogger(__name__)


def sample_identities(num_identities: int, rows: int) -> list[int]:
    """Pick ``rows`` identity indices spread evenly over all identities, always the same ones for a run."""
    rows = min(rows, num_identities)
    return sorted({round(i * (num_identities - 1) / max(1, rows - 1)) for i in range(rows)})


@torch.no_grad()
def draw_sample_grid(generator: torch.nn.Module, identities: list[int], num_identities: int, num_emotions: int, yaw: float = 0.0) -> torch.Tensor:
    """Draw one row per identity and one column per emotion at ``yaw``; return a (C, H, W) grid in [0, 1]."""
    device = next(generator.parameters()).device
    rows, cols = len(identities), num_emotions
    identity = torch.nn.functional.one_hot(torch.tensor(identities, device=device).repeat_interleave(cols), num_identities).float()
    emotion = torch.eye(num_emotions, device=device).repeat(rows, 1)
    orientation = encode_orientation(torch.full((rows * cols,), float(yaw), device=device))
    was_training = generator.training
    generator.eval()
    images = generator(identity, emotion, orientation).float()
    generator.train(was_training)
    return make_grid(images.cpu(), nrow=cols, padding=2, pad_value=1.0)


def to_uint8_array(grid: torch.Tensor) -> np.ndarray:
    """Convert a (C, H, W) tensor in [0, 1] to an (H, W, C) uint8 array, or (H, W) for one channel.

    W&B gets this array too: the wandb 0.31 package stores a float tensor's values unscaled in a uint8
    PNG, so a [0, 1] image arrives black.
    """
    return grid.detach().cpu().clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).squeeze(-1).numpy()


def save_png(grid: torch.Tensor, path: str | Path) -> None:
    """Save a (C, H, W) tensor in [0, 1] as a PNG, written atomically."""
    array = to_uint8_array(grid)
    atomic_save_with(path, lambda stream: Image.fromarray(array).save(stream, format="PNG"))


class SampleGrid(L.Callback):
    """Every ``every_n_epochs`` epochs (and after the last), draws a fixed grid of faces: rows are a fixed
    set of identities, columns each emotion, at ``yaw`` degrees. Saves it as a PNG in the run folder and logs
    it to W&B. Under DDP only rank zero draws and logs."""

    def __init__(self, every_n_epochs: int = 5, rows: int = 6, yaw: float = 0.0, folder: str | None = None) -> None:
        if every_n_epochs < 1:
            raise ValueError(f"callbacks.sample_grid.every_n_epochs must be at least 1, got {every_n_epochs}")
        self.every_n_epochs = every_n_epochs
        self.rows = rows
        self.yaw = yaw
        self.folder = folder
        self.last_path: Path | None = None

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch + 1
        is_last = trainer.max_epochs is not None and epoch >= trainer.max_epochs
        if epoch % self.every_n_epochs and not is_last:
            return
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        generator = pl_module.generator
        identities = sample_identities(generator.num_identities, self.rows)
        grid = draw_sample_grid(generator, identities, generator.num_identities, generator.num_emotions, self.yaw)

        folder = Path(self.folder or trainer.default_root_dir) / "samples"
        # Named by Lightning's zero-based epoch index, like the checkpoints of the same epoch.
        path = folder / f"epoch_{trainer.current_epoch:04d}.png"
        save_png(grid, path)
        self.last_path = path
        log.info("sample grid after %d epochs saved to %s", epoch, path)

        names = [pl_module.identity_names[i] for i in identities]
        caption = f"after {epoch} epochs; rows: identities {', '.join(names)}; columns: {', '.join(pl_module.emotion_names)}"
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image(key="samples", images=[to_uint8_array(grid)], caption=[caption], step=trainer.global_step)


class LastCheckpoint(Checkpoint):
    """Keeps ``<dirpath>/last.ckpt`` current so that a killed run resumes with little lost work.

    Rewrites it every ``every_n_train_steps`` optimizer steps, every ``every_n_epochs`` epochs (0 turns
    either off) and when training ends. After a SIGTERM, Lightning (2.6) stops at the next batch end, and
    in a single process this callback saves that step. Under DDP it does not, because a save is a step
    that every rank must reach and the ranks are not known to stop at the same point. Other exceptions,
    Ctrl-C included, save nothing, because the weights may then be non-finite or half updated.
    """

    def __init__(self, dirpath: str | Path, every_n_train_steps: int = 500, every_n_epochs: int = 1, filename: str = "last.ckpt") -> None:
        if every_n_train_steps < 0 or every_n_epochs < 0:
            raise ConfigError(
                f"callbacks.last_checkpoint needs every_n_train_steps >= 0 and every_n_epochs >= 0 (0 turns it off), "
                f"got {every_n_train_steps} and {every_n_epochs}"
            )
        self.path = Path(dirpath) / filename
        self.every_n_train_steps = every_n_train_steps
        self.every_n_epochs = every_n_epochs
        # The global step of the newest checkpoint written by this callback, or None.
        self.saved_step: int | None = None

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.every_n_train_steps and trainer.global_step % self.every_n_train_steps == 0:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.every_n_epochs and (trainer.current_epoch + 1) % self.every_n_epochs == 0:
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.save(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        # Lightning raises SIGTERMException between steps, so the weights are whole.
        if isinstance(exception, SIGTERMException) and trainer.world_size == 1:
            self.save(trainer)

    def save(self, trainer: L.Trainer) -> None:
        """Write the checkpoint unless this step is saved already; every rank calls it and rank zero writes."""
        if trainer.sanity_checking or trainer.state.fn != TrainerFn.FITTING or self.saved_step == trainer.global_step:
            return
        trainer.save_checkpoint(self.path, weights_only=False)
        self.saved_step = trainer.global_step
        log.debug("saved %s at global step %d", self.path, trainer.global_step)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes local checkpoints to a temporary name and renames them, so a kill mid-write never leaves a
    truncated ``last.ckpt``. Remote paths (``s3://`` and the like) use Lightning's own writer."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        if not isinstance(get_filesystem(path), LocalFileSystem):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_save_with(path, lambda stream: torch.save(checkpoint, stream))
