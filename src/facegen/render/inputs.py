"""The generator's inputs for every frame, and the rules that limit, draw and move them.

Each input has a value that the modes work on, limited after every change:

- identity and emotion: a vector, clamped to ``[min, max]`` and then, with ``constrained=true``, divided
  by its L2 norm (``happy+sad`` becomes (0.707, 0.707)). So with the constraint a clamp bounds each
  component relative to the others, and ``min: 0`` keeps a random walk among non-negative mixtures.
- orientation: a yaw in degrees clamped to ``[min, max]`` and encoded as (sin, cos), or, with
  ``constrained=false`` only, a free (sin, cos) pair clamped component by component.

``scale`` multiplies the limited value as it goes into the generator; it must be 1 when constrained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from facegen.faceset import encode_orientation
from facegen.render.errors import RenderError
from facegen.render.spec import InputSettings
from facegen.render.values import Orientation

# Random yaws are drawn from this range (degrees, profile to profile) unless inputs.orientation sets min or max.
DEFAULT_YAW_RANGE = (-90.0, 90.0)


@dataclass
class FrameInputs:
    """The generator's inputs, one row per frame: identity (F, num_identities), emotion (F, num_emotions)
    and orientation (F, 2), already limited and scaled."""

    identity: torch.Tensor
    emotion: torch.Tensor
    orientation: torch.Tensor

    def __len__(self) -> int:
        return self.identity.shape[0]


def limit_vectors(vectors: torch.Tensor, settings: InputSettings, constrained: bool, name: str, first_frame: int = 0) -> torch.Tensor:
    """Clamp (F, n) vectors to the settings' bounds and, when constrained, scale each row to unit length.

    ``first_frame`` is the frame number of the first row, for the error message.
    """
    vectors = vectors.clamp(min=settings.min, max=settings.max) if settings.min is not None or settings.max is not None else vectors
    if not constrained:
        return vectors
    norms = vectors.norm(dim=-1, keepdim=True)
    zero_rows = (norms.squeeze(-1) == 0).nonzero()
    if len(zero_rows):
        raise RenderError(
            f"the {name} vector of frame {first_frame + int(zero_rows[0])} is all zeros after clamping to "
            f"inputs.{name}.min={settings.min} and max={settings.max}, so it has no direction to scale to unit "
            "length; loosen the clamps or set constrained=false"
        )
    return vectors / norms


def limit_orientation(value: Orientation, settings: InputSettings) -> Orientation:
    """Clamp a yaw (degrees) or each number of a free (sin, cos) pair to the settings' bounds."""
    low = -float("inf") if settings.min is None else settings.min
    high = float("inf") if settings.max is None else settings.max
    if isinstance(value, tuple):
        return (min(max(value[0], low), high), min(max(value[1], low), high))
    return min(max(value, low), high)


def orientation_rows(values: Sequence[Orientation], settings: InputSettings) -> torch.Tensor:
    """Encode limited orientations as the generator's (F, 2) input: (sin, cos) of a yaw, or the free pair."""
    rows = [
        torch.tensor(value, dtype=torch.float32) if isinstance(value, tuple) else encode_orientation(torch.tensor([value], dtype=torch.float32))[0]
        for value in values
    ]
    return torch.stack(rows) * settings.scale


def make_frame_inputs(
    identity: torch.Tensor,
    emotion: torch.Tensor,
    orientations: Sequence[Orientation],
    inputs: dict[str, InputSettings],
) -> FrameInputs:
    """Scale limited (F, n) identity and emotion vectors and encode F limited orientations."""
    return FrameInputs(
        identity=identity.float() * inputs["identity"].scale,
        emotion=emotion.float() * inputs["emotion"].scale,
        orientation=orientation_rows(orientations, inputs["orientation"]),
    )


def random_mixture(rng: np.random.Generator, size: int, settings: InputSettings) -> torch.Tensor:
    """Draw a mixture weight vector from a symmetric Dirichlet distribution with parameters concentration/size.

    Dividing by the size keeps the look independent of how many identities a checkpoint has: at
    concentration 1 most draws are dominated by one or two entries, larger values mix more of them.
    """
    return torch.from_numpy(rng.dirichlet(np.full(size, settings.concentration / size))).float()


def random_yaw(rng: np.random.Generator, settings: InputSettings) -> float:
    """Draw a yaw uniformly between inputs.orientation.min and max (by default -90 to 90 degrees)."""
    low = DEFAULT_YAW_RANGE[0] if settings.min is None else settings.min
    high = DEFAULT_YAW_RANGE[1] if settings.max is None else settings.max
    return float(rng.uniform(min(low, high), max(low, high)))


def random_direction(rng: np.random.Generator, size: int) -> torch.Tensor:
    """Draw a unit vector uniformly from the sphere in ``size`` dimensions (a random sign when size is 1)."""
    while True:
        vector = rng.standard_normal(size)
        norm = np.linalg.norm(vector)
        if norm > 0:
            return torch.from_numpy(vector / norm).float()
