"""Smoke test of benchmarks/speed.py with tiny settings; it checks what the script reports, never a speed."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from facegen.precision import default_cpu_precision

from conftest import PROJECT_ROOT, subprocess_env

TINY = ["data=synthetic", "data.num_identities=2", "data.yaws_per_face=1", "resolution=32x32", "model=small", "trainer.enable_progress_bar=false"]


def expected_forward_flops() -> float:
    """Multiply-accumulate FLOPs (2 per MAC) of model=small at 32x32 with 2 identities and 8 emotions."""
    embed, fc, grid, widths, size = 64, 128, 64, [64, 32, 16], 4
    flops = 2 * (2 * embed + 8 * embed + 2 * embed)  # identity, emotion and orientation embeddings
    flops += 2 * (3 * embed * fc + fc * grid * size * size)
    channels = grid
    for width in widths:
        size *= 2
        flops += 2 * size * size * (channels * width * 25 + width * width * 9)  # 5x5 then 3x3 convolution
        channels = width
    return flops + 2 * size * size * channels * 3 * 9  # 3x3 convolution to RGB


@pytest.mark.slow
def test_speed_script_reports(tmp_path, cache_dir):
    output = tmp_path / "speed.json"
    command = [
        sys.executable, str(PROJECT_ROOT / "benchmarks" / "speed.py"), "--steps", "6", "--warmup", "2", "--repeats", "1",
        "--render-batch", "4", "--render-frames", "8", "--job-epochs", "10", "--profile", "5", "--json", str(output), *TINY,
    ]  # fmt: skip
    result = subprocess.run(command, cwd=PROJECT_ROOT, env=subprocess_env(cache_dir), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "| Lightning / bare |" in result.stdout
    # The profile table lists operators; convolutions dominate this generator's step.
    assert "aten::convolution_backward" in result.stdout

    results = json.loads(output.read_text())
    for key in ("bare_images_per_second", "lightning_images_per_second", "loader_images_per_second", "matmul_gflops", "render_frames_per_second", "job_hours"):
        assert math.isfinite(results[key]), key
        assert results[key] > 0, key
    assert results["lightning_over_bare"] == pytest.approx(results["lightning_images_per_second"] / results["bare_images_per_second"])
    # One loss per step, the warm-up steps included.
    assert len(results["bare_losses"]) == 6
    assert len(results["lightning_losses"]) == 6
    assert results["gflop_per_image_forward"] * 1e9 == pytest.approx(expected_forward_flops())
    assert results["gflop_per_image_training"] > 2 * results["gflop_per_image_forward"]
    assert results["resolution"] == "32x32"
    assert results["precision"] == default_cpu_precision()

    # benchmarks/table.py turns the record into one row of the comparison table in docs/benchmarks.md.
    table = subprocess.run([sys.executable, str(PROJECT_ROOT / "benchmarks" / "table.py"), str(output)], capture_output=True, text=True, timeout=60)
    assert table.returncode == 0, table.stderr
    header, rule, row = table.stdout.splitlines()
    assert header.count("|") == row.count("|")
    assert row.startswith("| `speed` | ")
    assert f"| {results['lightning_over_bare']:.3f} |" in row


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"a": 1}'], ids=["text", "list", "other object"])
def test_table_rejects_other_files(tmp_path, text):
    other = tmp_path / "notes.json"
    other.write_text(text)
    table = subprocess.run([sys.executable, str(PROJECT_ROOT / "benchmarks" / "table.py"), str(other)], capture_output=True, text=True, timeout=60)
    assert table.returncode != 0
    assert "not a benchmark record" in table.stderr
    assert table.stdout == "", "the table header was printed before the error"


@pytest.mark.parametrize(
    "options, message",
    [
        (["--render-batch", "0"], "--render-batch must be at least 1"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--warmup", "-1"], "--warmup must be 0 or more"),
        (["--loader-only", "bogus.key=1"], "Could not override 'bogus.key'"),
        (["--loader-only", "model=nosuch"], "model"),
    ],
)
def test_speed_rejects_bad_options(options, message):
    result = subprocess.run([sys.executable, str(PROJECT_ROOT / "benchmarks" / "speed.py"), *options], capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
