"""Learning-rate schedules. Each factory takes the optimizer and the run's total optimizer steps,
which the LightningModule fills in from the trainer, and is stepped once per optimizer step."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, OneCycleLR


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_fraction: float = 0.05, min_lr_ratio: float = 0.05) -> LRScheduler:
    """Linear warm-up over ``warmup_fraction`` of the run, then cosine decay to ``min_lr_ratio`` x the base rate."""
    warmup = max(1, int(total_steps * warmup_fraction))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def step_decay(optimizer: Optimizer, total_steps: int, milestones: Sequence[float] = (0.5, 0.75), gamma: float = 0.1) -> LRScheduler:
    """Multiply the rate by ``gamma`` at each milestone, given as a fraction of the run."""
    bounds = sorted(int(total_steps * m) for m in milestones)

    def factor(step: int) -> float:
        return gamma ** sum(step >= b for b in bounds)

    return LambdaLR(optimizer, factor)


def one_cycle(optimizer: Optimizer, total_steps: int, pct_start: float = 0.25) -> LRScheduler:
    """PyTorch's one-cycle policy, peaking at the optimizer's configured learning rate."""
    peak = [group["lr"] for group in optimizer.param_groups]
    return OneCycleLR(optimizer, max_lr=peak, total_steps=max(1, total_steps), pct_start=pct_start)
