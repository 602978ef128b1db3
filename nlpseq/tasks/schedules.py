"""Learning-rate schedules, each ``f(optimizer, total_steps, ...) -> Lightning scheduler dict``.

Configs name one of these with ``_partial_: true`` (``conf/scheduler/``); the task calls it
once the trainer knows how many optimizer steps the run will take.
"""

from __future__ import annotations

import math
from typing import Literal

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, ReduceLROnPlateau


def _warmup_then(optimizer: Optimizer, total_steps: int, warmup_steps: int, decay) -> dict:
    """Per-step LambdaLR: linear warm-up, then ``decay(progress)`` with progress in [0, 1]."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return decay(min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps)))

    return {"scheduler": LambdaLR(optimizer, factor), "interval": "step", "frequency": 1}


def warmup_cosine(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0,
                  min_lr_ratio: float = 0.0) -> dict:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``min_lr_ratio * lr``."""
    return _warmup_then(optimizer, total_steps, warmup_steps, lambda progress: (
        min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))))


def warmup_linear(optimizer: Optimizer, total_steps: int, warmup_steps: int = 0,
                  min_lr_ratio: float = 0.0) -> dict:
    """Linear warm-up over ``warmup_steps``, then linear decay to ``min_lr_ratio * lr``."""
    return _warmup_then(optimizer, total_steps, warmup_steps,
                        lambda progress: 1.0 - (1 - min_lr_ratio) * progress)


def reduce_on_plateau(optimizer: Optimizer, total_steps: int, monitor: str = "val/loss",
                      mode: Literal["min", "max"] = "min", factor: float = 0.5,
                      patience: int = 1) -> dict:
    """Multiply the learning rate by ``factor`` when ``monitor`` stops improving."""
    del total_steps  # the plateau schedule reacts to validation, not to the step count
    scheduler = ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience)
    return {"scheduler": scheduler, "interval": "epoch", "monitor": monitor}
