"""Output files: a staged output folder, numbered PNG frames, an animated GIF and an MP4.

Frames are uint8 arrays of shape (F, H, W, C) with C = 1 (greyscale) or 3 (RGB).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import imageio_ffmpeg
import numpy as np
from PIL import Image

from facegen.render.errors import RenderError

log = logging.getLogger(__name__)


def check_output_folder(out: Path, overwrite: bool) -> None:
    """Reject an output path that is a file, or a non-empty folder unless ``overwrite`` is set."""
    if out.exists() and not out.is_dir():
        raise RenderError(f"out={out} is an existing file; choose a folder path for the render")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise RenderError(f"output folder {out} already exists and is not empty; pass overwrite=true to replace it, or choose another out=")


def check_mp4_writer() -> None:
    """Fail before rendering when the ffmpeg binary that writes MP4 files is missing."""
    try:
        imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as error:
        raise RenderError(f"writing MP4 needs ffmpeg, which was not found ({error}); install imageio-ffmpeg or pass mp4=false") from error


@contextmanager
def staged_folder(out: Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``out``; when the block succeeds, rename it to ``out``.

    A failed or interrupted render removes the staged folder, so ``out`` contains either nothing or a complete
    render. With ``overwrite`` an existing ``out`` is replaced only after the new render is complete.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    os.chmod(staging, 0o755)  # mkdtemp creates 0700; a render folder is for sharing.
    try:
        yield staging
        check_output_folder(out, overwrite)
        if out.exists():
            retired = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(out, retired)
            os.replace(staging, out)
            shutil.rmtree(retired)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def to_image(frame: np.ndarray) -> Image.Image:
    """Wrap an (H, W, C) uint8 array as a PIL image: mode L for one channel, RGB for three."""
    return Image.fromarray(frame[:, :, 0] if frame.shape[2] == 1 else frame)


def zoom_frames(frames: np.ndarray, zoom: int) -> np.ndarray:
    """Enlarge (F, H, W, C) frames by a whole factor with nearest-neighbour sampling, so pixels stay sharp."""
    if zoom == 1:
        return frames
    return frames.repeat(zoom, axis=1).repeat(zoom, axis=2)


def write_frames(frames: np.ndarray, folder: Path) -> list[Path]:
    """Save each frame as ``frame_0000.png``, ``frame_0001.png``, ... (more digits past 10000 frames)."""
    folder.mkdir(parents=True, exist_ok=True)
    digits = max(4, len(str(len(frames) - 1)))
    paths = []
    for index, frame in enumerate(frames):
        path = folder / f"frame_{index:0{digits}d}.png"
        to_image(frame).save(path, format="PNG")
        paths.append(path)
    return paths


def write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    """Save a looping GIF at ``fps``.

    GIF stores frame times in hundredths of a second and Pillow rounds them down, so 12 fps plays at 80 ms
    a frame. Pillow also merges identical consecutive frames into one longer frame, keeping the timing.
    """
    images = [to_image(frame) for frame in frames]
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=1000.0 / fps, loop=0)


def write_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    """Save an H.264 MP4 at ``fps``; frames are padded with white to even sizes, which H.264's 4:2:0 colour needs."""
    if frames.shape[3] == 1:
        frames = frames.repeat(3, axis=3)
    height, width = frames.shape[1:3]
    padded_height, padded_width = height + height % 2, width + width % 2
    if (padded_height, padded_width) != (height, width):
        canvas = np.full((len(frames), padded_height, padded_width, 3), 255, dtype=np.uint8)
        canvas[:, :height, :width] = frames
        frames = canvas

    writer = imageio_ffmpeg.write_frames(
        str(path),
        (padded_width, padded_height),
        fps=fps,
        codec="libx264",
        macro_block_size=2,
        quality=8,
        ffmpeg_log_level="error",
    )
    writer.send(None)  # starts ffmpeg
    try:
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
    finally:
        writer.close()
