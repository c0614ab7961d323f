"""A NaN stops training with the step and the last good checkpoint; one seed and config give one model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facegen.checkpoint import read_checkpoint
from facegen.module import NonFiniteLossError
from reliability_helpers import train_in_process

from conftest import TINY_TRAINING

# 24 faces in batches of 2: 12 optimizer steps an epoch, last.ckpt every 5 steps.
STEP_CHECKPOINTS = [
    *TINY_TRAINING,
    "data.batch_size=2",
    "trainer.max_epochs=2",
    "callbacks.last_checkpoint.every_n_train_steps=5",
    "callbacks.last_checkpoint.every_n_epochs=0",
    "callbacks.sample_grid.every_n_epochs=100",
]


@pytest.mark.parametrize(
    ("poisoned_after_step", "detected_by"),
    [
        # The next loss is NaN.
        (7, "loss is nan at epoch 0, global step 7"),
        # Step 10 is a checkpoint step, so the save finds the NaN weight before any loss does and raises.
        (10, "weights generator.identity_fc.0.weight are NaN or infinite at epoch 0, global step 10"),
    ],
)
def test_nan_stops_with_last_good_checkpoint(tmp_path: Path, cache_dir: Path, poisoned_after_step: int, detected_by: str):
    with pytest.raises(NonFiniteLossError) as raised:
        train_in_process(
            tmp_path,
            cache_dir,
            *STEP_CHECKPOINTS,
            "+callbacks.poison._target_=reliability_callbacks.PoisonWeights",
            f"+callbacks.poison.at_step={poisoned_after_step}",
        )
    message = str(raised.value)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert detected_by in message
    assert f"The last good checkpoint is {last} (global step 5)" in message
    assert f"ckpt_path={last}" in message

    checkpoint = read_checkpoint(last)
    assert checkpoint["global_step"] == 5
    non_finite = [name for name, value in checkpoint["state_dict"].items() if value.is_floating_point() and not torch.isfinite(value).all()]
    assert non_finite == []


def test_nan_before_any_checkpoint(tmp_path: Path, cache_dir: Path):
    with pytest.raises(NonFiniteLossError, match="global step 2, so training stopped. No checkpoint was written yet"):
        train_in_process(
            tmp_path,
            cache_dir,
            *STEP_CHECKPOINTS,
            "+callbacks.poison._target_=reliability_callbacks.PoisonWeights",
            "+callbacks.poison.at_step=2",
        )
    assert not (tmp_path / "checkpoints" / "last.ckpt").exists()


def final_weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


def test_same_seed_same_weights(tmp_path: Path, cache_dir: Path):
    # Batches of 5 leave a short last batch, and hflip draws from the random generator on every record.
    settings = [*TINY_TRAINING, "data.batch_size=5", "data.hflip=true", "trainer.max_epochs=3", "scheduler=cosine"]
    train_in_process(tmp_path / "first", cache_dir, *settings, "seed=3")
    train_in_process(tmp_path / "second", cache_dir, *settings, "seed=3")
    train_in_process(tmp_path / "other_seed", cache_dir, *settings, "seed=4")

    first, second, other = final_weights(tmp_path / "first"), final_weights(tmp_path / "second"), final_weights(tmp_path / "other_seed")
    assert first.keys() == second.keys()
    differing = [name for name in first if not torch.equal(first[name], second[name])]
    assert differing == []
    # The comparison can fail: another seed gives other weights.
    assert not torch.equal(first["generator.to_image.weight"], other["generator.to_image.weight"])
