"""Exponential moving average of a detector's weights (the weights that are evaluated).

:func:`build_ema` wraps a detector in ``torch.optim.swa_utils.AveragedModel`` with an
exponential moving average whose decay ramps up over the first updates (the YOLOv5 /
YOLOv8 ``ModelEMA`` rule ``decay * (1 - exp(-updates / tau))``), averaging BatchNorm
statistics too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

__all__ = ["EMA_TAU", "build_ema"]

#: Updates over which the EMA decay ramps from 0 towards its target (YOLOv5 uses 2000 for
#: runs of 300 epochs; the CPU runs here take a few thousand steps in all).
EMA_TAU = 500


def build_ema(model: nn.Module, decay: float, *, tau: float = EMA_TAU) -> AveragedModel:
    """An exponential moving average of ``model``'s parameters and buffers.

    Args:
        model: the network being trained (not a DDP wrapper).
        decay: the decay the average approaches, e.g. ``0.999``.
        tau: updates over which the decay ramps up: at update ``n`` the decay is
            ``decay * (1 - exp(-n / tau))``, so the first averages follow the fast-moving
            early weights instead of the random initialisation.

    Returns:
        An ``AveragedModel``; call ``update_parameters(model)`` after each optimiser step and
        evaluate ``.module``. Integer buffers (BatchNorm's batch counter) are copied.

    Raises:
        ValueError: ``decay`` outside ``(0, 1)``.

    >>> net = nn.Linear(1, 1, bias=False)
    >>> ema = build_ema(net, 0.5, tau=1e-9)
    >>> _ = net.weight.data.fill_(0.0); ema.update_parameters(net)
    >>> _ = net.weight.data.fill_(1.0); ema.update_parameters(net)
    >>> round(ema.module.weight.item(), 3)
    0.5
    """
    if not 0 < decay < 1:
        raise ValueError(f"Expected decay in (0, 1) but got {decay!r}")

    @torch.no_grad()
    def _update(
        averaged: Sequence[torch.Tensor], current: Sequence[torch.Tensor], n: torch.Tensor | int
    ) -> None:
        if not averaged[0].is_floating_point():
            torch._foreach_copy_(list(averaged), list(current))
            return
        d = decay * (1 - math.exp(-float(n) / tau))
        torch._foreach_lerp_(list(averaged), list(current), 1 - d)

    return AveragedModel(model, multi_avg_fn=_update, use_buffers=True)
