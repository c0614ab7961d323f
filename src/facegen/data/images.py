"""Decode, crop and resize photos into uint8 tensors, once per run."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from facegen.faceset import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
BAD_FILE_POLICIES = ("error", "skip")


def _to_8bit(image: Image.Image) -> Image.Image:
    """Bring 16- and 32-bit integer greyscale down to 8 bits by scaling, not clipping."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        return Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "F":
        array = np.asarray(image, dtype=np.float64)
        return Image.fromarray(np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    return image


def _to_channels(image: Image.Image, channels: int) -> Image.Image:
    """Convert any PIL mode (palette, CMYK, alpha, 16-bit) to L or RGB; alpha is composited on white."""
    image = _to_8bit(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if channels == 1 else "RGB")


def crop_box(size: tuple[int, int], crop: Mapping[str, float] | None, aspect: float) -> tuple[int, int, int, int]:
    """Return the pixel box for a fractional crop, then narrowed around its centre to ``aspect`` (width / height)."""
    width, height = size
    crop = crop or {}
    left = crop.get("left", 0.0) * width
    top = crop.get("top", 0.0) * height
    right = crop.get("right", 1.0) * width
    bottom = crop.get("bottom", 1.0) * height
    box_width, box_height = right - left, bottom - top
    if box_width / box_height > aspect:
        excess = box_width - box_height * aspect
        left, right = left + excess / 2, right - excess / 2
    else:
        excess = box_height - box_width / aspect
        top, bottom = top + excess / 2, bottom - excess / 2
    return round(left), round(top), round(right), round(bottom)


def validate_crop(crop: Mapping[str, float] | None) -> None:
    if not crop:
        return
    unknown = set(crop) - {"left", "top", "right", "bottom"}
    if unknown:
        raise DataError(f"data.crop has unknown keys {sorted(unknown)}; use left, top, right and bottom as fractions of the photo size")
    left, top = crop.get("left", 0.0), crop.get("top", 0.0)
    right, bottom = crop.get("right", 1.0), crop.get("bottom", 1.0)
    if not (0.0 <= left < right <= 1.0 and 0.0 <= top < bottom <= 1.0):
        raise DataError(
            f"data.crop={dict(crop)} is not a box inside the photo; "
            "need 0 <= left < right <= 1 and 0 <= top < bottom <= 1"
        )


def load_image(path: Path, channels: int, width: int, height: int, crop: Mapping[str, float] | None = None) -> torch.Tensor:
    """Decode one photo to a (channels, height, width) uint8 tensor; raise DataError naming the file when it fails."""
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
            image = _to_channels(image, channels)
    except Image.DecompressionBombError as error:
        raise DataError(
            f"{path}: the image has more pixels than Pillow decodes ({error}); downscale the file, "
            "or set data.on_bad_file=skip"
        ) from error
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise DataError(f"{path}: cannot read the image ({error}); replace or remove the file, or set data.on_bad_file=skip") from error

    box = crop_box(image.size, crop, aspect=width / height)
    image = image.resize((width, height), Image.Resampling.LANCZOS, box=box)
    array = np.asarray(image, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array.copy()).permute(2, 0, 1).contiguous()


def decode_images(
    paths: Sequence[Path],
    channels: int,
    width: int,
    height: int,
    crop: Mapping[str, float] | None = None,
    on_bad_file: str = "error",
) -> tuple[torch.Tensor, list[int]]:
    """Decode photos in parallel threads; return (N, C, H, W) uint8 and the indices of ``paths`` that were kept.

    With ``on_bad_file="skip"`` unreadable files are left out with a warning that counts and lists them;
    with ``"error"`` the first one raises DataError.
    """
    if on_bad_file not in BAD_FILE_POLICIES:
        raise DataError(f"data.on_bad_file={on_bad_file!r} is invalid; allowed values are {', '.join(BAD_FILE_POLICIES)}")

    def decode(path: Path) -> torch.Tensor | DataError:
        try:
            return load_image(path, channels, width, height, crop)
        except DataError as error:
            if on_bad_file == "error":
                raise
            return error

    workers = min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(tqdm(pool.map(decode, paths), total=len(paths), desc="decoding images", unit="img", leave=False, disable=None))

    kept = [i for i, result in enumerate(results) if isinstance(result, torch.Tensor)]
    skipped = [str(error) for error in results if isinstance(error, DataError)]
    if skipped:
        log.warning("skipped %d unreadable image(s):\n  %s", len(skipped), "\n  ".join(skipped))
    if not kept:
        raise DataError(f"none of the {len(paths)} images could be read; see the warnings above for each file")
    return torch.stack([results[i] for i in kept]), kept


def describe_path(path: Path) -> str:
    """Name ``path`` for a message, adding where a relative path points from the current folder."""
    if path.is_absolute():
        return str(path)
    return f"{path} (resolved from the current folder {Path.cwd()} to {path.resolve()})"


def list_images(root: Path) -> list[Path]:
    """List image files directly inside ``root`` in a stable order; raise DataError for a missing or empty folder."""
    if not root.exists():
        raise DataError(f"data folder not found: {describe_path(root)}; set data.root to the folder that holds the images")
    if not root.is_dir():
        raise DataError(f"data.root must be a folder, got the file {root}")
    paths = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise DataError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {root}; check data.root")
    return paths
