"""Atomic file writes (write to a temporary name in the same folder, then rename over the target), and
digests that detect a file whose tensors changed after it was written."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Iterator

import torch

log = logging.getLogger(__name__)

# Temporary names are ".<target name>.<random>.tmp", so a glob finds the leftovers of one target.
TEMPORARY_SUFFIX = ".tmp"


def temporary_pattern(name: str) -> str:
    """Return the glob pattern that matches the temporary files ``atomic_write`` creates for ``name``."""
    return f".{name}.*{TEMPORARY_SUFFIX}"


@contextmanager
def atomic_write(path: str | Path) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path`` for binary writing; rename it to ``path`` only if the block succeeds.

    The data and then the folder entry are flushed to disk, so after a crash ``path`` contains either the
    old or the new content in full. A SIGKILL mid-write leaves only the temporary file behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
    try:
        # mkstemp creates the file readable by its owner only; give it the permissions a plain open() would.
        os.fchmod(handle, 0o666 & ~_current_umask())
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Flush a folder's entries so a rename survives a power cut; a no-op where folders cannot be opened."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def atomic_save_with(path: str | Path, writer: Callable[[BinaryIO], Any]) -> None:
    """Call ``writer(stream)`` on a temporary file and rename it to ``path`` when it returns."""
    with atomic_write(path) as stream:
        writer(stream)


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    atomic_save_with(path, lambda stream: torch.save(obj, stream))


def remove_partial_writes(folder: str | Path, suffix: str) -> list[Path]:
    """Delete the temporary files that killed ``atomic_write`` calls left in ``folder`` for targets ending in
    ``suffix``; return what was deleted.

    Call it only while no other process writes such files there, because a write in progress matches too.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = sorted(folder.glob(temporary_pattern(f"*{suffix}")))
    for leftover in removed:
        leftover.unlink(missing_ok=True)
    if removed:
        log.info("removed %d partial file(s) left in %s by an interrupted write: %s", len(removed), folder, ", ".join(p.name for p in removed))
    return removed


def content_digest(value: Any) -> str:
    """Return the SHA-256 hex digest of the tensors, numbers and strings in ``value``, nested in dicts,
    lists and tuples.

    torch.load (PyTorch 2.14) does not verify the CRC of tensor data, so bytes overwritten inside a
    checkpoint or cache load silently. A digest stored beside the data detects them.
    """
    digest = hashlib.sha256()
    _update_digest(digest, value)
    return digest.hexdigest()


def _update_digest(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)};".encode())
        # Viewed as bytes, so that every dtype (bfloat16 too) hashes without a conversion.
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(value, Mapping):
        digest.update(f"mapping {len(value)};".encode())
        for key, item in value.items():
            _update_digest(digest, key)
            _update_digest(digest, item)
    elif isinstance(value, (list, tuple)):
        # Lists and tuples hash alike, because a round trip through a file may turn one into the other.
        digest.update(f"sequence {len(value)};".encode())
        for item in value:
            _update_digest(digest, item)
    else:
        digest.update(f"{type(value).__name__} {value!r};".encode())
