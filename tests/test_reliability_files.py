"""Atomic writes leave the old file or the new one, never a truncated one; a broken data cache is rebuilt."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from facegen.callbacks import AtomicCheckpointIO
from facegen.data.cache import cache_key, load_cached
from facegen.data.synthetic import SyntheticSource
from facegen.io import atomic_save_with, atomic_write, remove_partial_writes, temporary_pattern

from conftest import PROJECT_ROOT

# Writes 1000 bytes to the target through atomic_write, reports it, then waits to be killed mid-write.
SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from facegen.io import atomic_write
    with atomic_write(sys.argv[1]) as stream:
        stream.write(b"new" * 1000)
        stream.flush()
        print("writing", flush=True)
        time.sleep(120)
    """
)


def test_sigkill_mid_write_keeps_old_file(tmp_path: Path):
    target = tmp_path / "last.ckpt"
    target.write_bytes(b"old")
    writer = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, str(target)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    assert target.read_bytes() == b"old"
    leftovers = list(tmp_path.glob(temporary_pattern("last.ckpt")))
    assert len(leftovers) == 1
    assert leftovers[0].stat().st_size == 3000

    # The next training run removes what the killed write left behind.
    assert remove_partial_writes(tmp_path, ".ckpt") == leftovers
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


def test_failed_write_keeps_old_file(tmp_path: Path):
    target = tmp_path / "samples" / "epoch_0001.png"
    target.parent.mkdir()
    target.write_bytes(b"old")

    def fail_halfway(stream) -> None:
        stream.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_save_with(target, fail_halfway)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["epoch_0001.png"]


def test_checkpoint_that_fails_to_pickle_keeps_old_file(tmp_path: Path):
    target = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"state_dict": {"weight": torch.ones(3)}}, target)
    before = target.read_bytes()

    # A lambda cannot be pickled, so torch.save fails after it has written the tensors.
    with pytest.raises(Exception):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {"weight": torch.zeros(100_000)}, "hook": lambda: None}, target)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]


SOURCE = SyntheticSource(num_identities=3, yaws_per_face=1, seed=0)


def cache_file(cache_dir: Path) -> Path:
    return cache_dir / f"faces-{cache_key(SOURCE.fingerprint(), 32, 32, 3)}.pt"


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def empty(path: Path) -> None:
    path.write_bytes(b"")


def scramble(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = os.urandom(4096)
    path.write_bytes(bytes(data))


def replace_with_other_key(path: Path) -> None:
    stored = torch.load(path, weights_only=True)
    stored["key"] = "0" * 24
    torch.save(stored, path)


@pytest.mark.parametrize("damage", [truncate, empty, scramble, replace_with_other_key], ids=lambda f: f.__name__)
def test_damaged_cache_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture, damage):
    fresh = load_cached(SOURCE, 32, 32, 3, tmp_path)
    path = cache_file(tmp_path)
    damage(path)

    with caplog.at_level(logging.WARNING, logger="facegen.data.cache"):
        rebuilt = load_cached(SOURCE, 32, 32, 3, tmp_path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"data cache {path} is unreadable" in warnings[0]
    assert "rebuilding it" in warnings[0]
    assert torch.equal(rebuilt.images, fresh.images)

    # The rebuilt file is whole again and is read, not rebuilt, by the next run.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facegen.data.cache"):
        reread = load_cached(SOURCE, 32, 32, 3, tmp_path)
    assert any("from the cache" in r.getMessage() for r in caplog.records)
    assert torch.equal(reread.images, fresh.images)


def test_unwritable_cache_folder_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    # A file where the cache folder should be makes every write fail, even for root.
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")
    with caplog.at_level(logging.WARNING, logger="facegen.data.cache"):
        faceset = load_cached(SOURCE, 32, 32, 3, blocker / "cache")
    assert len(faceset) == 24
    assert any("could not write the data cache" in r.getMessage() for r in caplog.records)


def test_atomic_write_keeps_default_permissions(tmp_path):
    # Other users (a web server showing sample grids, a colleague) read what plain open() would let them.
    mask = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "grid.png") as stream:
            stream.write(b"png")
    finally:
        os.umask(mask)
    assert (tmp_path / "grid.png").stat().st_mode & 0o777 == 0o644
