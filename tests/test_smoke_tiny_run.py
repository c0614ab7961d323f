"""The shared tiny run leaves what rendering and resuming rely on."""

from pathlib import Path


def test_tiny_run_files(tiny_run: Path):
    checkpoints = tiny_run / "checkpoints"
    assert (checkpoints / "last.ckpt").is_file()
    # Lightning numbers epochs from zero: every second epoch is index 1 and 3.
    assert sorted(p.name for p in checkpoints.glob("epoch_*.ckpt")) == ["epoch_0001.ckpt", "epoch_0003.ckpt"]
    assert sorted(p.name for p in (tiny_run / "samples").glob("epoch_*.png")) == ["epoch_0001.png", "epoch_0003.png"]
