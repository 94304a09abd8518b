"""Private plumbing shared by every box loss: argument checks, the reduction, the module shell.

A loss function validates its own hyper-parameters, then hands a ``body(Geometry) ->
Tensor[...]`` to :func:`pairwise_loss`, which checks and upcasts the boxes, handles the
empty input, converts the box format and applies the weight and the reduction. The
``nn.Module`` shells subclass :class:`PairLoss`, which stores the hyper-parameters as plain
attributes read at every call (so a training loop can ramp ``alpha``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from noisybox.losses._geometry import BOX_FORMATS, Geometry, box_geometry, to_xyxy, upcast

__all__: list[str] = []

REDUCTIONS = ("none", "mean", "sum")


def check_number(
    name: str, value: Any, *, low: float = 0.0, allow_low: bool = False, integer: bool = False
) -> float:
    """``value`` as a finite float above ``low`` (or equal with ``allow_low``), else ValueError."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"Expected {name} to be a number but got {value!r}") from None
    bound = f">= {low:g}" if allow_low else f"> {low:g}"
    if not math.isfinite(number) or number < low or (number == low and not allow_low):
        raise ValueError(f"Expected {name} {bound} and finite but got {value!r}")
    return number


def check_powers(alpha: float, alpha_penalty: float | None) -> tuple[float, float]:
    """``(alpha, alpha_penalty)`` checked; a ``None`` penalty power follows ``alpha`` (1 at 0)."""
    a = check_number("alpha", alpha, allow_low=True)
    if alpha_penalty is None:
        return a, a if a > 0 else 1.0
    return a, check_number("alpha_penalty", alpha_penalty)


def check_inner_ratio(ratio: float | None) -> float | None:
    return None if ratio is None else check_number("inner_ratio", ratio)


def pairwise_loss(
    pred: Tensor,
    target: Tensor,
    body: Callable[[Geometry], Tensor],
    *,
    box_format: str,
    reduction: str,
    weight: Tensor | None,
    eps: float,
) -> Tensor:
    """Check and upcast the pairs, run ``body`` on their geometry, weight and reduce.

    Raises:
        ValueError: unknown reduction or box format; non-tensor inputs; shape mismatch.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"Expected reduction to be one of {REDUCTIONS} but got {reduction!r}")
    if box_format not in BOX_FORMATS:
        raise ValueError(f"Expected box_format to be one of {BOX_FORMATS} but got {box_format!r}")
    if not isinstance(pred, Tensor) or not isinstance(target, Tensor):
        raise ValueError(
            f"Expected pred and target to be torch.Tensor but got "
            f"{type(pred).__name__} and {type(target).__name__}"
        )
    if pred.shape != target.shape or pred.dim() == 0 or pred.shape[-1] != 4:
        raise ValueError(
            f"Expected pred and target of the same shape [..., 4] but got "
            f"{list(pred.shape)} and {list(target.shape)}"
        )
    pred = upcast(pred)
    target = upcast(target)
    if pred.numel() == 0:
        empty = 0 * pred.sum(-1)
        return empty if reduction == "none" else 0 * pred.sum()
    g = box_geometry(to_xyxy(pred, box_format), to_xyxy(target, box_format), eps)
    loss = body(g)
    if weight is not None:
        loss = loss * upcast(weight)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def centre_deltas(g: Geometry) -> tuple[Tensor, Tensor]:
    """``(x - xgt, y - ygt)``: the prediction's centre minus the target's, ``Tensor[...]`` each."""
    return (g.x1 + g.x2 - g.gx1 - g.gx2) / 2, (g.y1 + g.y2 - g.gy1 - g.gy2) / 2


class PairLoss(nn.Module):
    """Module shell over a loss function ``fn(pred, target, *, **hyper, box_format,
    reduction, weight, eps)``.

    Subclasses set :attr:`fn` and :attr:`hyper_parameters` (the names of the loss-defining
    arguments, stored as attributes of the same name and read at every call). The
    configuration is checked at construction by a call on an empty pair.
    """

    fn: ClassVar[Callable[..., Tensor]]
    hyper_parameters: ClassVar[tuple[str, ...]]

    def __init__(
        self, *, box_format: str = "xyxy", reduction: str = "none", eps: float = 1e-7, **hyper: Any
    ) -> None:
        super().__init__()
        for name in self.hyper_parameters:
            setattr(self, name, hyper[name])
        self.box_format = box_format
        self.reduction = reduction
        self.eps = eps
        self.init_state()
        probe = torch.zeros(0, 4)
        self.forward(probe, probe)

    def init_state(self) -> None:
        """Register buffers (a stateful loss), before the construction-time check."""

    def hyper(self) -> dict[str, Any]:
        """The loss-defining arguments with their current values."""
        return {name: getattr(self, name) for name in self.hyper_parameters}

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """Loss of ``Tensor[..., 4]`` pairs; ``weight`` ``Tensor[...]`` optional."""
        return type(self).fn(
            pred,
            target,
            **self.hyper(),
            box_format=self.box_format,
            reduction=self.reduction,
            weight=weight,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.hyper().items() if not isinstance(v, Tensor)]
        items += [f"box_format={self.box_format!r}", f"reduction={self.reduction!r}"]
        return ", ".join(items)
