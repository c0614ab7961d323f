"""Renders from the shared tiny checkpoint: each mode's files, endpoint images, seeds and bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

import facegen.render.pipeline as pipeline
from facegen.checkpoint import CheckpointError, load_generator
from facegen.render import RenderError, render
from facegen.render.config import compose_render_config
from facegen.render.modes import build_inputs
from facegen.render.spec import read_spec

QUIET = ["progress=false", "device=cpu"]


def render_with(run: Path, out: Path, *overrides: str):
    """Render from ``run`` into ``out`` with command-line style overrides, as render.py would."""
    return render(compose_render_config([f"ckpt={run}", f"out={out}", *QUIET, *overrides]))


def frame_files(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "frames").iterdir())


def read_frame(out: Path, index: int) -> np.ndarray:
    return np.asarray(Image.open(out / "frames" / f"frame_{index:04d}.png")).astype(int)


def leftovers(parent: Path) -> list[str]:
    """Hidden staging folders that a render left beside its output."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_single_writes_one_frame_and_sheet(tiny_run, tmp_path):
    out = tmp_path / "single"
    result = render_with(tiny_run, out, "mode=single", "identity=1", "emotion=happy")
    assert result.frame_count == 1
    assert frame_files(out) == ["frame_0000.png"]
    assert sorted(p.name for p in out.iterdir()) == ["frames", "render.yaml", "sheet.png"]
    assert Image.open(out / "frames" / "frame_0000.png").size == (32, 32)
    # One frame with a 2-pixel border on every side.
    assert Image.open(out / "sheet.png").size == (36, 36)


def test_random_writes_frames_sheet_and_animations(tiny_run, tmp_path):
    out = tmp_path / "random"
    result = render_with(tiny_run, out, "mode=random", "frames=6", "seed=1", "fps=5")
    assert result.frame_count == 6
    assert frame_files(out) == [f"frame_{i:04d}.png" for i in range(6)]
    assert {"animation.gif", "animation.mp4", "sheet.png", "render.yaml"} <= {p.name for p in out.iterdir()}
    # Six frames in a near-square grid: 3 columns, 2 rows.
    assert Image.open(out / "sheet.png").size == (2 + 3 * 34, 2 + 2 * 34)
    gif = Image.open(out / "animation.gif")
    assert gif.n_frames == 6
    assert gif.info["duration"] == 200
    assert iio.imread(out / "animation.mp4", plugin="FFMPEG").shape == (6, 32, 32, 3)


def test_drunk_writes_requested_frames(tiny_run, tmp_path):
    out = tmp_path / "drunk"
    result = render_with(tiny_run, out, "mode=drunk", "frames=9", "seed=2", "mp4=false", "zoom=2")
    assert result.frame_count == 9
    assert len(frame_files(out)) == 9
    assert not (out / "animation.mp4").exists()
    # zoom enlarges the animation and the sheet, not the frames.
    assert Image.open(out / "animation.gif").size == (64, 64)
    assert Image.open(out / "frames" / "frame_0008.png").size == (32, 32)


def test_interpolate_frame_count_and_endpoint_images(tiny_run, tmp_path):
    out = tmp_path / "interpolate"
    keyframes = "keyframes=[{identity: 0, emotion: neutral, orientation: -40, length: 5}, {identity: 2, emotion: happy, length: 1s}, {identity: 1+2, orientation: 50}]"
    result = render_with(tiny_run, out, "mode=interpolate", "fps=3", keyframes, "mp4=false")
    assert result.frame_count == 5 + 3 + 1
    assert len(frame_files(out)) == 9
    # Identical frames merge in a GIF, so check the total time: 9 frames at 3 fps.
    gif = Image.open(out / "animation.gif")
    assert sum(_gif_durations(gif)) == pytest.approx(9 * 1000 / 3, abs=9 * 10)

    for frame, values in ((0, ["identity=0", "emotion=neutral", "orientation=-40"]), (5, ["identity=2", "emotion=happy", "orientation=-40"]), (8, ["identity=1+2", "emotion=happy", "orientation=50"])):
        single = tmp_path / f"keyframe_{frame}"
        render_with(tiny_run, single, "mode=single", *values)
        difference = np.abs(read_frame(out, frame) - read_frame(single, 0)).max()
        # Batches of other sizes may round a channel differently by one step.
        assert difference <= 1, (frame, difference)


def _gif_durations(gif: Image.Image) -> list[int]:
    durations = []
    for index in range(gif.n_frames):
        gif.seek(index)
        durations.append(gif.info["duration"])
    return durations


def test_constrained_and_unconstrained_images_differ(tiny_run, tmp_path):
    render_with(tiny_run, tmp_path / "constrained", "identity=0+1+2")
    render_with(tiny_run, tmp_path / "raw", "identity=0+1+2", "constrained=false")
    assert np.abs(read_frame(tmp_path / "constrained", 0) - read_frame(tmp_path / "raw", 0)).max() > 0


def test_seed_repeats_render_files(tiny_run, tmp_path):
    for mode in ("random", "drunk"):
        first = render_with(tiny_run, tmp_path / f"{mode}_a", f"mode={mode}", "frames=4", "seed=21", "gif=false", "mp4=false")
        again = render_with(tiny_run, tmp_path / f"{mode}_b", f"mode={mode}", "frames=4", "seed=21", "gif=false", "mp4=false")
        other = render_with(tiny_run, tmp_path / f"{mode}_c", f"mode={mode}", "frames=4", "seed=22", "gif=false", "mp4=false")
        assert first.seed == again.seed == 21
        for index in range(4):
            assert np.array_equal(read_frame(first.out, index), read_frame(again.out, index)), (mode, index)
        assert any(not np.array_equal(read_frame(first.out, i), read_frame(other.out, i)) for i in range(4)), mode


