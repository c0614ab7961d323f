"""Bad input, table by table: Hydra overrides, checkpoints and image files either work or fail with a
message that names the value or file. Config mistakes fail before any data is read."""

from __future__ import annotations

import csv
import io
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.errors import ConfigCompositionException, MissingConfigException
from PIL import Image

import facegen.data.datamodule
from facegen.data.images import load_image
from facegen.data.manifest import ManifestSource
from facegen.faceset import DataError
from facegen.generator import ConfigError
from facegen.module import CheckpointError
from reliability_helpers import reliability_env, train_in_process

from conftest import PROJECT_ROOT, TINY_TRAINING


def forbid_data_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make training fail the test if it gets as far as decoding or loading the face set."""

    def read_data(*args, **kwargs):
        raise AssertionError("the data was read before the bad input was reported")

    monkeypatch.setattr(facegen.data.datamodule, "load_cached", read_data)


@pytest.fixture
def no_data_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_data_reads(monkeypatch)


# ---------------------------------------------------------------------------------------------------
# Hydra overrides: (overrides, expected exception, fragments of its message)

CONFIG_CASES = {
    "unknown resolution option": (["resolution=33x33"], MissingConfigException, ["Could not find 'resolution/33x33'", "Available options in 'resolution'", "32x32", "64x64", "128x160"]),
    "unknown optimizer option": (["optimizer=adamw2"], MissingConfigException, ["Could not find 'optimizer/adamw2'", "adagrad", "adamw", "sgd"]),
    "misspelt trainer key": (["trainer.max_epoch=3"], ConfigCompositionException, ["Could not override 'trainer.max_epoch'"]),
    "width not a power-of-two multiple": (["resolution.width=48"], ConfigError, ["resolution 48x32 is not a power-of-two multiple of the initial grid 4x4", "allowed sizes with this grid are 8x8, 16x16, 32x32, 64x64"]),
    "square but 24 times the grid": (["resolution.width=96", "resolution.height=96"], ConfigError, ["resolution 96x96 is not a power-of-two multiple", "64x64, 128x128"]),
    "widths a string": (["model.widths=abc"], ConfigError, ["model.widths must be a list of positive integers, one per block, got 'abc'"]),
    "widths with a string item": (["model.widths=[64,a]"], ConfigError, ["model.widths must be a list of positive integers", "[64, 'a']"]),
    "widths a number": (["model.widths=64"], ConfigError, ["model.widths must be a list of positive integers", "got 64"]),
    "too few widths": (["model.widths=[64,32]"], ConfigError, ["model.widths has 2 entries but resolution 32x32 needs 3 blocks"]),
    "even kernel": (["model.kernels=[4,3]"], ConfigError, ["model.kernels must be two odd positive integers", "[4, 3]"]),
    "two channels": (["data.channels=2"], ConfigError, ["channels must be 1 (greyscale) or 3 (RGB), got 2"]),
    "batch size zero": (["data.batch_size=0"], ConfigError, ["data.batch_size must be at least 1, got 0"]),
    "negative learning rate": (["optimizer.lr=-1"], ConfigError, ["invalid optimizer or scheduler settings", "Invalid learning rate: -1"]),
    "learning rate a string": (["optimizer.lr=fast"], ConfigError, ["invalid optimizer or scheduler settings", "'lr': 'fast'"]),
    "unknown precision": (["trainer.precision=bogus"], ConfigError, ["invalid trainer settings", "Precision 'bogus' is invalid", "32-true"]),
    "unknown trainer argument": (["+trainer.max_epoch=3"], ConfigError, ["invalid trainer settings", "max_epoch"]),
    "negative checkpoint interval": (["callbacks.last_checkpoint.every_n_train_steps=-1"], ConfigError, ["every_n_train_steps >= 0", "got -1"]),
    "resume without a checkpoint": (["ckpt_path=last"], CheckpointError, ["ckpt_path=last but", "checkpoints/last.ckpt does not exist"]),
    "resume from a missing file": (["ckpt_path=/nonexistent/run/last.ckpt"], CheckpointError, ["ckpt_path=/nonexistent/run/last.ckpt: checkpoint not found"]),
    "no identities": (["data.num_identities=0"], DataError, ["data.num_identities and data.yaws_per_face must be at least 1, got 0 and 1"]),
}


@pytest.mark.parametrize("case", list(CONFIG_CASES))
def test_bad_override_fails_before_data(case: str, tmp_path: Path, cache_dir: Path, no_data_reads: None):
    overrides, expected, fragments = CONFIG_CASES[case]
    with pytest.raises(Exception) as raised:
        train_in_process(tmp_path, cache_dir, *TINY_TRAINING, *overrides)
    error = raised.value
    # Hydra wraps errors raised while building a _target_, and train.py reports the cause.
    cause = error.__cause__ if type(error).__name__ == "InstantiationException" else error
    assert isinstance(cause, expected), repr(error)
    for fragment in fragments:
        assert fragment in str(cause)


# ---------------------------------------------------------------------------------------------------
# Checkpoints: (how to damage or replace a good last.ckpt, overrides for the resuming run,
#               expected fragments, whether the error comes before the data is read)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("checkpoint_source")
    train_in_process(run_dir, cache_dir, *TINY_TRAINING, "trainer.max_epochs=1")
    return run_dir / "checkpoints" / "last.ckpt"


def keep(path: Path) -> None:
    pass


def truncate_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def make_empty(path: Path) -> None:
    path.write_bytes(b"")


def overwrite_weights(path: Path) -> None:
    # The weights are the bulk of the file, so its middle lies inside the tensor data.
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


def replace_with_text(path: Path) -> None:
    path.write_text("this is not a checkpoint\n")


def replace_with_foreign_checkpoint(path: Path) -> None:
    torch.save({"state_dict": {"weight": torch.zeros(2)}, "epoch": 0}, path)


CHECKPOINT_CASES = {
    "truncated": (truncate_half, [], ["is not a readable checkpoint", "it may be truncated or corrupt"], True),
    "zero bytes": (make_empty, [], ["is empty (0 bytes)"], True),
    "weights overwritten": (overwrite_weights, [], ["is corrupt: its weights or optimizer state no longer match the SHA-256 digest"], True),
    "text file": (replace_with_text, [], ["is not a readable checkpoint"], True),
    "not from train.py": (replace_with_foreign_checkpoint, [], ["is not a FaceGen checkpoint: it has no 'facegen' entry"], True),
    "other widths": (keep, ["model.widths=[32,32,16]"], ["was written for another model config", "widths is [64, 32, 16, 16, 8, 8, 8] there and [32, 32, 16] in this run"], True),
    "other resolution": (keep, ["resolution=64x64"], ["was written for another model config", "width is 32 there and 64 in this run", "height is 32 there and 64 in this run"], True),
    "other model size": (keep, ["model=base"], ["was written for another model config", "embed_dim is 64 there and 512 in this run"], True),
    # The number of identities comes from the data, so Lightning's load of the checkpoint catches it.
    "other identities": (keep, ["data.num_identities=4"], ["was written for another model config", "num_identities is 3 there and 4 in this run"], False),
}


@pytest.mark.parametrize("case", list(CHECKPOINT_CASES))
def test_bad_checkpoint_is_named(case: str, tmp_path: Path, cache_dir: Path, trained_checkpoint: Path, monkeypatch: pytest.MonkeyPatch):
    damage, overrides, fragments, before_data = CHECKPOINT_CASES[case]
    path = tmp_path / "given.ckpt"
    shutil.copyfile(trained_checkpoint, path)
    damage(path)
    if before_data:
        forbid_data_reads(monkeypatch)

    with pytest.raises(CheckpointError) as raised:
        train_in_process(tmp_path / "run", cache_dir, *TINY_TRAINING, "trainer.max_epochs=2", f"ckpt_path={path}", *overrides)
    message = str(raised.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message


def test_good_checkpoint_resumes(tmp_path: Path, cache_dir: Path, trained_checkpoint: Path):
    # The control row of the table: an undamaged copy resumes and trains the second epoch.
    path = tmp_path / "given.ckpt"
    shutil.copyfile(trained_checkpoint, path)
    train_in_process(tmp_path / "run", cache_dir, *TINY_TRAINING, "trainer.max_epochs=2", f"ckpt_path={path}")
    assert torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == 4


# ---------------------------------------------------------------------------------------------------
# Image files: (builder, expected (channels=3) mean colour of the decoded 16x16 image or None, fragment
#               of the error message). Every error must also name the file.

RED = (200, 30, 20)


def png_16bit(path: Path, pixels: np.ndarray) -> None:
    """Write a 16-bit-per-channel PNG by hand, because Pillow cannot write 16-bit RGB."""
    height, width, channels = pixels.shape
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour_type = {1: 0, 3: 2, 4: 6}[channels]
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def encoded_noise(seed: int, format: str) -> bytes:
    """Encode 64x64 random pixels, which leave no flat areas where a decoder could hide damage."""
    noise = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format=format, **({"quality": 90} if format == "JPEG" else {}))
    return buffer.getvalue()


def rgb_jpeg(path: Path) -> None:
    Image.new("RGB", (40, 50), RED).save(path, quality=95)


def cmyk_jpeg(path: Path) -> None:
    Image.new("RGB", (40, 50), RED).convert("CMYK").save(path, quality=95)


def greyscale_png(path: Path) -> None:
    Image.new("L", (40, 50), 128).save(path)


def greyscale_16bit_png(path: Path) -> None:
    # 40000 of 65535 is 155.6 of 255.
    Image.fromarray(np.full((50, 40), 40000, dtype=np.uint16)).save(path)


def rgb_16bit_png(path: Path) -> None:
    png_16bit(path, np.full((50, 40, 3), [60000, 1000, 30000], dtype=np.uint16))


def transparent_png(path: Path) -> None:
    Image.new("RGBA", (40, 50), (0, 0, 255, 0)).save(path)


def palette_png(path: Path) -> None:
    Image.new("RGB", (40, 50), RED).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(path)


def zero_byte_jpeg(path: Path) -> None:
    path.write_bytes(b"")


def truncated_jpeg(path: Path) -> None:
    data = encoded_noise(0, "JPEG")
    path.write_bytes(data[: len(data) // 2])


def truncated_png(path: Path) -> None:
    data = encoded_noise(1, "PNG")
    path.write_bytes(data[: len(data) // 2])


def corrupt_jpeg_header(path: Path) -> None:
    data = bytearray(encoded_noise(0, "JPEG"))
    data[2:40] = bytes(38)
    path.write_bytes(bytes(data))


def corrupt_jpeg_scan(path: Path) -> None:
    data = bytearray(encoded_noise(0, "JPEG"))
    middle = len(data) // 2
    for i in range(middle, middle + 200):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def text_named_png(path: Path) -> None:
    path.write_text("name,identity\n")


def oversized_png(path: Path) -> None:
    # A header that claims 30000 x 30000 pixels, above Pillow's decompression-bomb limit.
    png_16bit(path, np.zeros((1, 1, 1), dtype=np.uint16))
    data = bytearray(path.read_bytes())
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(bytes(data))


IMAGE_CASES: dict[str, tuple[str, Callable[[Path], None], tuple[float, float, float] | None, str | None]] = {
    "rgb jpeg": ("rgb.jpg", rgb_jpeg, RED, None),
    "cmyk jpeg": ("cmyk.jpg", cmyk_jpeg, RED, None),
    "greyscale png": ("grey.png", greyscale_png, (128, 128, 128), None),
    "16-bit greyscale png": ("grey16.png", greyscale_16bit_png, (156, 156, 156), None),
    # Pillow keeps the high byte of each 16-bit channel: 60000 // 256 = 234, 1000 // 256 = 3, 30000 // 256 = 117.
    "16-bit rgb png": ("rgb16.png", rgb_16bit_png, (234, 3, 117), None),
    "transparent png": ("alpha.png", transparent_png, (255, 255, 255), None),
    "palette png": ("palette.png", palette_png, RED, None),
    "zero-byte jpeg": ("empty.jpg", zero_byte_jpeg, None, "cannot read the image (cannot identify image file"),
    "truncated jpeg": ("cut.jpg", truncated_jpeg, None, "cannot read the image"),
    "truncated png": ("cut.png", truncated_png, None, "cannot read the image (image file is truncated)"),
    "corrupt jpeg header": ("header.jpg", corrupt_jpeg_header, None, "cannot read the image (cannot identify image file"),
    "corrupt jpeg scan data": ("scan.jpg", corrupt_jpeg_scan, None, "cannot read the image (broken data stream"),
    "text named .png": ("notes.png", text_named_png, None, "cannot read the image (cannot identify image file"),
    "oversized png": ("huge.png", oversized_png, None, "the image has more pixels than Pillow decodes"),
}


@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_image_file_loads_or_is_named(case: str, tmp_path: Path):
    name, build, colour, fragment = IMAGE_CASES[case]
    path = tmp_path / name
    build(path)
    if colour is None:
        with pytest.raises(DataError) as raised:
            load_image(path, channels=3, width=16, height=16)
        assert str(raised.value).startswith(f"{path}: ")
        assert fragment in str(raised.value)
        assert "set data.on_bad_file=skip" in str(raised.value)
        return

    image = load_image(path, channels=3, width=16, height=16)
    assert image.shape == (3, 16, 16)
    assert image.dtype == torch.uint8
    assert image.float().mean(dim=(1, 2)).tolist() == pytest.approx(colour, abs=2)
    grey = load_image(path, channels=1, width=16, height=16)
    assert grey.shape == (1, 16, 16)


def manifest_folder(folder: Path) -> Path:
    """Write every image case into ``folder`` with a labels.csv that lists them, one identity each."""
    folder.mkdir()
    with open(folder / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "identity", "emotion"])
        for index, (name, build, _, _) in enumerate(IMAGE_CASES.values()):
            build(folder / name)
            writer.writerow([name, f"person{index}", "neutral"])
    return folder


def test_manifest_skips_or_names_bad_files(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    folder = manifest_folder(tmp_path / "faces")
    good = [name for name, _, colour, _ in IMAGE_CASES.values() if colour is not None]
    bad = [name for name, _, colour, _ in IMAGE_CASES.values() if colour is None]

    with pytest.raises(DataError) as raised:
        ManifestSource(folder).load(16, 16, 3)
    assert any(str(raised.value).startswith(f"{folder / name}: cannot read the image") or str(raised.value).startswith(f"{folder / name}: the image") for name in bad)

    faceset = ManifestSource(folder, on_bad_file="skip").load(16, 16, 3)
    assert sorted(Path(f).name for f in faceset.files) == sorted(good)
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert f"skipped {len(bad)} unreadable image(s)" in warning
    for name in bad:
        assert str(folder / name) in warning


# ---------------------------------------------------------------------------------------------------
# What a user of train.py gets: one line on stderr and exit status 1, with no traceback. The runs start
# together and share the machine, because each spends seconds importing Lightning.


def user_cases(root: Path) -> dict[str, tuple[list[str], list[str]]]:
    """Return each case's overrides and the fragments its stderr must contain; data files go under ``root``."""
    folder = root / "faces_with_bad_file"
    folder.mkdir()
    rgb_jpeg(folder / "good.jpg")
    truncated_jpeg(folder / "cut.jpg")
    (folder / "labels.csv").write_text("file,identity,emotion\ngood.jpg,a,neutral\ncut.jpg,b,happy\n")
    return {
        "unknown option": ([*TINY_TRAINING, "resolution=33x33"], ["Could not find 'resolution/33x33'", "Available options in 'resolution'", "64x64"]),
        "widths of the wrong type": ([*TINY_TRAINING, "model.widths=abc"], ["error: model.widths must be a list of positive integers, one per block, got 'abc'"]),
        "truncated image": (
            ["data=manifest", f"data.root={folder}", *[o for o in TINY_TRAINING if not o.startswith("data")]],
            [f"error: {folder / 'cut.jpg'}: cannot read the image"],
        ),
        "nan loss": (
            [*TINY_TRAINING, "+callbacks.poison._target_=reliability_callbacks.PoisonWeights", "+callbacks.poison.at_step=1"],
            ["error: loss is nan at epoch 0, global step 1, so training stopped. No checkpoint was written yet"],
        ),
    }


