"""Render a description from one or several checkpoints: check everything, draw, then write the output folder.

Every check (settings, names, checkpoints, output folder) runs before the first file is written, and the
files go to a staged folder that is renamed to ``out`` only when complete.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, OmegaConf

from facegen.checkpoint import CheckpointError, LoadedGenerator, load_generator
from facegen.render.checkpoints import checkpoint_labels, checkpoint_paths, drop_repeated_last, folder_names
from facegen.render.errors import RenderError
from facegen.render.generate import generate_frames, pick_device
from facegen.render.modes import build_inputs
from facegen.render.options import MISSING, RenderOptions, read_options
from facegen.render.sheets import comparison_sheet, contact_sheet, subsample
from facegen.render.spec import RenderSpec, read_spec
from facegen.render.writers import (
    check_mp4_writer,
    check_output_folder,
    staged_folder,
    to_image,
    write_frames,
    write_gif,
    write_mp4,
    zoom_frames,
)

log = logging.getLogger(__name__)

# The settings recorded in <out>/render.yaml, which `spec=<out>/render.yaml` renders again.
RECORDED_KEYS = (
    "mode", "fps", "frames", "seed", "constrained", "identity", "emotion", "orientation",
    "keyframes", "inputs", "zoom", "sheet", "gif", "mp4", "checkpoints", "ckpt",
)  # fmt: skip


@dataclass
class RenderResult:
    """Summary of a finished render: its folder, frame count, seed, checkpoints and files (relative to the folder)."""

    out: Path
    frame_count: int
    seed: int
    checkpoints: list[Path]
    files: list[Path]


def count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def check_compatible(paths: Sequence[Path], loaded: Sequence[LoadedGenerator]) -> None:
    """Require every checkpoint to draw the same image size from the same identity and emotion names."""
    first, first_path = loaded[0], paths[0]
    size = (first.generator.width, first.generator.height, first.generator.channels)
    for path, other in zip(paths[1:], loaded[1:]):
        other_size = (other.generator.width, other.generator.height, other.generator.channels)
        if other_size != size:
            raise RenderError(
                f"{path} draws {other_size[0]}x{other_size[1]} images with {other_size[2]} channels but {first_path} draws "
                f"{size[0]}x{size[1]} with {size[2]}; compare checkpoints of the same resolution and channels"
            )
        if other.identity_names != first.identity_names or other.emotion_names != first.emotion_names:
            raise RenderError(
                f"{path} has other identity or emotion names than {first_path}, so the same inputs mean different faces; "
                "compare checkpoints trained on the same data"
            )


def write_render(frames: np.ndarray, folder: Path, spec: RenderSpec, options: RenderOptions) -> list[Path]:
    """Write one checkpoint's frames, contact sheet and, for more than one frame, its animations."""
    written = write_frames(frames, folder / "frames")
    zoomed = zoom_frames(frames, options.zoom)
    sheet, _ = contact_sheet(zoomed, options.sheet_max_frames, options.sheet_columns)
    to_image(sheet).save(folder / "sheet.png", format="PNG")
    written.append(folder / "sheet.png")
    if len(frames) > 1:
        written += write_animations(zoomed, folder / "animation", spec.fps, options)
    return written


def write_animations(frames: np.ndarray, stem: Path, fps: float, options: RenderOptions) -> list[Path]:
    written = []
    if options.gif:
        write_gif(frames, stem.with_suffix(".gif"), fps)
        written.append(stem.with_suffix(".gif"))
    if options.mp4:
        write_mp4(frames, stem.with_suffix(".mp4"), fps)
        written.append(stem.with_suffix(".mp4"))
    return written