def test_recorded_seed_repeats_unseeded_render(tiny_run, tmp_path):
    first = render_with(tiny_run, tmp_path / "a", "mode=random", "frames=3", "gif=false", "mp4=false")
    again = render(compose_render_config([f"spec={first.out / 'render.yaml'}", f"out={tmp_path / 'b'}", *QUIET]))
    assert again.seed == first.seed
    assert again.frame_count == 3
    for index in range(3):
        assert np.array_equal(read_frame(first.out, index), read_frame(again.out, index))


def test_preset_spec_with_command_line_override(tiny_run, tmp_path):
    out = tmp_path / "preset"
    result = render_with(tiny_run, out, "spec=identity_emotion", "fps=4", "gif=false", "mp4=false")
    # Lengths 0.75 s, 1 s, 0.75 s, 1 s, 0.75 s, 1 s at 4 fps, then the last keyframe held for 0.25 s.
    assert result.frame_count == 3 + 4 + 3 + 4 + 3 + 4 + 1
    assert "fps: 4" in (out / "render.yaml").read_text()


def test_every_preset_builds_inputs(tiny_run):
    names = load_generator(tiny_run)
    presets = sorted((Path(__file__).resolve().parents[1] / "conf" / "render" / "presets").glob("*.yaml"))
    assert len(presets) >= 5
    for preset in presets:
        cfg = compose_render_config([f"spec={preset}", f"ckpt={tiny_run}", "out=unused"])
        spec = read_spec(OmegaConf.to_container(cfg, resolve=True))
        inputs = build_inputs(spec, names.identity_names, names.emotion_names, seed=0)
        assert len(inputs) == spec.frame_count > 1, preset.name


def test_overwrite_replaces_existing_folder(tiny_run, tmp_path):
    out = tmp_path / "again"
    out.mkdir()
    (out / "old.txt").write_text("old render\n")
    with pytest.raises(RenderError, match=rf"output folder {out} already exists and is not empty; pass overwrite=true"):
        render_with(tiny_run, out, "mode=single")
    assert (out / "old.txt").read_text() == "old render\n"

    render_with(tiny_run, out, "mode=single", "overwrite=true")
    assert not (out / "old.txt").exists()
    assert frame_files(out) == ["frame_0000.png"]
    assert leftovers(tmp_path) == []


def test_failed_write_leaves_nothing(tiny_run, tmp_path, monkeypatch):
    def broken_mp4(frames, path, fps):
        Path(path).write_bytes(b"half an mp4")
        raise OSError("disk full")

    monkeypatch.setattr(pipeline, "write_mp4", broken_mp4)
    out = tmp_path / "broken"
    with pytest.raises(OSError, match="disk full"):
        render_with(tiny_run, out, "mode=drunk", "frames=3")
    assert not out.exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["emotion=hapy"], r"unknown emotion 'hapy'; this checkpoint allows angry, contemptuous, .*, surprised"),
        (["identity=synthetic_07"], r"unknown identity 'synthetic_07'; this checkpoint allows a name \(synthetic_00, synthetic_01, synthetic_02\) or an index from 0 to 2"),
        (["identity=3"], r"identity index 3 is out of range; this checkpoint has 3 identities, so use an index from 0 to 2"),
        (["identity=0++1"], r"identity='0\+\+1' is not a valid mixture"),
        (["mode=interpolate", "keyframes=[{identity: 0}, {identity: 1}]"], r"keyframe 1 of 2 has no length"),
        (["mode=interpolate", "keyframes=[{identity: 0, length: -2}, {identity: 1}]"], r"length -2 is negative"),
    ],
)
def test_bad_values_write_nothing(tiny_run, tmp_path, overrides, message):
    out = tmp_path / "render"
    with pytest.raises(RenderError, match=message):
        render_with(tiny_run, out, *overrides)
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_bad_checkpoints_are_named(tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a zip file at all")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {}, "epoch": 1}, foreign)
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    cases = [
        (garbage, rf"{garbage} is not a readable checkpoint"),
        (foreign, rf"{foreign} is not a FaceGen checkpoint"),
        (empty, rf"{empty} is empty \(0 bytes\)"),
        (tmp_path / "missing.ckpt", r"checkpoint not found: .*missing.ckpt"),
        (tmp_path, rf"no last.ckpt in the run folder {tmp_path}"),
    ]
    for path, message in cases:
        out = tmp_path / f"out_{path.stem}"
        with pytest.raises(CheckpointError, match=message):
            render_with(path, out)
        assert not out.exists(), path


def test_wandb_reference_offline_says_pass_local_path(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    with pytest.raises(CheckpointError, match=r"ckpt=wandb:me/facegen/model-abc:v3 is a W&B artifact, but W&B is set to WANDB_MODE=offline.*pass the local checkpoint"):
        render(compose_render_config(["ckpt=wandb:me/facegen/model-abc:v3", f"out={tmp_path / 'out'}", *QUIET]))
    assert not (tmp_path / "out").exists()


def test_wandb_offline_run_folder_means_its_run(tiny_run, tmp_path):
    # A copy, so the shared run stays as training left it.
    run = shutil.copytree(tiny_run, tmp_path / "run")
    offline = run / "wandb" / "offline-run-20260101_000000-abcd1234"
    offline.mkdir(parents=True)
    result = render_with(offline, tmp_path / "out", "mode=single")
    assert result.checkpoints == [run / "checkpoints" / "last.ckpt"]
