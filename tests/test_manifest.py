"""CSV manifest reading: RGB and greyscale photos, labels, and bad input."""

from pathlib import Path

import pytest
import torch
from PIL import Image

from facegen.data.manifest import ManifestSource
from facegen.faceset import DataError

from conftest import LONDON


def write_folder(root: Path, rows: list[tuple], mode: str = "RGB", header: str = "file,identity,emotion,orientation,notes") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    lines = [header]
    for i, row in enumerate(rows):
        colour = (40 * i % 256, 90, 200) if mode == "RGB" else 30 * i % 256
        Image.new(mode, (40, 50), colour).save(root / row[0])
        lines.append(",".join(str(v) for v in row))
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    return root


ROWS = [
    ("a.png", "bob", "happy", 0, "x"),
    ("b.png", "bob", "neutral", 30, "y"),
    ("c.png", "alice", "sad", -15.5, ""),
]


def test_manifest_rgb(tmp_path):
    faces = ManifestSource(write_folder(tmp_path / "rgb", ROWS)).load(width=8, height=10, channels=3)
    assert faces.images.shape == (3, 3, 10, 8)
    assert faces.identity_names == ["alice", "bob"]
    assert faces.identities.tolist() == [1, 1, 0]
    # Emotion names keep RaFD's order and only those present.
    assert faces.emotion_names == ["happy", "neutral", "sad"]
    assert faces.emotions.argmax(dim=1).tolist() == [0, 1, 2]
    assert faces.yaws.tolist() == [0.0, 30.0, -15.5]


def test_manifest_greyscale_to_one_or_three_channels(tmp_path):
    root = write_folder(tmp_path / "grey", ROWS, mode="L")
    grey = ManifestSource(root).load(8, 10, channels=1)
    assert grey.images.shape == (3, 1, 10, 8)
    rgb = ManifestSource(root).load(8, 10, channels=3)
    assert rgb.images.shape == (3, 3, 10, 8)
    # A greyscale photo read as RGB has three equal channels.
    assert torch.equal(rgb.images[:, 0], rgb.images[:, 1])
    assert torch.equal(rgb.images[:, 0], grey.images[:, 0])


def test_manifest_orientation_column_optional(tmp_path):
    root = write_folder(tmp_path / "plain", [r[:3] for r in ROWS], header="file,identity,emotion")
    faces = ManifestSource(root).load(8, 10, 3)
    assert faces.yaws.tolist() == [0.0, 0.0, 0.0]


def test_manifest_numeric_identities_sort_by_value(tmp_path):
    rows = [("a.png", "10", "happy"), ("b.png", "2", "happy"), ("c.png", "1", "neutral")]
    faces = ManifestSource(write_folder(tmp_path / "n", rows, header="file,identity,emotion")).load(8, 10, 3)
    assert faces.identity_names == ["1", "2", "10"]


def test_manifest_reads_london():
    if not LONDON.is_dir():
        pytest.skip(f"{LONDON} is not present")
    faces = ManifestSource(LONDON).load(16, 16, 3)
    assert len(faces) == 204
    assert len(faces.identity_names) == 102
    assert faces.emotion_names == ["happy", "neutral"]
    assert faces.identity_names[:3] == ["001", "002", "003"]


BAD = [
    ("missing folder", lambda root: root / "absent", "data folder not found"),
    ("missing manifest", lambda root: (root / "labels.csv").unlink() or root, "manifest not found: .*labels.csv"),
]


@pytest.mark.parametrize("case, prepare, message", BAD, ids=[b[0] for b in BAD])
def test_manifest_missing_files(tmp_path, case, prepare, message):
    root = prepare(write_folder(tmp_path / "data", ROWS))
    with pytest.raises(DataError, match=message):
        ManifestSource(root).load(8, 10, 3)


def test_relative_missing_folder_is_resolved(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError) as error:
        ManifestSource(Path("../absent")).load(8, 10, 3)
    assert f"data folder not found: ../absent (resolved from the current folder {tmp_path} to {tmp_path.parent / 'absent'})" in str(error.value)


def test_manifest_missing_column(tmp_path):
    root = write_folder(tmp_path / "data", [r[:2] for r in ROWS], header="file,identity")
    with pytest.raises(DataError, match=r"missing column\(s\) emotion"):
        ManifestSource(root).load(8, 10, 3)


def test_manifest_unknown_emotion(tmp_path):
    root = write_folder(tmp_path / "data", ROWS + [("d.png", "eve", "bored", 0, "")])
    with pytest.raises(DataError, match="line 5: unknown emotion 'bored'"):
        ManifestSource(root).load(8, 10, 3)


def test_manifest_bad_orientation(tmp_path):
    root = write_folder(tmp_path / "data", ROWS + [("d.png", "eve", "happy", "left", "")])
    with pytest.raises(DataError, match="line 5: orientation 'left' is not a number"):
        ManifestSource(root).load(8, 10, 3)


def test_manifest_missing_image(tmp_path):
    root = write_folder(tmp_path / "data", ROWS)
    (root / "b.png").unlink()
    with pytest.raises(DataError, match="line 3: image not found: .*b.png"):
        ManifestSource(root).load(8, 10, 3)


def test_manifest_empty(tmp_path):
    root = write_folder(tmp_path / "data", [])
    with pytest.raises(DataError, match="lists no images"):
        ManifestSource(root).load(8, 10, 3)


def test_manifest_skip_unreadable(tmp_path, caplog):
    root = write_folder(tmp_path / "data", ROWS)
    (root / "c.png").write_bytes(b"\x89PNG truncated")
    with caplog.at_level("WARNING"):
        faces = ManifestSource(root, on_bad_file="skip").load(8, 10, 3)
    assert len(faces) == 2
    assert "skipped 1 unreadable image(s)" in caplog.text
    assert "c.png" in caplog.text
    # The skipped photo took the only "sad" row, so that emotion is no longer part of the run.
    assert faces.emotion_names == ["happy", "neutral"]
