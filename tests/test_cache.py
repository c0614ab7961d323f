"""The decoded-image cache: reused for the same files and settings, rebuilt when either changes."""

import os
from pathlib import Path

import torch
from PIL import Image

from facegen.data.cache import load_cached
from facegen.data.manifest import ManifestSource


class CountingSource(ManifestSource):
    """A manifest source that counts how often it decodes."""

    loads = 0

    def load(self, width, height, channels):
        CountingSource.loads += 1
        return super().load(width, height, channels)


def make_folder(root: Path) -> Path:
    root.mkdir()
    for name, colour in (("a.png", (200, 10, 10)), ("b.png", (10, 200, 10))):
        Image.new("RGB", (20, 20), colour).save(root / name)
    (root / "labels.csv").write_text("file,identity,emotion\na.png,x,happy\nb.png,y,sad\n")
    return root


def test_cache_reused_for_same_settings(tmp_path):
    root = make_folder(tmp_path / "faces")
    CountingSource.loads = 0
    first = load_cached(CountingSource(root), 8, 8, 3, tmp_path / "cache")
    second = load_cached(CountingSource(root), 8, 8, 3, tmp_path / "cache")
    assert CountingSource.loads == 1
    assert torch.equal(first.images, second.images)
    assert second.identity_names == ["x", "y"]


def test_cache_keyed_by_settings(tmp_path):
    root = make_folder(tmp_path / "faces")
    CountingSource.loads = 0
    load_cached(CountingSource(root), 8, 8, 3, tmp_path / "cache")
    load_cached(CountingSource(root), 16, 16, 3, tmp_path / "cache")
    load_cached(CountingSource(root), 8, 8, 1, tmp_path / "cache")
    assert CountingSource.loads == 3
    assert len(list((tmp_path / "cache").glob("faces-*.pt"))) == 3


def test_cache_rebuilt_when_a_file_changes(tmp_path):
    root = make_folder(tmp_path / "faces")
    CountingSource.loads = 0
    before = load_cached(CountingSource(root), 8, 8, 3, tmp_path / "cache")
    Image.new("RGB", (20, 20), (10, 10, 200)).save(root / "a.png")
    stat = (root / "a.png").stat()
    os.utime(root / "a.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = load_cached(CountingSource(root), 8, 8, 3, tmp_path / "cache")
    assert CountingSource.loads == 2
    assert not torch.equal(before.images, after.images)


def test_cache_disabled_with_none(tmp_path):
    root = make_folder(tmp_path / "faces")
    CountingSource.loads = 0
    load_cached(CountingSource(root), 8, 8, 3, None)
    load_cached(CountingSource(root), 8, 8, 3, None)
    assert CountingSource.loads == 2
