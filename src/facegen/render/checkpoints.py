"""Find the checkpoints a render reads, and name them for comparison sheets.

``ckpt`` is one reference or a list of them. A reference is one of:

- a ``.ckpt`` file;
- a run folder: its ``checkpoints/last.ckpt``, or with ``checkpoints=all`` every checkpoint it kept;
- a W&B offline-run folder inside a run folder (``<run>/wandb/offline-run-*``), which means that run;
- a multirun sweep folder, which means each run in it;
- ``wandb:ENTITY/PROJECT/ARTIFACT:VERSION``, a model artifact, downloaded when W&B is online.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from facegen.checkpoint import CheckpointError, LoadedGenerator, resolve_checkpoint
from facegen.render.errors import RenderError

WANDB_PREFIX = "wandb:"
CHECKPOINT_CHOICES = ("last", "all")
# W&B's own folders for a run inside the run folder that the logger's save_dir points at.
WANDB_RUN_FOLDER = re.compile(r"^(offline-run-|run-|latest-run$)")


def is_run_folder(path: Path) -> bool:
    return (path / "checkpoints").is_dir() or (path / "last.ckpt").is_file()


def sweep_order(path: Path) -> tuple:
    """Sort multirun job folders by their job number (``2_...`` before ``10_...``)."""
    number = path.name.split("_", 1)[0]
    return (0, int(number), path.name) if number.isdigit() else (1, 0, path.name)


def run_checkpoints(run: Path, selection: str) -> list[Path]:
    """Return a run folder's last.ckpt, or with ``selection="all"`` every checkpoint it kept, oldest first, last.ckpt at the end."""
    if selection == "last":
        return [resolve_checkpoint(run)]
    epoch_files = sorted(p for p in (run / "checkpoints").glob("*.ckpt") if p.name != "last.ckpt")
    try:
        last = [resolve_checkpoint(run)]
    except CheckpointError:
        last = []
    if not epoch_files and not last:
        raise CheckpointError(f"no checkpoints in {run / 'checkpoints'}; train the run first or pass a .ckpt file")
    return epoch_files + last


def expand_reference(reference: str, selection: str) -> list[Path]:
    if reference.startswith(WANDB_PREFIX):
        return [download_wandb_checkpoint(reference)]
    path = Path(reference).expanduser()
    if path.is_dir():
        if WANDB_RUN_FOLDER.match(path.name) and path.parent.name == "wandb" and is_run_folder(path.parent.parent):
            path = path.parent.parent
        if is_run_folder(path):
            return run_checkpoints(path, selection)
        runs = sorted((child for child in path.iterdir() if child.is_dir() and is_run_folder(child)), key=sweep_order)
        if runs:
            return [checkpoint for run in runs for checkpoint in run_checkpoints(run, selection)]
    # A file is returned as it is. For a missing path or a folder without checkpoints, resolve_checkpoint raises CheckpointError.
    return [resolve_checkpoint(path)]


def checkpoint_paths(ckpt: str | Sequence[str] | None, selection: str) -> list[Path]:
    """Expand ``ckpt`` (one reference or a list) into checkpoint files, in order; ``selection`` is "last" or "all"."""
    if selection not in CHECKPOINT_CHOICES:
        raise RenderError(f"checkpoints={selection!r} is invalid; use last (each run's last.ckpt) or all (every kept epoch)")
    references = [ckpt] if isinstance(ckpt, str) else list(ckpt or [])
    if not references or not all(isinstance(r, str) and r for r in references):
        raise RenderError(
            f"ckpt must be a checkpoint file, a run folder, a multirun folder, a list of these or wandb:ENTITY/PROJECT/NAME:VERSION; got {ckpt!r}"
        )
    return [path for reference in references for path in expand_reference(reference, selection)]


def drop_repeated_last(paths: list[Path], loaded: list[LoadedGenerator]) -> tuple[list[Path], list[LoadedGenerator]]:
    """Drop each last.ckpt that repeats a kept epoch of its own run (same epoch and step), as it usually does."""
    seen = {(p.parent, g.epoch, g.global_step) for p, g in zip(paths, loaded) if p.name != "last.ckpt"}
    keep = [i for i, (p, g) in enumerate(zip(paths, loaded)) if p.name != "last.ckpt" or (p.parent, g.epoch, g.global_step) not in seen]
    return [paths[i] for i in keep], [loaded[i] for i in keep]


def run_name(path: Path) -> str:
    return path.parent.parent.name if path.parent.name == "checkpoints" else path.parent.name


def checkpoint_labels(paths: Sequence[Path], loaded: Sequence[LoadedGenerator]) -> list[str]:
    """Name each checkpoint as briefly as the set allows, with the epochs it was trained for on a second line.

    Checkpoints of one run are named by file, last.ckpt of several runs by run, and any other set by both.
    """
    runs = [run_name(path) for path in paths]
    stems = [path.stem for path in paths]
    if len(set(runs)) == 1:
        names = stems
    elif len(set(stems)) == 1:
        names = runs
    else:
        names = [f"{run}/{stem}" for run, stem in zip(runs, stems)]
    # Lightning stores the zero-based index of the epoch a checkpoint was saved in.
    return [f"{name}\n{generator.epoch + 1} epochs" if generator.epoch >= 0 else name for name, generator in zip(names, loaded)]


def folder_names(labels: Sequence[str]) -> list[str]:
    """Turn labels into distinct folder names: the first line, with characters other than letters, digits, '.', '-', '_' and '=' replaced."""
    names: list[str] = []
    for label in labels:
        base = re.sub(r"[^A-Za-z0-9._=-]+", "_", label.splitlines()[0]).strip("._") or "checkpoint"
        name, suffix = base, 2
        while name in names:
            name, suffix = f"{base}_{suffix}", suffix + 1
        names.append(name)
    return names


def download_wandb_checkpoint(reference: str) -> Path:
    """Download a W&B model artifact and return the checkpoint file in it; needs W&B online with an API key."""
    from facegen.training import wandb_has_api_key

    name = reference[len(WANDB_PREFIX) :]
    mode = os.environ.get("WANDB_MODE", "").lower()
    if mode in ("offline", "disabled", "dryrun"):
        reason = f"W&B is set to WANDB_MODE={mode}"
    elif not wandb_has_api_key():
        reason = "no W&B API key is set (WANDB_API_KEY or `wandb login`)"
    else:
        reason = None
    if reason:
        raise CheckpointError(
            f"ckpt={reference} is a W&B artifact, but {reason}, so it cannot be downloaded; "
            "pass the local checkpoint that the run wrote instead, e.g. ckpt=<run folder>/checkpoints/last.ckpt or ckpt=<run folder>"
        )

    # NOTE: the tests run without network access, so this download path is untested.
    import requests
    import wandb

    try:
        folder = Path(wandb.Api().artifact(name, type="model").download())
    except (wandb.errors.Error, requests.RequestException, ValueError, OSError) as error:
        raise CheckpointError(
            f"could not download the W&B artifact {name} ({type(error).__name__}: {error}); "
            "check the reference (ENTITY/PROJECT/ARTIFACT:VERSION) and your access, or pass a local checkpoint"
        ) from error
    candidates = sorted(folder.rglob("*.ckpt"))
    if len(candidates) != 1:
        raise CheckpointError(f"the W&B artifact {name} contains {len(candidates)} .ckpt files in {folder}, expected 1; pass the one to render as a local path")
    return candidates[0]
