"""Private plumbing shared by every box loss: argument checks, the reduction, the module shell.

A loss function validates its own hyper-parameters, then hands a ``body(Geometry) ->
Tensor[...]`` to :func:`pairwise_loss`, which checks and upcasts the boxes, handles the
empty input, converts the box format and applies the weight and the reduction. The
``nn.Module`` shells subclass :class:`PairLoss`, which takes its constructor's parameters
and defaults from the loss function's signature and stores the hyper-parameters as plain
attributes read at every call (so a training loop can ramp ``alpha``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from noisybox.boxes import BOX_FORMATS, box_convert
from noisybox.losses._geometry import Geometry, box_geometry, inner_iou, upcast
from noisybox.settings import ALPHA

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


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """ValueError naming ``choices`` unless ``value`` is one of them."""
    if value not in choices:
        raise ValueError(f"Expected {name} to be one of {choices} but got {value!r}")


def check_powers(alpha: float, alpha_penalty: float | None) -> tuple[float, float]:
    """``(alpha, alpha_penalty)`` checked; a ``None`` penalty power follows ``alpha`` (1 at 0)."""
    a = ALPHA.check(alpha)
    if alpha_penalty is None:
        return a, a if a > 0 else 1.0
    return a, check_number("alpha_penalty", alpha_penalty)


def check_inner_ratio(ratio: float | None) -> float | None:
    return None if ratio is None else check_number("inner_ratio", ratio)


def term_iou(g: Geometry, inner_ratio: float | None, eps: float) -> Tensor:
    """The IoU an IoU term is computed on: the boxes' own, or with ``inner_ratio`` that of
    Inner-IoU's auxiliary boxes (:func:`~noisybox.losses._geometry.inner_iou`)."""
    return g.iou if inner_ratio is None else inner_iou(g, inner_ratio, eps)


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
    check_choice("reduction", reduction, REDUCTIONS)
    check_choice("box_format", box_format, BOX_FORMATS)
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
    if box_format != "xyxy":
        pred = box_convert(pred, box_format, "xyxy")
        target = box_convert(target, box_format, "xyxy")
    g = box_geometry(pred, target, eps)
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


class _ConstructorSignature:
    """``__signature__`` of a :class:`PairLoss` subclass: the class reads its constructor's,
    an instance ``None`` (``inspect`` then reads the module's call as usual)."""

    def __get__(self, obj: object, owner: type[PairLoss]) -> inspect.Signature | None:
        return owner.constructor if obj is None else None


class PairLoss(nn.Module):
    """Module shell over a loss function ``fn(pred, target, *, **hyper, box_format,
    reduction, weight, eps)``.

    Subclasses set :attr:`fn` and :attr:`hyper_parameters`: the names of the loss-defining
    arguments, in the order the constructor takes them positionally (those also in
    :attr:`keyword_only` by keyword only, after ``box_format``, ``reduction`` and ``eps``).
    The constructor's defaults are ``fn``'s own, so each default is written once; the
    arguments are stored as attributes of the same name and read at every call. The
    configuration is checked at construction by a call on an empty pair.
    """

    fn: ClassVar[Callable[..., Tensor]]
    hyper_parameters: ClassVar[tuple[str, ...]]
    keyword_only: ClassVar[tuple[str, ...]] = ()
    #: The constructor's signature, built from :attr:`fn`'s when the subclass is defined.
    constructor: ClassVar[inspect.Signature]
    __signature__ = _ConstructorSignature()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        fn_parameters = inspect.signature(cls.fn).parameters
        positional = [
            fn_parameters[name].replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD)
            for name in cls.hyper_parameters
            if name not in cls.keyword_only
        ]
        named = [
            fn_parameters[name].replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for name in ("box_format", "reduction", "eps", *cls.keyword_only)
        ]
        cls.constructor = inspect.Signature([*positional, *named], return_annotation="None")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        try:
            bound = self.constructor.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{type(self).__name__}.__init__() {exc}") from None
        bound.apply_defaults()
        for name, value in bound.arguments.items():
            setattr(self, name, value)
        self.init_state()
        probe = torch.zeros(0, 4)
        self.forward(probe, probe)

    def init_state(self) -> None:
        """Register buffers (a stateful loss), before the construction-time check."""

    def state_arguments(self) -> dict[str, Any]:
        """Further arguments of :attr:`fn` drawn from the module's state (a stateful loss)."""
        return {}

    def hyper(self) -> dict[str, Any]:
        """The loss-defining arguments with their current values."""
        return {name: getattr(self, name) for name in self.hyper_parameters}

    def forward(self, pred: Tensor, target: Tensor, weight: Tensor | None = None) -> Tensor:
        """Loss of ``Tensor[..., 4]`` pairs; ``weight`` ``Tensor[...]`` optional."""
        return type(self).fn(
            pred,
            target,
            **self.hyper(),
            **self.state_arguments(),
            box_format=self.box_format,
            reduction=self.reduction,
            weight=weight,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        items = [f"{k}={v!r}" for k, v in self.hyper().items() if not isinstance(v, Tensor)]
        items += [f"box_format={self.box_format!r}", f"reduction={self.reduction!r}"]
        return ", ".join(items)
