"""Step schedules: learning-rate warm-up + cosine decay, and the alpha warm-up ramp."""

from __future__ import annotations

import math

__all__ = ["alpha_at_step", "warmup_cosine_factor"]


def warmup_cosine_factor(
    step: int, total_steps: int, warmup_steps: int, *, min_factor: float = 0.01
) -> float:
    """Learning-rate multiplier at ``step``: linear warm-up, then cosine decay.

    Rises linearly from ``1 / (warmup_steps + 1)`` to 1 over ``warmup_steps`` and then
    follows half a cosine down to ``min_factor`` at ``total_steps``.

    >>> [round(warmup_cosine_factor(s, 10, 2), 3) for s in (0, 1, 2, 6, 10)]
    [0.333, 0.667, 1.0, 0.505, 0.01]
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))


def alpha_at_step(step: int, total_steps: int, target: float, warmup: float) -> float:
    """Alpha of the box loss at ``step``: linear from 1 to ``target`` over the warm-up.

    Args:
        step: optimiser steps taken so far (0-based).
        total_steps: steps of the whole run.
        target: the loss's alpha after warm-up.
        warmup: share of ``total_steps`` spent ramping (``0`` uses ``target`` from the
            first step).

    Returns:
        ``1 + (target - 1) * min(1, step / (warmup * total_steps))``.

    Reference:
        The warm-up avoids the vanishing gradient of ``1 - IoU^alpha`` near ``IoU = 0``
        (its gradient is ``alpha * IoU^(alpha - 1)`` times that of IoU, eq. 3).

    >>> [alpha_at_step(s, 100, 3.0, 0.2) for s in (0, 10, 20, 50)]
    [1.0, 2.0, 3.0, 3.0]
    >>> alpha_at_step(0, 100, 3.0, 0.0)
    3.0
    """
    ramp_steps = warmup * total_steps
    if ramp_steps <= 0:
        return float(target)
    return float(1.0 + (target - 1.0) * min(1.0, step / ramp_steps))
