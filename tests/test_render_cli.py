"""render.py as a user runs it: Hydra overrides, a preset spec, and bad input as one line with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from conftest import PROJECT_ROOT, subprocess_env


def run_render(args: list[str], cache_dir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, str(PROJECT_ROOT / "render.py"), "progress=false", "device=cpu", *args]
    return subprocess.run(command, cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=300)


def test_cli_renders_preset_with_overrides(tiny_run, tmp_path, cache_dir):
    out = tmp_path / "walk"
    result = run_render([f"ckpt={tiny_run}", "spec=drunk_walk", "frames=5", "zoom=2", f"out={out}"], cache_dir)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["animation.gif", "animation.mp4", "frames", "render.yaml", "sheet.png"]
    assert len(list((out / "frames").iterdir())) == 5
    assert Image.open(out / "animation.gif").size == (64, 64)
    # The preset's seed and mode, with the command line's frame count.
    recorded = (out / "render.yaml").read_text()
    assert "mode: drunk" in recorded
    assert "frames: 5" in recorded
    assert "seed: 7" in recorded
    # Hydra writes no log file or .hydra folder of its own into the working folder.
    assert not (PROJECT_ROOT / "render.log").exists()
    assert not (PROJECT_ROOT / ".hydra").exists()


def test_cli_bad_input_is_one_line(tiny_run, tmp_path, cache_dir):
    out = tmp_path / "render"
    result = run_render([f"ckpt={tiny_run}", "mode=single", "emotion=happy+grumpy", f"out={out}"], cache_dir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "render.py: error: emotion='happy+grumpy': unknown emotion 'grumpy'; this checkpoint allows "
        "angry, contemptuous, disgusted, fearful, happy, neutral, sad, surprised"
    ]
    assert "Traceback" not in result.stdout + result.stderr
    assert not out.exists()


def test_cli_unknown_option_keeps_hydra_error(tiny_run, tmp_path, cache_dir):
    result = run_render([f"ckpt={tiny_run}", "framez=5", f"out={tmp_path / 'render'}"], cache_dir)
    assert result.returncode == 1
    assert "Could not override 'framez'" in result.stderr
    assert not (tmp_path / "render").exists()