def write_comparison(
    renders: Sequence[np.ndarray],
    labels: Sequence[str],
    folders: Sequence[str],
    paths: Sequence[Path],
    loaded: Sequence[LoadedGenerator],
    staging: Path,
    spec: RenderSpec,
    options: RenderOptions,
) -> list[Path]:
    """Write comparison.png (a column per checkpoint), comparison.json (its layout) and side-by-side animations."""
    zoomed = [zoom_frames(frames, options.zoom) for frames in renders]
    rows = subsample(len(renders[0]), options.comparison_rows)
    sheet, layout = comparison_sheet(zoomed, labels, rows)
    to_image(sheet).save(staging / "comparison.png", format="PNG")

    columns = [
        {"label": label, "folder": folder, "checkpoint": str(path), "epoch": generator.epoch, "global_step": generator.global_step, "x": x}
        for label, folder, path, generator, x in zip(labels, folders, paths, loaded, layout.column_x)
    ]
    description = {
        "columns": columns,
        "rows": [{"frame": frame, "y": y} for frame, y in zip(rows, layout.row_y)],
        "cell": {"width": layout.cell_width, "height": layout.cell_height},
    }
    (staging / "comparison.json").write_text(json.dumps(description, indent=2) + "\n")
    written = [staging / "comparison.png", staging / "comparison.json"]

    if len(renders[0]) > 1:
        side_by_side = np.stack([comparison_sheet(zoomed, labels, [frame])[0] for frame in range(len(renders[0]))])
        written += write_animations(side_by_side, staging / "comparison", spec.fps, options)
    return written


def record_settings(settings: Mapping[str, Any], seed: int, paths: Sequence[Path]) -> str:
    """Return the YAML of <out>/render.yaml: the description with its seed and the resolved checkpoint files."""
    record = {key: settings[key] for key in RECORDED_KEYS if key in settings}
    record["seed"] = seed
    record["ckpt"] = str(paths[0].resolve()) if len(paths) == 1 else [str(path.resolve()) for path in paths]
    return OmegaConf.to_yaml(OmegaConf.create(record))


def load_checkpoints(settings: Mapping[str, Any]) -> tuple[list[Path], list[LoadedGenerator]]:
    paths = checkpoint_paths(settings.get("ckpt"), settings.get("checkpoints", "last"))
    loaded = [load_generator(path, "cpu") for path in paths]
    paths, loaded = drop_repeated_last(paths, loaded)
    check_compatible(paths, loaded)
    return paths, loaded


def render(cfg: DictConfig | Mapping[str, Any]) -> RenderResult:
    """Render the description in ``cfg`` and write it to ``cfg.out``; raises RenderError or CheckpointError for bad input."""
    settings = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    if settings.get("ckpt") in (None, "", MISSING):
        raise CheckpointError("ckpt is not set; pass ckpt=PATH: a .ckpt file, a run folder, a multirun folder or wandb:ENTITY/PROJECT/NAME:VERSION")
    spec = read_spec(settings)
    options = read_options(settings)
    check_output_folder(options.out, options.overwrite)
    if options.mp4 and spec.frame_count > 1:
        check_mp4_writer()
    device = pick_device(options.device)

    paths, loaded = load_checkpoints(settings)
    seed = spec.seed if spec.seed is not None else secrets.randbelow(2**31)
    inputs = build_inputs(spec, loaded[0].identity_names, loaded[0].emotion_names, seed)
    if spec.mode in ("random", "drunk") and spec.seed is None:
        log.info("seed %d; pass seed=%d to repeat this render", seed, seed)

    labels = checkpoint_labels(paths, loaded)
    log.info("drawing %s (mode=%s) from %s on %s", count(len(inputs), "frame"), spec.mode, count(len(paths), "checkpoint"), device)
    # NOTE: every frame of every checkpoint stays in memory until written, about 1 GB per checkpoint
    # for 1000 RGB frames at 512x640.
    renders = []
    for label, generator in zip(labels, loaded):
        renders.append(generate_frames(generator.generator, inputs, device, options.batch_size, options.progress, label.splitlines()[0]))
        generator.generator.cpu()

    with staged_folder(options.out, options.overwrite) as staging:
        if len(renders) == 1:
            written = write_render(renders[0], staging, spec, options)
        else:
            folders = folder_names(labels)
            written = []
            for frames, folder in zip(renders, folders):
                written += write_render(frames, staging / folder, spec, options)
            written += write_comparison(renders, labels, folders, paths, loaded, staging, spec, options)
        (staging / "render.yaml").write_text(record_settings(settings, seed, paths))
        written.append(staging / "render.yaml")
        files = [path.relative_to(staging) for path in written]

    log.info("wrote %s from %s to %s", count(len(inputs), "frame"), count(len(paths), "checkpoint"), options.out)
    return RenderResult(out=options.out, frame_count=len(inputs), seed=seed, checkpoints=paths, files=files)
