"""A file cache of decoded face sets, keyed by the source files and the decode settings.

A second run with the same files and settings loads one tensor file instead of decoding every photo.
Files are written under a temporary name and renamed, so a killed run never leaves a truncated cache
that a later run trusts. Each file stores a SHA-256 digest of its contents, so a file damaged later is
detected too. An unreadable or damaged cache is reported and rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import torch

from facegen.faceset import FaceSet
from facegen.io import atomic_torch_save, content_digest

log = logging.getLogger(__name__)

# 2 added the digest.
CACHE_FORMAT = 2


def cache_key(fingerprint: dict, width: int, height: int, channels: int) -> str:
    payload = {"format": CACHE_FORMAT, "fingerprint": fingerprint, "width": width, "height": height, "channels": channels}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:24]


def _read(path: Path, key: str) -> FaceSet | None:
    try:
        stored = torch.load(path, map_location="cpu", weights_only=True)
        if stored.get("key") != key:
            raise ValueError(f"the stored key {stored.get('key')!r} does not match {key!r}")
        if content_digest(stored["faceset"]) != stored.get("digest"):
            raise ValueError("its contents do not match the SHA-256 digest stored with them")
        return FaceSet(**stored["faceset"])
    except Exception as error:  # noqa: BLE001 - any unreadable cache is rebuilt, never trusted
        log.warning("data cache %s is unreadable (%s: %s); rebuilding it", path, type(error).__name__, error)
        return None


def load_cached(source, width: int, height: int, channels: int, cache_dir: str | Path | None) -> FaceSet:
    """Return ``source``'s face set at this size, from the cache when a matching file exists."""
    if cache_dir is None:
        return source.load(width, height, channels)

    key = cache_key(source.fingerprint(), width, height, channels)
    path = Path(cache_dir).expanduser() / f"faces-{key}.pt"
    if path.exists():
        faceset = _read(path, key)
        if faceset is not None:
            log.info("loaded %d decoded faces from the cache %s", len(faceset), path)
            return faceset

    faceset = source.load(width, height, channels)
    fields = {name: getattr(faceset, name) for name in ("images", "identities", "emotions", "yaws", "identity_names", "emotion_names", "files")}
    try:
        atomic_torch_save({"key": key, "faceset": fields, "digest": content_digest(fields)}, path)
    except OSError as error:
        # The decoded faces are in memory, so a full disk or a read-only cache folder costs only the next run's decode.
        log.warning("could not write the data cache %s (%s); training goes on without it", path, error)
        return faceset
    log.info("decoded %d faces and cached them in %s", len(faceset), path)
    return faceset
