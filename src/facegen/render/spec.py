"""The render description as typed settings, checked before any checkpoint is read or file written.

This module checks what needs no checkpoint: modes, counts, keyframe keys and lengths, and the per-input
settings. Identity and emotion names and indices are checked against the checkpoint when the modes
build their inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from facegen.render.errors import RenderError
from facegen.render.values import is_number, parse_length

MODES = ("single", "random", "drunk", "interpolate")
INPUT_NAMES = ("identity", "emotion", "orientation")
KEYFRAME_KEYS = ("identity", "emotion", "orientation", "length")


@dataclass(frozen=True)
class InputSettings:
    """How one input is limited and moved.

    ``scale`` multiplies what the generator gets and needs ``constrained=false`` unless it is 1. ``step``
    is the length of each random-walk step (degrees for a yaw). ``min`` and ``max`` clamp the value before
    the constraint and the scale. ``concentration`` shapes random identity and emotion draws.
    """

    scale: float = 1.0
    step: float = 0.0
    min: float | None = None
    max: float | None = None
    concentration: float = 1.0


@dataclass(frozen=True)
class Keyframe:
    """One keyframe: the values it sets (None carries over the previous one) and its length in frames."""

    identity: Any
    emotion: Any
    orientation: Any
    length: int | None


@dataclass(frozen=True)
class RenderSpec:
    """What to draw: the mode, its inputs, how many frames and at what rate."""

    mode: str
    fps: float
    frames: int | None
    seed: int | None
    constrained: bool
    identity: Any
    emotion: Any
    orientation: Any
    keyframes: tuple[Keyframe, ...]
    inputs: dict[str, InputSettings]

    @property
    def frame_count(self) -> int:
        if self.mode == "interpolate":
            return sum(keyframe.length or 1 for keyframe in self.keyframes)
        return self.frames


def read_number(settings: Mapping[str, Any], key: str, where: str, minimum: float | None = None, allow_none: bool = False) -> float | None:
    value = settings.get(key)
    if value is None and allow_none:
        return None
    if not is_number(value) or not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" of at least {minimum:g}" if minimum is not None else ""
        raise RenderError(f"{where}.{key} must be a number{bound}{' or null' if allow_none else ''}, got {value!r}")
    return float(value)


def read_input_settings(settings: Any, name: str, constrained: bool) -> InputSettings:
    where = f"inputs.{name}"
    if not isinstance(settings, Mapping):
        raise RenderError(f"{where} must be a mapping with scale, step, min and max, got {settings!r}")
    allowed = ("scale", "step", "min", "max") + (("concentration",) if name != "orientation" else ())
    unknown = sorted(set(settings) - set(allowed))
    if unknown:
        raise RenderError(f"{where} has unknown settings {', '.join(unknown)}; allowed: {', '.join(allowed)}")

    result = InputSettings(
        scale=read_number(settings, "scale", where) if "scale" in settings else 1.0,
        step=read_number(settings, "step", where, minimum=0.0) if "step" in settings else 0.0,
        min=read_number(settings, "min", where, allow_none=True),
        max=read_number(settings, "max", where, allow_none=True),
        concentration=read_number(settings, "concentration", where, minimum=1e-6) if "concentration" in settings else 1.0,
    )
    if result.min is not None and result.max is not None and result.min > result.max:
        raise RenderError(f"{where}.min={result.min:g} is larger than {where}.max={result.max:g}")
    if constrained and result.scale != 1.0:
        raise RenderError(
            f"{where}.scale={result.scale:g} needs constrained=false, because constrained=true keeps "
            f"{'orientation on the unit circle' if name == 'orientation' else f'the {name} vector at unit length'}"
        )
    return result


def read_keyframes(value: Any, fps: float) -> tuple[Keyframe, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise RenderError(f"mode=interpolate needs keyframes: a list of mappings with identity, emotion, orientation and length; got {value!r}")
    keyframes = []
    for number, entry in enumerate(value, start=1):
        where = f"keyframe {number} of {len(value)}"
        if not isinstance(entry, Mapping):
            raise RenderError(f"{where} must be a mapping with any of {', '.join(KEYFRAME_KEYS)}, got {entry!r}")
        unknown = sorted(set(entry) - set(KEYFRAME_KEYS))
        if unknown:
            raise RenderError(f"{where} has unknown keys {', '.join(map(str, unknown))}; allowed: {', '.join(KEYFRAME_KEYS)}")
        length = entry.get("length")
        if length is None and number < len(value):
            raise RenderError(
                f"{where} has no length; give the frames until the next keyframe, e.g. length: 24, "
                f"or seconds with an s suffix, e.g. length: 2s (at fps={fps:g})"
            )
        keyframes.append(
            Keyframe(
                identity=entry.get("identity"),
                emotion=entry.get("emotion"),
                orientation=entry.get("orientation"),
                length=None if length is None else parse_length(length, fps, where),
            )
        )
    return tuple(keyframes)


def read_frames(cfg: Mapping[str, Any], mode: str) -> int | None:
    frames = cfg.get("frames")
    if mode == "interpolate":
        if frames is not None:
            raise RenderError(f"mode=interpolate takes its frame count from the keyframe lengths; remove frames={frames}")
        return None
    if not isinstance(frames, int) or isinstance(frames, bool) or frames < 1:
        raise RenderError(f"frames must be a whole number of at least 1 for mode={mode}, got {frames!r}")
    if mode == "single" and frames != 1:
        raise RenderError(f"mode=single draws one image, so frames must be 1, got {frames}; use mode=random or mode=drunk for more frames")
    return frames


def read_spec(cfg: Mapping[str, Any]) -> RenderSpec:
    """Check and type the description part of a render config (a plain dict, interpolations resolved)."""
    mode = cfg.get("mode")
    if mode not in MODES:
        raise RenderError(f"unknown mode {mode!r}; allowed modes: {', '.join(MODES)}")

    fps = cfg.get("fps")
    if not is_number(fps) or not math.isfinite(fps) or fps <= 0:
        raise RenderError(f"fps must be a positive number of frames per second, got {fps!r}")
    seed = cfg.get("seed")
    if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
        raise RenderError(f"seed must be a non-negative whole number or null (a fresh seed), got {seed!r}")
    constrained = cfg.get("constrained")
    if not isinstance(constrained, bool):
        raise RenderError(f"constrained must be true or false, got {constrained!r}")

    inputs_cfg = cfg.get("inputs") or {}
    unknown = sorted(set(inputs_cfg) - set(INPUT_NAMES))
    if unknown:
        raise RenderError(f"inputs has unknown entries {', '.join(unknown)}; allowed: {', '.join(INPUT_NAMES)}")
    inputs = {name: read_input_settings(inputs_cfg.get(name, {}), name, constrained) for name in INPUT_NAMES}

    keyframes = cfg.get("keyframes")
    if mode == "interpolate":
        keyframes = read_keyframes(keyframes, float(fps))
    elif keyframes:
        raise RenderError(f"keyframes only apply to mode=interpolate, but mode={mode}; set mode=interpolate or keyframes=null")

    return RenderSpec(
        mode=mode,
        fps=float(fps),
        frames=read_frames(cfg, mode),
        seed=seed,
        constrained=constrained,
        identity=cfg.get("identity"),
        emotion=cfg.get("emotion"),
        orientation=cfg.get("orientation"),
        keyframes=keyframes or (),
        inputs=inputs,
    )
