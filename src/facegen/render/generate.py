"""Batched generation on the CPU or a GPU, with a progress bar over batches."""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from facegen.generator import Generator
from facegen.render.errors import RenderError
from facegen.render.inputs import FrameInputs


def pick_device(name: str) -> torch.device:
    """Return the torch device for ``device=``: "auto" takes the first CUDA GPU when there is one."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise RenderError(f"device={name!r} is not a torch device; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RenderError(f"device={name} was requested but CUDA is not available here; use device=cpu or device=auto")
    return device


@torch.inference_mode()
def generate_frames(
    generator: Generator,
    inputs: FrameInputs,
    device: torch.device,
    batch_size: int,
    progress: bool = True,
    label: str = "render",
) -> np.ndarray:
    """Draw every frame of ``inputs``; return uint8 images of shape (F, H, W, C)."""
    generator.to(device).eval()
    frames = []
    starts = range(0, len(inputs), batch_size)
    for start in tqdm(starts, desc=label, unit="batch", disable=not progress, leave=False):
        stop = start + batch_size
        images = generator(
            inputs.identity[start:stop].to(device),
            inputs.emotion[start:stop].to(device),
            inputs.orientation[start:stop].to(device),
        )  # (B, C, H, W) in [0, 1]
        frames.append(images.float().clamp(0, 1).mul(255).round().byte().permute(0, 2, 3, 1).cpu().numpy())
    return np.concatenate(frames)
