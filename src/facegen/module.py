"""The LightningModule: the generator, its L2 loss and its optimizer, and PSNR and SSIM on held-out records."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from facegen.evaluation import BASELINES, image_metrics
from facegen.generator import Generator
from facegen.io import content_digest

log = logging.getLogger(__name__)

# Bumped when the "facegen" entry of a checkpoint changes shape.
CHECKPOINT_FORMAT = 1


class NonFiniteLossError(FloatingPointError):
    """The loss, or a weight about to be saved, became NaN or infinite, so the run stops instead of training
    on garbage or writing it into a checkpoint."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, not a FaceGen checkpoint, or built for another model config."""


def checkpoint_digest(checkpoint: Mapping[str, Any]) -> str:
    """Return the SHA-256 digest of a checkpoint's weights and optimizer state, which read_checkpoint verifies."""
    return content_digest({"state_dict": checkpoint["state_dict"], "optimizer_states": checkpoint.get("optimizer_states", [])})


def config_differences(stored: Mapping[str, Any], current: Mapping[str, Any], keys: Iterable[str] | None = None) -> list[str]:
    """List the generator settings that differ between a checkpoint and this run, as readable phrases."""
    keys = sorted(set(stored) | set(current) if keys is None else keys)
    return [f"{k} is {stored.get(k)!r} there and {current.get(k)!r} in this run" for k in keys if stored.get(k) != current.get(k)]


