"""Test-only callbacks that the reliability tests add to a run with ``+callbacks.<name>._target_=...``.

train.py subprocesses, and the DDP ranks they start, import them from ``tests/``, which
``reliability_helpers.reliability_env`` puts on PYTHONPATH.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import torch

import facegen.callbacks


class StepCounter(L.Callback):
    """Saves, per process, the global step that training started from, how many batches it trained and
    the step and exception it stopped at, to ``<folder>/steps-<pid>.pt``, so a test can tell a resumed
    run from one that started afresh."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.start_step: int | None = None
        self.start_epoch: int | None = None
        self.batches = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start_step = trainer.global_step
        self.start_epoch = trainer.current_epoch

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.batches += 1

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._save(trainer, stopped_by=None)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._save(trainer, stopped_by=type(exception).__name__)

    def _save(self, trainer: L.Trainer, stopped_by: str | None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "start_step": self.start_step,
            "start_epoch": self.start_epoch,
            "batches": self.batches,
            "end_step": trainer.global_step,
            "stopped_by": stopped_by,
        }
        torch.save(record, self.folder / f"steps-{os.getpid()}.pt")


class PoisonWeights(L.Callback):
    """Fills the first weight of the generator with NaN after optimizer step ``at_step``, as a diverging
    update would, so that the next loss is NaN."""

    def __init__(self, at_step: int) -> None:
        self.at_step = at_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step == self.at_step:
            with torch.no_grad():
                next(pl_module.generator.parameters()).fill_(float("nan"))


class RankRecorder(L.Callback):
    """Records, on every rank, which checkpoint and sample grid files that rank wrote, and saves the
    rank's final weights, to ``<folder>/rank<global rank>.pt``."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        self.checkpoints: list[str] = []
        self.sample_grids: list[str] = []

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        checkpoint_io = trainer.strategy.checkpoint_io
        save_checkpoint = checkpoint_io.save_checkpoint

        def record_checkpoint(checkpoint: dict, path: Any, storage_options: Any = None) -> None:
            self.checkpoints.append(str(path))
            save_checkpoint(checkpoint, path, storage_options)

        checkpoint_io.save_checkpoint = record_checkpoint

        # SampleGrid looks save_png up in its module at each call, so replacing it there records every grid.
        save_png = facegen.callbacks.save_png

        def record_grid(grid: torch.Tensor, path: Any) -> None:
            self.sample_grids.append(str(path))
            save_png(grid, path)

        facegen.callbacks.save_png = record_grid

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # teardown runs after the checkpoint callbacks' last saves, which on_train_end would miss.
        self.folder.mkdir(parents=True, exist_ok=True)
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "global_step": trainer.global_step,
            "checkpoints": self.checkpoints,
            "sample_grids": self.sample_grids,
        }
        state = {name: value.detach().cpu().clone() for name, value in pl_module.generator.state_dict().items()}
        torch.save({"record": record, "state_dict": state}, self.folder / f"rank{trainer.global_rank}.pt")
