"""The render modes: each turns a RenderSpec and the checkpoint's names into FrameInputs.

- single: one frame from the given identity, emotion and orientation.
- random: ``frames`` independent draws for every input left null; the others stay fixed.
- drunk: a random walk of ``frames`` frames. Each frame moves every input of the previous frame by a
  step of length ``inputs.<name>.step`` in a uniformly random direction, then limits it again.
- interpolate: see ``facegen.render.keyframes``.

Random draws come from one NumPy generator seeded with the render's seed, in a fixed order, so a seed
repeats a render exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from facegen.render.errors import RenderError
from facegen.render.inputs import (
    FrameInputs,
    limit_orientation,
    limit_vectors,
    make_frame_inputs,
    random_direction,
    random_mixture,
    random_yaw,
)
from facegen.render.keyframes import interpolate
from facegen.render.spec import RenderSpec
from facegen.render.values import Orientation, parse_mixture, parse_orientation


def fixed_vector(spec: RenderSpec, name: str, value: Any, names: Sequence[str], where: str) -> torch.Tensor:
    """Parse and limit one identity or emotion value into a (1, n) vector."""
    return limit_vectors(parse_mixture(value, names, name, where)[None], spec.inputs[name], spec.constrained, name)


def fixed_orientation(spec: RenderSpec, value: Any, where: str) -> Orientation:
    return limit_orientation(parse_orientation(value, spec.constrained, where), spec.inputs["orientation"])


def single(spec: RenderSpec, identity_names: Sequence[str], emotion_names: Sequence[str]) -> FrameInputs:
    for name in ("identity", "emotion", "orientation"):
        if getattr(spec, name) is None:
            raise RenderError(f"mode=single needs a value for {name}, but {name} is null")
    identity = fixed_vector(spec, "identity", spec.identity, identity_names, "identity")
    emotion = fixed_vector(spec, "emotion", spec.emotion, emotion_names, "emotion")
    return make_frame_inputs(identity, emotion, [fixed_orientation(spec, spec.orientation, "orientation")], spec.inputs)


def draw_values(
    spec: RenderSpec,
    fixed: tuple[torch.Tensor | None, torch.Tensor | None, Orientation | None],
    identity_names: Sequence[str],
    emotion_names: Sequence[str],
    rng: np.random.Generator,
    frame: int,
) -> tuple[torch.Tensor, torch.Tensor, Orientation]:
    """Return limited (1, n) identity and emotion vectors and an orientation, drawing those that are None in ``fixed``."""
    identity, emotion, orientation = fixed
    settings = spec.inputs
    if identity is None:
        identity = limit_vectors(random_mixture(rng, len(identity_names), settings["identity"])[None], settings["identity"], spec.constrained, "identity", frame)
    if emotion is None:
        emotion = limit_vectors(random_mixture(rng, len(emotion_names), settings["emotion"])[None], settings["emotion"], spec.constrained, "emotion", frame)
    if orientation is None:
        orientation = limit_orientation(random_yaw(rng, settings["orientation"]), settings["orientation"])
    return identity, emotion, orientation


def parse_fixed(spec: RenderSpec, identity_names: Sequence[str], emotion_names: Sequence[str]) -> tuple[torch.Tensor | None, torch.Tensor | None, Orientation | None]:
    """Parse the values the spec sets (None for those to draw), so a bad one fails before any drawing."""
    return (
        None if spec.identity is None else fixed_vector(spec, "identity", spec.identity, identity_names, "identity"),
        None if spec.emotion is None else fixed_vector(spec, "emotion", spec.emotion, emotion_names, "emotion"),
        None if spec.orientation is None else fixed_orientation(spec, spec.orientation, "orientation"),
    )


def random_frames(spec: RenderSpec, identity_names: Sequence[str], emotion_names: Sequence[str], rng: np.random.Generator) -> FrameInputs:
    fixed = parse_fixed(spec, identity_names, emotion_names)
    identities, emotions, orientations = [], [], []
    for frame in range(spec.frames):
        identity, emotion, orientation = draw_values(spec, fixed, identity_names, emotion_names, rng, frame)
        identities.append(identity)
        emotions.append(emotion)
        orientations.append(orientation)
    return make_frame_inputs(torch.cat(identities), torch.cat(emotions), orientations, spec.inputs)


def step_orientation(value: Orientation, step: float, rng: np.random.Generator) -> Orientation:
    """Move a yaw by ``step`` degrees up or down, or a free (sin, cos) pair by ``step`` in a random direction."""
    if isinstance(value, tuple):
        direction = random_direction(rng, 2)
        return (value[0] + step * float(direction[0]), value[1] + step * float(direction[1]))
    return value + step * float(random_direction(rng, 1)[0])


def drunk(spec: RenderSpec, identity_names: Sequence[str], emotion_names: Sequence[str], rng: np.random.Generator) -> FrameInputs:
    # The walk starts from the given values, or from one random draw for those left null.
    fixed = parse_fixed(spec, identity_names, emotion_names)
    identity, emotion, orientation = draw_values(spec, fixed, identity_names, emotion_names, rng, 0)

    identities, emotions, orientations = [identity], [emotion], [orientation]
    settings = spec.inputs
    for frame in range(1, spec.frames):
        # Every direction is drawn on every frame, so changing one input's step leaves the others' walks alone.
        identity_direction = random_direction(rng, len(identity_names))
        emotion_direction = random_direction(rng, len(emotion_names))
        identity = limit_vectors(identity + settings["identity"].step * identity_direction, settings["identity"], spec.constrained, "identity", frame)
        emotion = limit_vectors(emotion + settings["emotion"].step * emotion_direction, settings["emotion"], spec.constrained, "emotion", frame)
        orientation = limit_orientation(step_orientation(orientation, settings["orientation"].step, rng), settings["orientation"])
        identities.append(identity)
        emotions.append(emotion)
        orientations.append(orientation)
    return make_frame_inputs(torch.cat(identities), torch.cat(emotions), orientations, spec.inputs)


def build_inputs(spec: RenderSpec, identity_names: Sequence[str], emotion_names: Sequence[str], seed: int) -> FrameInputs:
    """Compute every frame's generator inputs for ``spec``; raises RenderError for a value the checkpoint lacks."""
    rng = np.random.default_rng(seed)
    if spec.mode == "single":
        return single(spec, identity_names, emotion_names)
    if spec.mode == "random":
        return random_frames(spec, identity_names, emotion_names, rng)
    if spec.mode == "drunk":
        return drunk(spec, identity_names, emotion_names, rng)
    return interpolate(spec, identity_names, emotion_names)
