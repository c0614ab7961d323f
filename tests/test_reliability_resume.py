"""A training run killed with SIGKILL resumes from last.ckpt and ends where an uninterrupted run ends."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from facegen.checkpoint import read_checkpoint
from reliability_helpers import reliability_env, run_train_with_helpers

from conftest import PROJECT_ROOT, TINY_TRAINING

# 24 faces in batches of 2 make 12 optimizer steps an epoch, 48 in all. last.ckpt is written every
# 5 steps and not at epoch ends, so every checkpoint before the last one is mid-epoch.
EPOCHS = 4
STEPS_PER_EPOCH = 12
RESUMABLE_RUN = [
    *TINY_TRAINING,
    "scheduler=cosine",
    "data.batch_size=2",
    f"trainer.max_epochs={EPOCHS}",
    "callbacks.last_checkpoint.every_n_train_steps=5",
    "callbacks.last_checkpoint.every_n_epochs=0",
    "callbacks.checkpoint.every_n_epochs=100",
    "callbacks.sample_grid.every_n_epochs=100",
]


def resumable_args(run_dir: Path, logger: str = "wandb") -> list[str]:
    """Return the train.py overrides of the run, with a StepCounter that records each process's steps."""
    return [*RESUMABLE_RUN, f"logger={logger}", "+callbacks.steps._target_=reliability_callbacks.StepCounter", f"+callbacks.steps.folder={run_dir / 'steps'}"]


def start_train(run_dir: Path, cache_dir: Path, logger: str) -> subprocess.Popen:
    """Start train.py in the background, with its output in ``<run_dir>.log``."""
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *resumable_args(run_dir, logger), f"hydra.run.dir={run_dir}"]
    with open(f"{run_dir}.log", "w") as log:
        return subprocess.Popen(command, cwd=PROJECT_ROOT, env=reliability_env(cache_dir), stdout=log, stderr=subprocess.STDOUT)


def kill_after_step(process: subprocess.Popen, last: Path, min_step: int, timeout: float = 240) -> None:
    """SIGKILL ``process`` once ``last`` contains at least ``min_step`` optimizer steps."""
    deadline = time.monotonic() + timeout
    step, seen = None, None
    while time.monotonic() < deadline:
        # Atomic writes replace last.ckpt whole, so any version read here is complete.
        if last.is_file() and last.stat().st_mtime_ns != seen:
            seen = last.stat().st_mtime_ns
            step = int(torch.load(last, map_location="cpu", weights_only=True)["global_step"])
        if process.poll() is not None:
            pytest.fail(f"train.py ended (exit {process.returncode}) before it could be killed; last.ckpt step {step}")
        if step is not None and step >= min_step:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
            return
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    pytest.fail(f"last.ckpt did not reach step {min_step} within {timeout} s")


def steps_records(run_dir: Path) -> list[dict]:
    return [torch.load(p, weights_only=True) for p in sorted((run_dir / "steps").glob("steps-*.pt"))]


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path: Path, cache_dir: Path):
    reference_dir, killed_dir = tmp_path / "uninterrupted", tmp_path / "killed"
    # Both start at once to halve the wall time; they share the data cache, whose writes are atomic.
    reference = start_train(reference_dir, cache_dir, logger="none")
    killed = start_train(killed_dir, cache_dir, logger="wandb")

    kill_after_step(killed, killed_dir / "checkpoints" / "last.ckpt", min_step=STEPS_PER_EPOCH + 3)
    assert killed.returncode == -signal.SIGKILL
    # The kill may land mid-write: last.ckpt must still be a whole checkpoint, never a truncated one.
    at_kill = read_checkpoint(killed_dir / "checkpoints" / "last.ckpt")
    killed_step = at_kill["global_step"]
    assert killed_step % 5 == 0
    assert killed_step % STEPS_PER_EPOCH != 0, "the kill should interrupt an epoch"
    run_id = (killed_dir / "wandb_run_id.txt").read_text()

    resumed = run_train_with_helpers([*resumable_args(killed_dir), "ckpt_path=last"], killed_dir, cache_dir)
    assert f"Restoring states from the checkpoint path at {killed_dir / 'checkpoints' / 'last.ckpt'}" in resumed.stderr
    assert reference.wait(timeout=300) == 0, Path(f"{reference_dir}.log").read_text()[-4000:]

    final = read_checkpoint(killed_dir / "checkpoints" / "last.ckpt")
    expected = read_checkpoint(reference_dir / "checkpoints" / "last.ckpt")
    assert final["global_step"] == EPOCHS * STEPS_PER_EPOCH
    assert final["global_step"] == expected["global_step"]
    assert final["epoch"] == expected["epoch"]

    # The resumed process trained only the missing steps, starting in the epoch the kill interrupted.
    records = steps_records(killed_dir)
    assert len(records) == 1, "only the resumed process can have recorded its steps"
    assert records[0]["stopped_by"] is None
    assert records[0]["start_step"] == killed_step
    assert records[0]["start_epoch"] == killed_step // STEPS_PER_EPOCH
    assert records[0]["batches"] == EPOCHS * STEPS_PER_EPOCH - killed_step

    # Adam's per-parameter step counter and the schedule continued rather than restarting.
    final_adam_steps = {int(state["step"]) for state in final["optimizer_states"][0]["state"].values()}
    assert final_adam_steps == {EPOCHS * STEPS_PER_EPOCH}
    assert final["lr_schedulers"][0]["last_epoch"] == expected["lr_schedulers"][0]["last_epoch"]
    assert final["lr_schedulers"][0]["_last_lr"] == pytest.approx(expected["lr_schedulers"][0]["_last_lr"])

    # The resumed run logged into the same W&B run: same id file, and both offline runs carry that id.
    assert (killed_dir / "wandb_run_id.txt").read_text() == run_id
    offline_runs = sorted((killed_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2
    assert {run.name.rsplit("-", 1)[1] for run in offline_runs} == {run_id.strip()}


@pytest.mark.slow
def test_sigterm_saves_the_stop_step(tmp_path: Path, cache_dir: Path):
    run_dir = tmp_path / "run"
    process = start_train(run_dir, cache_dir, logger="none")
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "train.py ended before it could be stopped"
    process.send_signal(signal.SIGTERM)

    # Exit status 143 (128 + SIGTERM) marks the run as stopped rather than finished for a scheduler.
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    output = Path(f"{run_dir}.log").read_text()
    stopped_at = read_checkpoint(last)["global_step"]
    assert f"error: training stopped on SIGTERM; continue it from {last} (global step {stopped_at}) with ckpt_path=last" in output
    assert 5 <= stopped_at < EPOCHS * STEPS_PER_EPOCH
    # Lightning stops at the batch end after the signal, and that step is the one saved.
    records = steps_records(run_dir)
    assert len(records) == 1
    assert records[0]["stopped_by"] == "SIGTERMException"
    assert records[0]["end_step"] == stopped_at
