"""Comparison sheets over the checkpoints of one run and across the runs of a sweep."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_TRAINING, run_train
from facegen.render import RenderError, render
from facegen.render.config import compose_render_config

QUIET = ["progress=false", "device=cpu", "mp4=false"]


@pytest.fixture(scope="module")
def sgd_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    """A second tiny run of the same data with another optimizer, keeping every epoch."""
    run_dir = tmp_path_factory.mktemp("sgd_run")
    run_train(
        [*TINY_TRAINING, "optimizer=sgd", "trainer.max_epochs=2", "callbacks.sample_grid.every_n_epochs=2", "callbacks.checkpoint.every_n_epochs=1"],
        run_dir,
        cache_dir,
    )
    return run_dir


@pytest.fixture(scope="module")
def sweep(tiny_run: Path, sgd_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A multirun folder as Hydra lays it out, its job folders linking to the two runs."""
    folder = tmp_path_factory.mktemp("multirun") / "2026-01-01" / "12-00-00"
    folder.mkdir(parents=True)
    (folder / "0_optimizer=adam").symlink_to(tiny_run, target_is_directory=True)
    (folder / "1_optimizer=sgd").symlink_to(sgd_run, target_is_directory=True)
    (folder / "multirun.yaml").write_text("hydra: {}\n")
    return folder


def cell(sheet: np.ndarray, layout: dict, row: int, column: int) -> np.ndarray:
    x, y = layout["columns"][column]["x"], layout["rows"][row]["y"]
    return sheet[y : y + layout["cell"]["height"], x : x + layout["cell"]["width"]]


def frame(folder: Path, index: int) -> np.ndarray:
    return np.asarray(Image.open(folder / "frames" / f"frame_{index:04d}.png"))


def test_every_kept_epoch_of_one_run(tiny_run, tmp_path):
    out = tmp_path / "epochs"
    keyframes = "keyframes=[{identity: 0, length: 4}, {identity: 2, emotion: happy}]"
    result = render(compose_render_config([f"ckpt={tiny_run}", "checkpoints=all", f"out={out}", "mode=interpolate", keyframes, *QUIET]))

    # last.ckpt repeats epoch index 3, so it is left out.
    assert [p.name for p in result.checkpoints] == ["epoch_0001.ckpt", "epoch_0003.ckpt"]
    layout = json.loads((out / "comparison.json").read_text())
    assert [c["label"] for c in layout["columns"]] == ["epoch_0001\n2 epochs", "epoch_0003\n4 epochs"]
    assert [c["epoch"] for c in layout["columns"]] == [1, 3]
    assert [r["frame"] for r in layout["rows"]] == [0, 1, 2, 3, 4]

    sheet = np.asarray(Image.open(out / "comparison.png"))
    for column, folder in enumerate(("epoch_0001", "epoch_0003")):
        assert len(list((out / folder / "frames").iterdir())) == 5
        for row in range(5):
            assert np.array_equal(cell(sheet, layout, row, column), frame(out / folder, row)), (folder, row)
    # The two epochs draw different faces from the same inputs.
    assert not np.array_equal(frame(out / "epoch_0001", 0), frame(out / "epoch_0003", 0))
    assert Image.open(out / "comparison.gif").n_frames == 5


def test_list_of_checkpoints_keeps_order(tiny_run, tmp_path):
    out = tmp_path / "listed"
    checkpoints = tiny_run / "checkpoints"
    ckpt = f"ckpt=[{checkpoints / 'last.ckpt'},{checkpoints / 'epoch_0001.ckpt'}]"
    result = render(compose_render_config([ckpt, f"out={out}", "mode=single", *QUIET]))
    assert [p.name for p in result.checkpoints] == ["last.ckpt", "epoch_0001.ckpt"]
    layout = json.loads((out / "comparison.json").read_text())
    assert [c["folder"] for c in layout["columns"]] == ["last", "epoch_0001"]
    # A single frame has no animation, neither per checkpoint nor side by side.
    assert not (out / "comparison.gif").exists()
    assert not (out / "last" / "animation.gif").exists()


def test_runs_of_a_sweep_side_by_side(sweep, tmp_path):
    out = tmp_path / "sweep"
    result = render(compose_render_config([f"ckpt={sweep}", f"out={out}", "mode=random", "frames=3", "seed=4", *QUIET]))
    assert [p.parent.parent.name for p in result.checkpoints] == ["0_optimizer=adam", "1_optimizer=sgd"]
    layout = json.loads((out / "comparison.json").read_text())
    assert [c["label"] for c in layout["columns"]] == ["0_optimizer=adam\n4 epochs", "1_optimizer=sgd\n2 epochs"]
    sheet = np.asarray(Image.open(out / "comparison.png"))
    for column, folder in enumerate(("0_optimizer=adam", "1_optimizer=sgd")):
        for row in range(3):
            assert np.array_equal(cell(sheet, layout, row, column), frame(out / folder, row))


def test_every_epoch_of_every_run(sweep, tmp_path):
    out = tmp_path / "all"
    result = render(compose_render_config([f"ckpt={sweep}", "checkpoints=all", f"out={out}", "mode=single", *QUIET]))
    labels = [c["label"].splitlines()[0] for c in json.loads((out / "comparison.json").read_text())["columns"]]
    assert labels == ["0_optimizer=adam/epoch_0001", "0_optimizer=adam/epoch_0003", "1_optimizer=sgd/epoch_0000", "1_optimizer=sgd/epoch_0001"]
    assert len(result.checkpoints) == 4


def test_mismatched_checkpoints_rejected(tiny_run, tmp_path):
    # The same weights, labelled as if trained on other people.
    checkpoint = torch.load(tiny_run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    checkpoint["facegen"]["identity_names"] = ["ann", "bob", "cy"]
    renamed = tmp_path / "renamed.ckpt"
    torch.save(checkpoint, renamed)

    out = tmp_path / "out"
    with pytest.raises(RenderError, match=rf"{renamed} has other identity or emotion names than .*last.ckpt, so the same inputs mean different faces; compare checkpoints trained on the same data"):
        render(compose_render_config([f"ckpt=[{tiny_run},{renamed}]", f"out={out}", *QUIET]))
    assert not out.exists()
