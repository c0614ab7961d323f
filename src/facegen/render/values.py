"""Parse the values of a render description: identity and emotion mixtures, orientations and keyframe lengths.

Identity is a name or an index from the checkpoint, and emotion is a name. ``+`` joins parts into a
mixture whose vector is the sum of the parts' one-hot vectors. A part that equals a name is that name,
so checkpoints whose names are digit strings (``"001"``) can still be addressed by name.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import torch

from facegen.render.errors import RenderError

# Lists longer than this are shortened in error messages.
MAX_LISTED_NAMES = 12

# Frames ("24") or seconds ("2s", "1.5s"); the sign is kept so negative lengths get their own message.
LENGTH_PATTERN = re.compile(r"^(?P<number>[-+]?(\d+(\.\d*)?|\.\d+))(?P<seconds>s?)$")

Orientation = float | tuple[float, float]


def describe_names(names: Sequence[str]) -> str:
    """Join names for a message, shortened to the first and last few when there are many."""
    if len(names) <= MAX_LISTED_NAMES:
        return ", ".join(names)
    return f"{', '.join(names[:8])}, ..., {', '.join(names[-2:])} ({len(names)} names)"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_index(part: str) -> int | None:
    """Return the integer that ``part`` spells, or None when it is not an integer."""
    digits = part[1:] if part[:1] in "+-" else part
    return int(part) if digits.isdigit() else None


def parse_mixture(value: Any, names: Sequence[str], kind: str, where: str) -> torch.Tensor:
    """Turn an identity or emotion value into the sum of its parts' one-hot vectors, shape (len(names),).

    ``kind`` is "identity" (names or indices allowed) or "emotion" (names only); ``where`` names the
    setting in error messages, such as ``keyframe 2 emotion``.
    """
    allow_index = kind == "identity"
    if isinstance(value, int) and not isinstance(value, bool) and allow_index:
        parts = [str(value)]
    elif isinstance(value, str):
        parts = [part.strip() for part in value.split("+")]
    else:
        if allow_index:
            raise RenderError(f"{where} must be a name, an index or a mixture such as 0+2, got {value!r}")
        raise RenderError(f"{where} must be a name or a mixture such as happy+sad, got {value!r}")

    if any(not part for part in parts):
        example = "0+2+4" if allow_index else "happy+sad"
        raise RenderError(
            f"{where}={value!r} is not a valid mixture: there is an empty part around a '+'; "
            f"join {'names or indices' if allow_index else 'names'} with single '+' signs, e.g. {example}"
        )

    lookup = {name: i for i, name in enumerate(names)}
    vector = torch.zeros(len(names))
    for part in parts:
        index = lookup.get(part)
        if index is None and allow_index:
            index = parse_index(part)
            if index is not None and not 0 <= index < len(names):
                raise RenderError(
                    f"{where}={value!r}: identity index {index} is out of range; this checkpoint has {len(names)} "
                    f"identities, so use an index from 0 to {len(names) - 1} or a name ({describe_names(names)})"
                )
        if index is None:
            allowed = f"a name ({describe_names(names)}) or an index from 0 to {len(names) - 1}" if allow_index else describe_names(names)
            raise RenderError(f"{where}={value!r}: unknown {kind} {part!r}; this checkpoint allows {allowed}")
        vector[index] += 1.0
    return vector


def parse_orientation(value: Any, constrained: bool, where: str) -> Orientation:
    """Return a yaw in degrees, or a free (sin, cos) pair, which only ``constrained=false`` allows."""
    if is_number(value) and math.isfinite(value):
        return float(value)
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(is_number(v) and math.isfinite(v) for v in value):
        if constrained:
            raise RenderError(
                f"{where}={list(value)}: a free (sin, cos) pair needs constrained=false; "
                "with constrained=true give the yaw in degrees, e.g. 30"
            )
        return (float(value[0]), float(value[1]))
    raise RenderError(f"{where} must be a yaw in degrees (e.g. 30) or, with constrained=false, two numbers [sin, cos]; got {value!r}")


def parse_length(value: Any, fps: float, where: str) -> int:
    """Return a keyframe length in frames from a frame count (24) or seconds with an ``s`` suffix (2s, 1.5s)."""
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    match = LENGTH_PATTERN.match(text) if text is not None else None
    if match is None or (not match["seconds"] and parse_index(match["number"]) is None):
        raise RenderError(f"{where}: length {value!r} is not a whole number of frames (e.g. 24) or seconds with an s suffix (e.g. 2s or 1.5s)")

    number = float(match["number"])
    if number < 0:
        raise RenderError(f"{where}: length {value!r} is negative; give at least 1 frame, or seconds such as 2s")
    frames = round(number * fps) if match["seconds"] else int(number)
    if frames < 1:
        detail = f" at fps={fps:g}" if match["seconds"] else ""
        raise RenderError(f"{where}: length {value!r} is {frames} frames{detail}; a keyframe length must be at least 1 frame")
    return frames
