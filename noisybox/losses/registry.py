"""Loss registry: build box-regression losses by name.

Every variant ``v`` of :func:`~noisybox.losses.alpha_iou.list_variants` is registered as
``v`` (the classic loss, ``alpha = 1``) and ``alpha-v`` (``alpha = 3``, the paper's
recommendation); ``log-iou`` is the ``alpha -> 0`` limit ``-log(IoU)`` (eq. 2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from noisybox.losses.alpha_iou import AlphaIoULoss, list_variants

__all__ = ["get_loss", "list_losses", "register_loss"]

LossFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=LossFactory)

_LOSSES: dict[str, LossFactory] = {}


def register_loss(name: str, *, override: bool = False) -> Callable[[F], F]:
    """Register a factory ``(**kwargs) -> nn.Module`` under ``name``.

    Args:
        name: registry key, e.g. ``"alpha-ciou"``.
        override: replace an existing entry instead of raising.

    Raises:
        ValueError: ``name`` is already registered and ``override`` is false.

    >>> @register_loss("doc-example-iou", override=True)
    ... def _build(**kw):
    ...     return AlphaIoULoss("iou", **{"alpha": 1.0, **kw})
    >>> "doc-example-iou" in list_losses()
    True
    """

    def decorator(factory: F) -> F:
        if name in _LOSSES and not override:
            raise ValueError(f"Expected a new loss name but got {name!r}, already registered")
        _LOSSES[name] = factory
        return factory

    return decorator


def list_losses() -> list[str]:
    """Sorted names accepted by :func:`get_loss`.

    >>> [n for n in list_losses() if "ciou" in n]
    ['alpha-ciou', 'ciou']
    """
    return sorted(_LOSSES)


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss registered as ``name``; ``kwargs`` override its defaults.

    ``alpha=None`` (as a config with no alpha passes it) keeps the registered default.

    Raises:
        ValueError: unknown name (the message lists the valid ones) or bad arguments.

    >>> get_loss("alpha-diou")
    AlphaIoULoss(variant='diou', alpha=3.0, box_format='xyxy', reduction='none')
    >>> get_loss("giou", alpha=2, reduction="sum").alpha
    2
    """
    if name not in _LOSSES:
        raise ValueError(f"Expected a loss name in {list_losses()} but got {name!r}")
    if kwargs.get("alpha", 0) is None:
        kwargs.pop("alpha")
    return _LOSSES[name](**kwargs)


def _preset(variant: str, default_alpha: float, **kwargs: Any) -> nn.Module:
    kwargs.setdefault("alpha", default_alpha)
    return AlphaIoULoss(variant, **kwargs)


for _variant in list_variants():
    register_loss(_variant)(functools.partial(_preset, _variant, 1.0))
    register_loss(f"alpha-{_variant}")(functools.partial(_preset, _variant, 3.0))
register_loss("log-iou")(functools.partial(_preset, "iou", 0.0))
