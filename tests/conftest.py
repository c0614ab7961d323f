"""Shared test helpers: paths, a subprocess runner for train.py, and a tiny trained run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LONDON = PROJECT_ROOT.parent / "shared" / "data" / "london"

# The smallest run that still exercises every part of training: 3 synthetic people at 32x32.
TINY_TRAINING = [
    "data=synthetic",
    "data.num_identities=3",
    "data.yaws_per_face=1",
    "resolution=32x32",
    "model=small",
    "logger=none",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def subprocess_env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        FACEGEN_CACHE_DIR=str(cache_dir),
        PYTHONUNBUFFERED="1",
        # Tiny models gain nothing from more threads, and one thread per process keeps parallel runs from thrashing two cores.
        OMP_NUM_THREADS="1",
    )
    return env


def run_train(
    args: list[str], run_dir: Path, cache_dir: Path, timeout: float = 300, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python train.py`` with ``args`` into ``run_dir``; fail the test with its output when it fails.

    ``env`` replaces the default ``subprocess_env(cache_dir)``.
    """
    command = [sys.executable, str(PROJECT_ROOT / "train.py"), *args, f"hydra.run.dir={run_dir}"]
    env = env if env is not None else subprocess_env(cache_dir)
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        pytest.fail(f"train.py exited with {result.returncode}\n--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-6000:]}")
    return result


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A run folder with checkpoints at epochs 2 and 4, last.ckpt and sample grids, trained once per session."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    run_train(
        [
            *TINY_TRAINING,
            "trainer.max_epochs=4",
            "callbacks.sample_grid.every_n_epochs=2",
            "callbacks.checkpoint.every_n_epochs=2",
        ],
        run_dir,
        cache_dir,
    )
    return run_dir