class FaceGenModule(L.LightningModule):
    """Trains a Generator to reproduce photos from their labels with a mean squared (L2) error.

    ``generator_config`` is the keyword set that rebuilds the generator; it is stored in every checkpoint
    with the identity and emotion names, so rendering needs no training data. ``holdout`` lists the
    [identity, emotion, yaw] records kept out of training; it is stored too, and resuming with another
    holdout is rejected because the checkpoint may have trained on the new held-out records.
    """

    def __init__(
        self,
        generator: Generator,
        optimizer: Callable[..., torch.optim.Optimizer],
        generator_config: Mapping[str, Any],
        identity_names: list[str],
        emotion_names: list[str],
        scheduler: Callable[..., Any] | None = None,
        holdout: list[list] | None = None,
        data_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.generator = generator
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.generator_config = dict(generator_config)
        self.identity_names = list(identity_names)
        self.emotion_names = list(emotion_names)
        self.holdout = [list(record) for record in holdout or []]
        # The resolved data, resolution and holdout settings, stored so that scripts can rebuild the data
        # of a run from its checkpoint even after a rejected command rewrote the run's .hydra/config.yaml.
        self.data_config = dict(data_config) if data_config is not None else None
        self.val_metrics = image_metrics("val/")
        self.test_metrics = nn.ModuleDict(
            {"generated": image_metrics("test/"), **{name: image_metrics("test/", f"_{name}") for name in BASELINES}}
        )

    def forward(self, identity: torch.Tensor, emotion: torch.Tensor, orientation: torch.Tensor) -> torch.Tensor:
        return self.generator(identity, emotion, orientation)

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        images = self(batch["identity"], batch["emotion"], batch["orientation"])
        loss = F.mse_loss(images.float(), batch["image"])
        if not torch.isfinite(loss):
            raise NonFiniteLossError(self._non_finite_message(f"loss is {loss.item()}"))
        # sync_dist averages the epoch loss over DDP ranks; it is a no-op in a single process.
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=images.shape[0], sync_dist=True)
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        images = self(batch["identity"], batch["emotion"], batch["orientation"]).float()
        with self._full_precision():
            self.val_metrics.update(images, batch["image"])
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, batch_size=images.shape[0])

    def test_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        images = self(batch["identity"], batch["emotion"], batch["orientation"]).float()
        with self._full_precision():
            self.test_metrics["generated"].update(images, batch["image"])
            for name in BASELINES:
                self.test_metrics[name].update(batch[name], batch["image"])
        for metrics in self.test_metrics.values():
            self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=images.shape[0])

    def _full_precision(self) -> torch.autocast:
        """Turn off mixed-precision autocast: SSIM's Gaussian window is a convolution, and in bf16 its variance
        terms lose so many digits that SSIM drops from about 0.75 to about 0.27 on the London faces."""
        return torch.autocast(self.device.type, enabled=False)

    def _non_finite_message(self, problem: str) -> str:
        where = f"{problem} at epoch {self.current_epoch}, global step {self.global_step}, so training stopped."
        last_good = self._last_good_checkpoint()
        if last_good is None:
            return f"{where} No checkpoint was written yet; start again with a lower optimizer.lr."
        path, step = last_good
        # Resuming restores the optimizer's stored learning rate, so a lower optimizer.lr needs a new run.
        return (
            f"{where} The last good checkpoint is {path} (global step {step}): resume from it with "
            f"ckpt_path={path} (it keeps its learning rate), or start a new run with a lower optimizer.lr."
        )

    def _last_good_checkpoint(self) -> tuple[Path, int | str] | None:
        """Return the newest checkpoint this run wrote or resumed from, with its global step.

        All of them contain finite weights, because ``on_save_checkpoint`` raises instead of saving any other.
        """
        paths = [self.trainer.ckpt_path]
        for callback in self.trainer.checkpoint_callbacks:
            paths += [getattr(callback, "path", None), getattr(callback, "last_model_path", None), getattr(callback, "best_model_path", None)]
        existing = [Path(p) for p in paths if p and Path(p).is_file()]
        if not existing:
            return None
        newest = max(existing, key=lambda p: p.stat().st_mtime)
        try:
            step = torch.load(newest, map_location="cpu", weights_only=True, mmap=True)["global_step"]
        except Exception:  # noqa: BLE001 - the step is extra detail in a message about another error
            step = "unknown"
        return newest, step

    def on_train_epoch_start(self) -> None:
        if self.trainer.optimizers:
            self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True, sync_dist=True)

    def on_train_end(self) -> None:
        # Without synchronized batch norm (sync_batchnorm, which PyTorch lacks on the CPU) each DDP rank's running
        # statistics follow its own last batches. Rank zero's are the ones in the checkpoints, so every rank takes
        # them and tests or renders the same model.
        if self.trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            for buffer in self.generator.buffers():
                torch.distributed.broadcast(buffer, src=0)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        # An update that breaks the weights shows in the loss only at the next step, after this save.
        broken = [name for name, value in checkpoint["state_dict"].items() if value.is_floating_point() and not torch.isfinite(value).all()]
        if broken:
            raise NonFiniteLossError(self._non_finite_message(f"weights {', '.join(broken[:3])} are NaN or infinite"))
        checkpoint["facegen"] = {
            "format": CHECKPOINT_FORMAT,
            "generator": self.generator_config,
            "identity_names": self.identity_names,
            "emotion_names": self.emotion_names,
            "holdout": self.holdout,
            "data_config": self.data_config,
            "digest": checkpoint_digest(checkpoint),
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        path = self.trainer.ckpt_path if self._trainer is not None else None
        stored = checkpoint.get("facegen")
        if stored is None:
            raise CheckpointError(f"{path} has no 'facegen' entry, so it was not written by FaceGen's train.py")
        differences = config_differences(stored["generator"], self.generator_config)
        if differences:
            raise CheckpointError(
                f"{path} was written for another model config: {'; '.join(differences)}. "
                "Resume with the model, resolution and data settings of the run that wrote it"
            )
        # Checkpoints written before the holdout was stored trained on every record.
        if stored.get("holdout", []) != self.holdout:
            raise CheckpointError(
                f"the checkpoint was trained with {len(stored.get('holdout', []))} held-out records but this run holds out "
                f"{len(self.holdout)} other ones, so it may have trained on this run's held-out records. "
                "Resume or test with the holdout settings of the run that wrote it"
            )
