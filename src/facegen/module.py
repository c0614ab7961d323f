"""The LightningModule: the generator, its L2 loss and its optimizer, and PSNR and SSIM on held-out records."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from facegen.evaluation import BASELINES, image_metrics
from facegen.generator import Generator

log = logging.getLogger(__name__)

# Bumped when the "facegen" entry of a checkpoint changes shape.
CHECKPOINT_FORMAT = 1


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite, so the run stops instead of training on garbage."""


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
    ) -> None:
        super().__init__()
        self.generator = generator
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.generator_config = dict(generator_config)
        self.identity_names = list(identity_names)
        self.emotion_names = list(emotion_names)
        self.holdout = [list(record) for record in holdout or []]
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
            raise NonFiniteLossError(self._non_finite_message(loss))
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=images.shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        images = self(batch["identity"], batch["emotion"], batch["orientation"]).float()
        self.val_metrics.update(images, batch["image"])
        self.log_dict(self.val_metrics, on_step=False, on_epoch=True, batch_size=images.shape[0])

    def test_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        images = self(batch["identity"], batch["emotion"], batch["orientation"]).float()
        self.test_metrics["generated"].update(images, batch["image"])
        for name in BASELINES:
            self.test_metrics[name].update(batch[name], batch["image"])
        for metrics in self.test_metrics.values():
            self.log_dict(metrics, on_step=False, on_epoch=True, batch_size=images.shape[0])

    def _non_finite_message(self, loss: torch.Tensor) -> str:
        last_good = None
        callback = getattr(self.trainer, "checkpoint_callback", None)
        if callback is not None:
            last_good = callback.last_model_path or callback.best_model_path or None
        advice = f"resume from {last_good} with ckpt_path={last_good}" if last_good else "no checkpoint was written yet"
        return (
            f"loss is {loss.item()} at epoch {self.current_epoch}, global step {self.global_step}; stopping. "
            f"Lower the learning rate (optimizer.lr) and {advice}"
        )

    def on_train_epoch_start(self) -> None:
        if self.trainer.optimizers:
            self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=False, on_epoch=True)

    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=int(self.trainer.estimated_stepping_batches))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["facegen"] = {
            "format": CHECKPOINT_FORMAT,
            "generator": self.generator_config,
            "identity_names": self.identity_names,
            "emotion_names": self.emotion_names,
            "holdout": self.holdout,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        stored = checkpoint.get("facegen")
        if stored is None:
            raise ValueError("this checkpoint has no 'facegen' entry, so it was not written by FaceGen's train.py")
        if stored["generator"] != self.generator_config:
            changed = sorted(k for k in set(stored["generator"]) | set(self.generator_config) if stored["generator"].get(k) != self.generator_config.get(k))
            raise ValueError(
                "the checkpoint's model config differs from this run's in "
                + ", ".join(f"{k} (checkpoint {stored['generator'].get(k)!r}, run {self.generator_config.get(k)!r})" for k in changed)
                + "; resume with the same model, resolution and data settings as the run that wrote it"
            )
        # Checkpoints written before the holdout was stored trained on every record.
        if stored.get("holdout", []) != self.holdout:
            raise ValueError(
                f"the checkpoint was trained with {len(stored.get('holdout', []))} held-out records but this run holds out "
                f"{len(self.holdout)} other ones, so it may have trained on this run's held-out records. "
                "Resume or test with the holdout settings of the run that wrote it"
            )