# Config mistakes must fail before any face is decoded into the cache.
BEFORE_DATA = {"unknown option", "widths of the wrong type"}


@pytest.fixture(scope="module")
def user_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Run every user case through train.py at once; return each one's exit status, output and cache folder."""
    root = tmp_path_factory.mktemp("user_errors")
    started = {}
    for index, (case, (overrides, fragments)) in enumerate(user_cases(root).items()):
        cache = root / f"cache_{index}"
        command = [sys.executable, str(PROJECT_ROOT / "train.py"), *overrides, f"hydra.run.dir={root / f'run_{index}'}"]
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=reliability_env(cache), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        started[case] = (process, cache, fragments)
    outputs = {}
    for case, (process, cache, fragments) in started.items():
        stdout, stderr = process.communicate(timeout=300)
        outputs[case] = {"returncode": process.returncode, "stdout": stdout, "stderr": stderr, "cache": cache, "fragments": fragments}
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize("case", ["unknown option", "widths of the wrong type", "truncated image", "nan loss"])
def test_train_py_reports_one_line(case: str, user_outputs: dict[str, dict]):
    output = user_outputs[case]
    assert output["returncode"] == 1, output["stderr"][-4000:]
    assert "Traceback" not in output["stderr"]
    for fragment in output["fragments"]:
        assert fragment in output["stderr"]
    if case in BEFORE_DATA:
        cache = output["cache"]
        assert not cache.exists() or not any(cache.iterdir())
