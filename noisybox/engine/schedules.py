"""Step schedules: learning-rate warm-up + cosine decay.

The alpha warm-up ramp lives beside the loss spec (:func:`noisybox.settings.alpha_at_step`,
also :mod:`noisybox.losses.alpha_schedule`) and is re-exported here.
"""

from __future__ import annotations

import math

from noisybox.settings import alpha_at_step

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
