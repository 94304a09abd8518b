"""Loss registry: build box-regression losses by name, and say what each one is.

Every variant ``v`` of :func:`~noisybox.losses.alpha_iou.list_variants` is registered as
``v`` (the classic loss, ``alpha = 1``), ``alpha-v`` (``alpha = 3``, the paper's
recommendation) and ``inner-v`` (Inner-IoU, auxiliary-box ratio 0.7); ``log-iou`` is the
``alpha -> 0`` limit ``-log(IoU)`` (eq. 2). The later IoU-family losses are registered at
``alpha = 1`` (their papers' form): ``focal-eiou``, ``wiou-v1``, ``wiou-v3``, ``mpdiou``,
``shape-iou``, ``piou``, ``piou-v2`` (with ``inner-`` forms of the additive ones) and
``nwd``. Any of them takes another ``alpha`` as a keyword.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from torch import nn

from noisybox._registry import Registry
from noisybox.losses._common import PairLoss
from noisybox.losses.alpha_iou import (
    ALPHA_IOU_REFERENCE,
    VARIANT_REFERENCES,
    AlphaIoULoss,
    list_variants,
)
from noisybox.losses.focal_eiou import FOCAL_EIOU_REFERENCE, FocalEIoULoss
from noisybox.losses.mpdiou import MPDIOU_REFERENCE, MPDIoULoss
from noisybox.losses.nwd import NWD_REFERENCE, NWDLoss
from noisybox.losses.powerful_iou import POWERFUL_IOU_REFERENCE, PowerfulIoULoss
from noisybox.losses.shape_iou import SHAPE_IOU_REFERENCE, ShapeIoULoss
from noisybox.losses.wise_iou import WISE_IOU_REFERENCE, WiseIoULoss
from noisybox.settings import LossSpec

__all__ = [
    "INNER_IOU_REFERENCE",
    "STOCK_LOSS",
    "LossInfo",
    "default_alpha",
    "describe_loss",
    "get_loss",
    "list_detector_losses",
    "list_losses",
    "register_loss",
    "resolve_loss_spec",
]

INNER_IOU_REFERENCE = (
    "Zhang, Xu and Zhang, Inner-IoU: More Effective Intersection over Union Loss with "
    "Auxiliary Bounding Box, 2023, https://arxiv.org/abs/2311.02877 "
    "(L_Inner-X = L_X + IoU - IoU_inner)"
)
#: Inner-IoU's auxiliary-box ratio for the registered ``inner-*`` losses (paper: 0.5-1.5,
#: below 1 for data whose boxes already overlap well).
DEFAULT_INNER_RATIO = 0.7

#: The name of a detector's own torchvision box loss (FCOS GIoU, RetinaNet L1, Faster R-CNN
#: smooth L1): a value of every ``loss`` setting, not a module of this registry.
STOCK_LOSS = "torchvision"

LossFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=LossFactory)


@dataclass(frozen=True)
class LossInfo:
    """What a registered loss is: its family (the paper whose form it takes) and references."""

    family: str
    reference: str


@dataclass(frozen=True)
class _Entry:
    """A registered factory, its description, and the alpha it builds with when given none
    (``_UNDECLARED``: neither declared nor in the factory's signature)."""

    factory: LossFactory
    info: LossInfo
    alpha: float | None | object


_UNDECLARED = object()


_LOSSES: Registry[_Entry] = Registry("loss name")


def register_loss(
    name: str,
    *,
    family: str = "custom",
    reference: str = "",
    alpha: float | None | object = _UNDECLARED,
    override: bool = False,
) -> Callable[[F], F]:
    """Register a factory ``(**kwargs) -> nn.Module`` under ``name``.

    Args:
        name: registry key, e.g. ``"alpha-ciou"``.
        family: the loss family shown by ``noisybox list-losses`` (e.g. ``"wise-iou"``).
        reference: the paper(s) the loss comes from.
        alpha: the alpha the factory builds with when given none (``None``: the loss has
            no alpha), what :func:`default_alpha` answers; left out, the default of an
            ``alpha`` parameter of the factory's signature.
        override: replace an existing entry instead of raising.

    Raises:
        NoisyboxError: ``name`` is already registered and ``override`` is false.

    >>> @register_loss("doc-example-iou", override=True)
    ... def _build(**kw):
    ...     return AlphaIoULoss("iou", **{"alpha": 1.0, **kw})
    >>> "doc-example-iou" in list_losses()
    True
    """

    def decorator(factory: F) -> F:
        declared = _signature_alpha(factory) if alpha is _UNDECLARED else alpha
        entry = _Entry(factory, LossInfo(family, reference), declared)
        _LOSSES.add(name, entry, override=override)
        return factory

    return decorator


def list_losses() -> list[str]:
    """Sorted names accepted by :func:`get_loss`.

    >>> [n for n in list_losses() if "ciou" in n]
    ['alpha-ciou', 'ciou', 'inner-ciou']
    """
    return _LOSSES.names()


def list_detector_losses() -> list[str]:
    """The values a detector's ``loss`` setting takes: :data:`STOCK_LOSS`, then every loss.

    >>> list_detector_losses()[:2]
    ['torchvision', 'alpha-ciou']
    """
    return [STOCK_LOSS, *list_losses()]


def get_loss(name: str, **kwargs: Any) -> nn.Module:
    """Build the loss registered as ``name``; ``kwargs`` override its defaults.

    ``alpha=None`` (as a config with no alpha passes it) keeps the registered default.

    Raises:
        NoisyboxError: unknown name (the message lists the valid ones).
        ValueError: bad arguments.

    >>> get_loss("alpha-diou")
    AlphaIoULoss(variant='diou', alpha=3.0, box_format='xyxy', reduction='none')
    >>> get_loss("giou", alpha=2, reduction="sum").alpha
    2
    """
    factory = _LOSSES.get(name).factory
    if kwargs.get("alpha", 0) is None:
        kwargs.pop("alpha")
    return factory(**kwargs)


def default_alpha(name: str) -> float | None:
    """The alpha the loss ``name`` is built with when given none, from the registry: no
    module is built (``None`` for :data:`STOCK_LOSS` and for a loss without alpha).

    A factory registered without ``alpha=`` and without an ``alpha`` parameter in its
    signature is built once, with no arguments, and its module's ``alpha`` read.

    Raises:
        NoisyboxError: unknown name (the message lists the valid ones).

    >>> default_alpha("alpha-ciou"), default_alpha("giou"), default_alpha("wiou-v3")
    (3.0, 1.0, 1.0)
    >>> default_alpha(STOCK_LOSS) is None
    True
    """
    if name == STOCK_LOSS:
        return None
    entry = _LOSSES.get(name)
    alpha = entry.alpha
    if alpha is _UNDECLARED:
        alpha = getattr(entry.factory(), "alpha", None)
    return None if alpha is None else float(alpha)  # type: ignore[arg-type]


def resolve_loss_spec(spec: LossSpec) -> LossSpec:
    """``spec`` with its alpha and warm-up filled in from the registry
    (:meth:`LossSpec.resolve` with :func:`default_alpha`): what a training run ramps to.

    >>> resolve_loss_spec(LossSpec("alpha-giou")).alpha, resolve_loss_spec(LossSpec("giou", 2)).alpha
    (3.0, 2.0)
    >>> resolve_loss_spec(LossSpec(STOCK_LOSS)).alpha is None
    True
    """
    return spec.resolve(default_alpha)


def _signature_alpha(factory: Callable[..., Any]) -> float | None | object:
    """The default of ``factory``'s ``alpha`` parameter, or ``_UNDECLARED``."""
    try:
        parameter = inspect.signature(factory).parameters.get("alpha")
    except (TypeError, ValueError):  # a callable without a readable signature
        return _UNDECLARED
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return _UNDECLARED
    return parameter.default


def describe_loss(name: str) -> dict[str, Any]:
    """Family, parameters (the registered defaults) and reference of the loss ``name``.

    Raises:
        NoisyboxError: unknown name.

    >>> info = describe_loss("wiou-v3")
    >>> info["family"], info["parameters"]["focus_alpha"], info["parameters"]["focus_delta"]
    ('wise-iou', 1.9, 3.0)
    """
    module = get_loss(name)
    parameters = module.hyper() if isinstance(module, PairLoss) else {}
    info = _LOSSES.get(name).info
    return {"family": info.family, "parameters": parameters, "reference": info.reference}


def _build(cls: Callable[..., nn.Module], defaults: dict[str, Any], **kwargs: Any) -> nn.Module:
    return cls(**{**defaults, **kwargs})


def _register(
    name: str, cls: Callable[..., nn.Module], family: str, reference: str, **defaults: Any
) -> None:
    alpha = defaults["alpha"] if "alpha" in defaults else _signature_alpha(cls)
    register_loss(name, family=family, reference=reference, alpha=alpha)(
        functools.partial(_build, cls, defaults)
    )


for _variant in list_variants():
    _reference = f"{VARIANT_REFERENCES[_variant]}; power: {ALPHA_IOU_REFERENCE}"
    _register(_variant, AlphaIoULoss, "alpha-iou", _reference, variant=_variant, alpha=1.0)
    _register(
        f"alpha-{_variant}", AlphaIoULoss, "alpha-iou", _reference, variant=_variant, alpha=3.0
    )
    _register(
        f"inner-{_variant}",
        AlphaIoULoss,
        "inner-iou",
        f"{INNER_IOU_REFERENCE}; {VARIANT_REFERENCES[_variant]}",
        variant=_variant,
        alpha=1.0,
        inner_ratio=DEFAULT_INNER_RATIO,
    )
_register(
    "log-iou",
    AlphaIoULoss,
    "alpha-iou",
    f"{VARIANT_REFERENCES['iou']}; alpha -> 0 limit: {ALPHA_IOU_REFERENCE}",
    variant="iou",
    alpha=0.0,
)
_register("focal-eiou", FocalEIoULoss, "focal-eiou", FOCAL_EIOU_REFERENCE)
_register("wiou-v1", WiseIoULoss, "wise-iou", WISE_IOU_REFERENCE, version=1)
_register("wiou-v3", WiseIoULoss, "wise-iou", WISE_IOU_REFERENCE, version=3)
_register("mpdiou", MPDIoULoss, "mpdiou", MPDIOU_REFERENCE)
_register("shape-iou", ShapeIoULoss, "shape-iou", SHAPE_IOU_REFERENCE)
_register("piou", PowerfulIoULoss, "powerful-iou", POWERFUL_IOU_REFERENCE, version=1)
_register("piou-v2", PowerfulIoULoss, "powerful-iou", POWERFUL_IOU_REFERENCE, version=2)
_register("nwd", NWDLoss, "nwd", NWD_REFERENCE)
for _name, _cls, _reference in (
    ("mpdiou", MPDIoULoss, MPDIOU_REFERENCE),
    ("shape-iou", ShapeIoULoss, SHAPE_IOU_REFERENCE),
    ("piou", PowerfulIoULoss, POWERFUL_IOU_REFERENCE),
):
    _register(
        f"inner-{_name}",
        _cls,
        "inner-iou",
        f"{INNER_IOU_REFERENCE}; {_reference}",
        inner_ratio=DEFAULT_INNER_RATIO,
    )
