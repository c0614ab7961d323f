"""trainer=ddp with two CPU processes over gloo: rank zero alone writes files, and the ranks agree on the weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facegen.checkpoint import read_checkpoint
from reliability_helpers import run_train_with_helpers

from conftest import TINY_TRAINING

# 24 faces in batches of 4 are 6 batches an epoch, split over 2 ranks: 3 optimizer steps an epoch.
EPOCHS = 2
DDP_ON_CPU = [
    "trainer=ddp",
    "trainer.accelerator=cpu",
    "trainer.devices=2",
    "trainer.precision=32-true",
    # PyTorch's SyncBatchNorm runs on GPUs only; FaceGenModule hands rank zero's statistics to every rank instead.
    "trainer.sync_batchnorm=false",
]


@pytest.mark.slow
def test_two_rank_ddp_on_cpu(tmp_path: Path, cache_dir: Path):
    run_dir = tmp_path / "run"
    ranks = tmp_path / "ranks"
    result = run_train_with_helpers(
        [
            *TINY_TRAINING,
            *DDP_ON_CPU,
            "logger=wandb",
            "data.batch_size=4",
            f"trainer.max_epochs={EPOCHS}",
            "callbacks.sample_grid.every_n_epochs=1",
            "callbacks.checkpoint.every_n_epochs=1",
            "+callbacks.recorder._target_=reliability_callbacks.RankRecorder",
            f"+callbacks.recorder.folder={ranks}",
        ],
        run_dir,
        cache_dir,
    )
    assert "distributed_backend=gloo" in result.stderr
    records = {rank: torch.load(ranks / f"rank{rank}.pt", weights_only=True) for rank in (0, 1)}
    for rank in (0, 1):
        assert records[rank]["record"]["world_size"] == 2
        assert records[rank]["record"]["global_step"] == EPOCHS * 3

    # Every checkpoint and sample grid is written once, by rank zero, into the one run folder.
    checkpoints = run_dir / "checkpoints"
    assert sorted(records[0]["record"]["checkpoints"]) == sorted(
        [str(checkpoints / "epoch_0000.ckpt"), str(checkpoints / "epoch_0001.ckpt"), str(checkpoints / "last.ckpt"), str(checkpoints / "last.ckpt")]
    )
    assert records[0]["record"]["sample_grids"] == [str(run_dir / "samples" / "epoch_0000.png"), str(run_dir / "samples" / "epoch_0001.png")]
    assert records[1]["record"]["checkpoints"] == []
    assert records[1]["record"]["sample_grids"] == []
    assert sorted(p.name for p in checkpoints.iterdir()) == ["epoch_0000.ckpt", "epoch_0001.ckpt", "last.ckpt"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["epoch_0000.png", "epoch_0001.png"]

    # Only rank zero started a W&B run, under the run folder's id.
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert offline_runs[0].name.endswith((run_dir / "wandb_run_id.txt").read_text().strip())

    # Both ranks have the same parameters and batch-norm statistics, and last.ckpt contains them too.
    weights = {rank: records[rank]["state_dict"] for rank in (0, 1)}
    assert weights[0].keys() == weights[1].keys()
    differing = [name for name in weights[0] if not torch.equal(weights[0][name], weights[1][name])]
    assert differing == []
    saved = read_checkpoint(checkpoints / "last.ckpt")
    assert saved["global_step"] == EPOCHS * 3
    differing_from_saved = [name for name, value in weights[0].items() if not torch.equal(saved["state_dict"][f"generator.{name}"], value)]
    assert differing_from_saved == []
