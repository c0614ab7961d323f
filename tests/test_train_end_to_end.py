"""train.py end to end, in subprocesses, on tiny settings."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from facegen.checkpoint import load_generator, read_checkpoint

from conftest import LONDON, PROJECT_ROOT, TINY_TRAINING, run_train, subprocess_env

pytestmark = pytest.mark.slow


def test_checkpoint_carries_what_rendering_needs(tiny_run: Path):
    checkpoint = read_checkpoint(tiny_run / "checkpoints" / "last.ckpt")
    meta = checkpoint["facegen"]
    assert meta["identity_names"] == ["synthetic_00", "synthetic_01", "synthetic_02"]
    assert len(meta["emotion_names"]) == 8
    assert meta["generator"]["width"] == 32
    assert meta["generator"]["height"] == 32
    assert meta["generator"]["channels"] == 3
    assert meta["generator"]["widths"] == [64, 32, 16, 16, 8, 8, 8]
    assert checkpoint["epoch"] == 3

    loaded = load_generator(tiny_run)
    assert loaded.path.name == "last.ckpt"
    identity = torch.eye(3)[:1]
    emotion = torch.eye(8)[:1]
    with torch.no_grad():
        image = loaded.generator(identity, emotion, torch.tensor([[0.0, 1.0]]))
    assert image.shape == (1, 3, 32, 32)


def test_sample_grid_layout(tiny_run: Path):
    grid = Image.open(tiny_run / "samples" / "epoch_0003.png")
    # 3 identity rows x 8 emotion columns of 32-pixel faces with 2-pixel padding.
    assert grid.size == (8 * 34 + 2, 3 * 34 + 2)
    pixels = np.asarray(grid, dtype=np.float32)
    assert pixels.std() > 5, "the sample grid is flat"


def test_loss_falls_over_training(tmp_path, cache_dir):
    run_train([*TINY_TRAINING, "logger=csv", "trainer.max_epochs=6", "trainer.log_every_n_steps=1"], tmp_path, cache_dir)
    rows = list(csv.DictReader(open(next(tmp_path.glob("csv/*/metrics.csv")))))
    epochs = [float(r["train/loss_epoch"]) for r in rows if r.get("train/loss_epoch")]
    assert len(epochs) == 6
    assert epochs[-1] < epochs[0] * 0.8


def test_wandb_offline_writes_into_run_folder(tmp_path, cache_dir):
    run_train([*TINY_TRAINING, "logger=wandb", "trainer.max_epochs=1", "callbacks.sample_grid.every_n_epochs=1"], tmp_path, cache_dir)
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run_id = (tmp_path / "wandb_run_id.txt").read_text().strip()
    assert runs[0].name.endswith(run_id)
    logged = list(runs[0].glob("files/media/images/samples*.png"))
    assert logged, "the sample grid was not logged to W&B"
    # W&B stores the same pixels as the PNG in the run folder, not a rescaled or blank copy.
    local = np.asarray(Image.open(tmp_path / "samples" / "epoch_0000.png").convert("RGB"))
    remote = np.asarray(Image.open(logged[0]).convert("RGB"))
    assert remote.shape == local.shape
    assert np.array_equal(remote, local)


def test_adagrad_with_cosine_schedule(tmp_path, cache_dir):
    run_train([*TINY_TRAINING, "optimizer=adagrad", "scheduler=cosine", "trainer.max_epochs=1"], tmp_path, cache_dir)
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["optimizer_states"][0]["state"], "no optimizer state was saved"
    assert checkpoint.get("lr_schedulers"), "no learning-rate schedule state was saved"


def test_multirun_sweeps_kernels(tmp_path, cache_dir):
    command = [
        sys.executable, str(PROJECT_ROOT / "train.py"), "-m", *TINY_TRAINING,
        "trainer.max_epochs=1", "model.kernels=[5,3],[3,3]", f"hydra.sweep.dir={tmp_path}",
    ]
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    checkpoints = sorted(tmp_path.glob("*/checkpoints/last.ckpt"))
    assert len(checkpoints) == 2
    kernels = sorted(tuple(read_checkpoint(p)["facegen"]["generator"]["kernels"]) for p in checkpoints)
    assert kernels == [(3, 3), (5, 3)]


def test_missing_data_folder_is_reported(tmp_path, cache_dir):
    result = run_train(["data=manifest", f"data.root={tmp_path / 'nowhere'}", "logger=none"], tmp_path / "run", cache_dir, check=False)
    assert result.returncode != 0
    assert f"data folder not found: {tmp_path / 'nowhere'}" in result.stderr


@pytest.mark.skipif(not LONDON.is_dir(), reason="the London face set is not present")
def test_london_one_epoch(tmp_path, cache_dir):
    run_train(["data=london", "resolution=32x32", "model=small", "logger=none", "trainer.max_epochs=1", "trainer.enable_progress_bar=false"], tmp_path, cache_dir)
    meta = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")["facegen"]
    assert len(meta["identity_names"]) == 102
    assert meta["emotion_names"] == ["happy", "neutral"]


def test_missing_data_root_is_one_line(tmp_path, cache_dir):
    result = run_train(["data=manifest", "logger=none"], tmp_path / "run", cache_dir, check=False)
    assert result.returncode != 0
    assert "missing required setting(s) data.root" in result.stderr
    assert "Traceback" not in result.stderr
