"""Output and run settings of a render: everything outside the render description."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facegen.render.errors import RenderError

# Hydra's marker for a mandatory value that was not given.
MISSING = "???"


@dataclass(frozen=True)
class RenderOptions:
    """Output folder and files, sheet sizes and the device and batch size of generation."""

    out: Path
    overwrite: bool
    zoom: int
    gif: bool
    mp4: bool
    sheet_max_frames: int
    sheet_columns: int | None
    comparison_rows: int
    batch_size: int
    device: str
    progress: bool


def read_flag(settings: Mapping[str, Any], key: str) -> bool:
    value = settings.get(key)
    if not isinstance(value, bool):
        raise RenderError(f"{key} must be true or false, got {value!r}")
    return value


def read_count(settings: Mapping[str, Any], key: str, where: str = "", allow_none: bool = False) -> int | None:
    value = settings.get(key)
    if value is None and allow_none:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise RenderError(f"{where}{key} must be a whole number of at least 1{' or null' if allow_none else ''}, got {value!r}")
    return value


def read_options(settings: Mapping[str, Any]) -> RenderOptions:
    """Check and type the output and run settings of a render config (a plain dict)."""
    out = settings.get("out")
    if out in (None, "", MISSING):
        raise RenderError("out is not set; pass out=DIR, the folder to write the render into")
    device = settings.get("device")
    if not isinstance(device, str) or not device:
        raise RenderError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    sheet = settings.get("sheet") or {}
    unknown = sorted(set(sheet) - {"max_frames", "columns", "comparison_rows"})
    if unknown:
        raise RenderError(f"sheet has unknown settings {', '.join(unknown)}; allowed: max_frames, columns, comparison_rows")
    return RenderOptions(
        out=Path(str(out)).expanduser(),
        overwrite=read_flag(settings, "overwrite"),
        zoom=read_count(settings, "zoom"),
        gif=read_flag(settings, "gif"),
        mp4=read_flag(settings, "mp4"),
        sheet_max_frames=read_count(sheet, "max_frames", "sheet."),
        sheet_columns=read_count(sheet, "columns", "sheet.", allow_none=True),
        comparison_rows=read_count(sheet, "comparison_rows", "sheet."),
        batch_size=read_count(settings, "batch_size"),
        device=device,
        progress=read_flag(settings, "progress"),
    )
