"""The alpha-IoU family of box-regression losses (He et al., NeurIPS 2021, §3.2 eq. 1-4).

Every variant is ``L = 1 - IoU^alpha + P^alpha_penalty`` (equation 3): the IoU term is
shared, a variant only contributes its penalty ``P`` (a function registered in
``_PENALTIES``). ``alpha = 1`` recovers the classic loss, ``alpha = 0`` the ``-log(IoU)``
limit of equation 2, and ``box_cox=True`` the ``(1 - IoU^alpha) / alpha`` form of equation 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from noisybox._registry import Registry
from noisybox.losses._common import (
    PairLoss,
    check_choice,
    check_inner_ratio,
    check_powers,
    pairwise_loss,
    term_iou,
)
from noisybox.losses._geometry import Geometry, safe_pow

__all__ = [
    "ALPHA_IOU_REFERENCE",
    "VARIANT_REFERENCES",
    "AlphaIoULoss",
    "alpha_iou_loss",
    "alpha_iou_term",
    "list_variants",
]

ALPHA_IOU_REFERENCE = (
    "He et al., Alpha-IoU: A Family of Power Intersection over Union Losses for Bounding Box "
    "Regression, NeurIPS 2021, https://arxiv.org/abs/2110.13675 (eq. 1-4)"
)
#: The paper that defines each variant's penalty (the power is the Alpha-IoU paper's).
VARIANT_REFERENCES = {
    "iou": "Yu et al., UnitBox: An Advanced Object Detection Network, ACM MM 2016, "
    "https://arxiv.org/abs/1608.01471",
    "giou": "Rezatofighi et al., Generalized Intersection over Union, CVPR 2019, "
    "https://arxiv.org/abs/1902.09630",
    "diou": "Zheng et al., Distance-IoU Loss, AAAI 2020, https://arxiv.org/abs/1911.08287",
    "ciou": "Zheng et al., Distance-IoU Loss, AAAI 2020, https://arxiv.org/abs/1911.08287",
    "eiou": "Zhang et al., Focal and Efficient IOU Loss for Accurate Bounding Box Regression, "
    "Neurocomputing 2022, https://arxiv.org/abs/2101.08158 (eq. 10)",
    "siou": "Gevorgyan, SIoU Loss: More Powerful Learning for Bounding Box Regression, 2022, "
    "https://arxiv.org/abs/2205.12740",
}

PenaltyFn = Callable[[Geometry, float, float], Tensor]
#: variant -> its penalty term (``None``: the plain IoU loss)
_PENALTIES: Registry[PenaltyFn | None] = Registry("variant")
_PENALTIES.add("iou", None)


def _penalty(name: str) -> Callable[[PenaltyFn], PenaltyFn]:
    def decorator(fn: PenaltyFn) -> PenaltyFn:
        _PENALTIES.add(name, fn)
        return fn

    return decorator


def list_variants() -> list[str]:
    """Names accepted by ``alpha_iou_loss(variant=...)``.

    >>> list_variants()
    ['ciou', 'diou', 'eiou', 'giou', 'iou', 'siou']
    """
    return _PENALTIES.names()


def _center_distance(g: Geometry, a: float, eps: float) -> Tensor:
    """``(rho^2 / c^2)^a``: squared centre distance over squared enclosing diagonal."""
    rho2 = ((g.x1 + g.x2 - g.gx1 - g.gx2) ** 2 + (g.y1 + g.y2 - g.gy1 - g.gy2) ** 2) / 4
    c2 = g.cw**2 + g.ch**2 + eps
    return safe_pow(rho2 / c2, a, eps)


@_penalty("giou")
def _giou_penalty(g: Geometry, a: float, eps: float) -> Tensor:
    """GIoU: ``(|C \\ (B u Bgt)| / |C|)^a`` (eq. 4).

    Reference: Rezatofighi et al., Generalized Intersection over Union, CVPR 2019,
    https://arxiv.org/abs/1902.09630
    """
    area_c = g.cw * g.ch
    return safe_pow((area_c - g.union) / (area_c + eps), a, eps)


@_penalty("diou")
def _diou_penalty(g: Geometry, a: float, eps: float) -> Tensor:
    """DIoU: ``rho^(2a)(b, bgt) / c^(2a)`` (eq. 4).

    Reference: Zheng et al., Distance-IoU Loss, AAAI 2020, https://arxiv.org/abs/1911.08287
    """
    return _center_distance(g, a, eps)


@_penalty("ciou")
def _ciou_penalty(g: Geometry, a: float, eps: float) -> Tensor:
    """CIoU: DIoU's term ``+ (beta * v)^a`` with ``beta`` a constant in the gradient (eq. 4).

    ``v = 4 / pi^2 (atan(wgt / hgt) - atan(w / h))^2`` and ``beta = v / ((1 - IoU) + v)``
    (plain IoU, not ``IoU^a``), computed without gradient as torchvision and the paper's
    code do; ``eps`` is added to both heights so degenerate boxes stay finite.

    Reference: Zheng et al., Distance-IoU Loss, AAAI 2020, https://arxiv.org/abs/1911.08287
    """
    # atan2(w, h + eps) is atan(w / (h + eps)) for h >= 0, and autograd keeps only its inputs
    v = (4 / math.pi**2) * (torch.atan2(g.gw, g.gh + eps) - torch.atan2(g.w, g.h + eps)) ** 2
    with torch.no_grad():
        beta = v / (1 - g.iou + v + eps)
    return _center_distance(g, a, eps) + safe_pow(beta * v, a, eps)


@_penalty("eiou")
def _eiou_penalty(g: Geometry, a: float, eps: float) -> Tensor:
    """EIoU: ``(rho^2 / c^2)^a + ((w - wgt)^2 / cw^2)^a + ((h - hgt)^2 / ch^2)^a``.

    Each of the three terms is raised to the power separately, the way equation 4
    powers each of CIoU's terms; ``cw, ch`` are the enclosing box's width and height.

    Reference: Zhang et al., Focal and Efficient IOU Loss for Accurate Bounding Box
    Regression, Neurocomputing 506 (2022), https://arxiv.org/abs/2101.08158 (eq. 10).
    """
    width = (g.w - g.gw) ** 2 / (g.cw**2 + eps)
    height = (g.h - g.gh) ** 2 / (g.ch**2 + eps)
    return _center_distance(g, a, eps) + safe_pow(width, a, eps) + safe_pow(height, a, eps)


@_penalty("siou")
def _siou_penalty(g: Geometry, a: float, eps: float) -> Tensor:
    """SIoU: ``((Delta + Omega) / 2)^a`` (distance-with-angle cost plus shape cost).

    Angle cost ``Lambda = 1 - 2 sin^2(arcsin(s) - pi/4) = 2 s sqrt(1 - s^2)`` with ``s`` the
    sine of the smaller angle between the centre line and an axis (so ``s <= 1/sqrt(2)`` and
    the square root never reaches 0); distance cost
    ``Delta = sum_{t=x,y} 1 - exp(-(2 - Lambda) (d_t / c_t)^2)`` over the enclosing box's
    width and height; shape cost ``Omega = sum_{t=w,h} (1 - exp(-|t - t_gt| / max(t, t_gt)))^4``.
    The combined penalty ``(Delta + Omega) / 2`` is raised to the power as one term
    (equation 3 with ``P`` the whole SIoU penalty).

    Reference: Gevorgyan, SIoU Loss: More Powerful Learning for Bounding Box Regression,
    2022, https://arxiv.org/abs/2205.12740
    """
    dx = (g.gx1 + g.gx2 - g.x1 - g.x2) / 2
    dy = (g.gy1 + g.gy2 - g.y1 - g.y2) / 2
    # eps^2 inside the root keeps the gradient of sigma finite for concentric boxes
    sigma = torch.sqrt(dx**2 + dy**2 + eps**2)
    s = torch.minimum(dx.abs(), dy.abs()) / sigma
    angle = 2 * s * torch.sqrt((1 - s**2).clamp(min=0.5))
    gamma = 2 - angle
    distance = (
        2
        - torch.exp(-gamma * (dx / (g.cw + eps)) ** 2)
        - torch.exp(-gamma * (dy / (g.ch + eps)) ** 2)
    )
    omega_w = (g.w - g.gw).abs() / (torch.maximum(g.w, g.gw) + eps)
    omega_h = (g.h - g.gh).abs() / (torch.maximum(g.h, g.gh) + eps)
    shape = (1 - torch.exp(-omega_w)) ** 4 + (1 - torch.exp(-omega_h)) ** 4
    return safe_pow((distance + shape) / 2, a, eps)


def alpha_iou_term(
    iou: Tensor, alpha: float, *, box_cox: bool = False, eps: float = 1e-7
) -> Tensor:
    """The IoU term of equations 1-2: ``1 - IoU^alpha`` (or ``-log(IoU)`` at ``alpha = 0``).

    Args:
        iou: ``Tensor[...]`` IoU values in ``[0, 1]``.
        alpha: power, ``>= 0``; ``0`` selects ``-log(max(IoU, eps))`` (eq. 2, ``alpha -> 0``).
        box_cox: divide by ``alpha`` (the Box-Cox form of eq. 1); no effect at ``alpha = 0``.
        eps: IoU values below ``eps`` use a linear chord for ``alpha < 1`` (finite gradient).

    Returns:
        ``Tensor[...]`` the loss term.

    >>> alpha_iou_term(torch.tensor([0.5, 1.0]), 2.0)
    tensor([0.7500, 0.0000])
    """
    if alpha == 0.0:
        return -torch.log(iou.clamp(min=eps))
    term = 1 - safe_pow(iou, alpha, eps)
    return term / alpha if box_cox else term


def alpha_iou_loss(
    pred: Tensor,
    target: Tensor,
    *,
    variant: str = "iou",
    alpha: float = 3.0,
    alpha_penalty: float | None = None,
    box_format: str = "xyxy",
    reduction: str = "none",
    weight: Tensor | None = None,
    eps: float = 1e-7,
    box_cox: bool = False,
    inner_ratio: float | None = None,
) -> Tensor:
    """Alpha-IoU loss of matched box pairs: ``1 - IoU^alpha + P^alpha_penalty`` (eq. 3-4).

    Variants: ``iou`` (no penalty), ``giou``, ``diou``, ``ciou`` (eq. 4), ``eiou``, ``siou``
    (see their penalty functions for references and how the power is applied). Boxes are
    expected with ``x1 <= x2`` and ``y1 <= y2``; this is not checked (that would cost a
    device sync), but degenerate (zero-width/height, identical, far apart) pairs give a
    finite loss and gradient. Half, bfloat16 and integer inputs are computed in float32.

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes.
        target: ``Tensor[..., 4]`` target boxes, same shape as ``pred``.
        variant: one of :func:`list_variants`.
        alpha: power of the IoU term, ``>= 0``; ``1`` is the classic loss, ``0`` the
            ``-log(IoU)`` limit of eq. 2.
        alpha_penalty: power of the penalty (``alpha_2`` of eq. 3); ``None`` follows
            ``alpha`` (``1`` when ``alpha = 0``).
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"`` (``Tensor[...]``), ``"mean"`` or ``"sum"`` (scalars).
        weight: optional ``Tensor[...]`` (broadcastable) multiplied into the per-pair loss
            before the reduction; ``"mean"`` is then the plain mean of weighted losses.
        eps: added to every denominator (the IoU divides by ``max(union, eps)``).
        box_cox: use ``(1 - IoU^alpha) / alpha`` for the IoU term (eq. 1).
        inner_ratio: Inner-IoU (Zhang et al. 2023, arXiv 2311.02877): the IoU term is
            computed on auxiliary boxes scaled by this ratio about their centres, the penalty
            on the boxes themselves (``L_Inner-X = L_X + IoU - IoU_inner`` at ``alpha = 1``).
            ``None`` (default) uses the boxes.

    Returns:
        ``Tensor[...]`` for ``reduction="none"``, else a scalar; float32 or float64. An empty
        input gives an empty tensor or ``0 * pred.sum()``, which back-propagates.

    Raises:
        ValueError: unknown variant, reduction or box format; bad alpha; shape mismatch.

    Reference:
        He et al., Alpha-IoU: A Family of Power Intersection over Union Losses for Bounding
        Box Regression, NeurIPS 2021, https://arxiv.org/abs/2110.13675 (eq. 1-4).

    >>> pred = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    >>> target = torch.tensor([[1.0, 0.0, 3.0, 2.0]])
    >>> alpha_iou_loss(pred, target, alpha=2.0)  # IoU = 1/3
    tensor([0.8889])
    >>> alpha_iou_loss(pred, target, variant="giou", alpha=1.0)
    tensor([0.6667])
    """
    check_choice("variant", variant, list_variants())
    a, a_pen = check_powers(alpha, alpha_penalty)
    ratio = check_inner_ratio(inner_ratio)
    penalty_fn = _PENALTIES.get(variant)

    def body(g: Geometry) -> Tensor:
        iou = term_iou(g, ratio, eps)
        loss = alpha_iou_term(iou, a, box_cox=box_cox, eps=eps)
        return loss if penalty_fn is None else loss + penalty_fn(g, a_pen, eps)

    return pairwise_loss(
        pred, target, body, box_format=box_format, reduction=reduction, weight=weight, eps=eps
    )


class AlphaIoULoss(PairLoss):
    """``nn.Module`` over :func:`alpha_iou_loss`.

    ``alpha`` (and ``alpha_penalty``) are plain attributes read at every call, so a
    training loop can ramp ``module.alpha`` for warm-up; with ``alpha_penalty=None`` the
    penalty follows the current ``alpha``.

    Args:
        variant: one of :func:`list_variants`.
        alpha: power of the IoU term (``0`` gives ``-log(IoU)``).
        alpha_penalty: power of the penalty; ``None`` follows ``alpha``.
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        eps: added to every denominator (the IoU divides by ``max(union, eps)``).
        box_cox: Box-Cox form of the IoU term (eq. 1).
        inner_ratio: Inner-IoU's auxiliary-box ratio for the IoU term; ``None`` for none.

    Raises:
        ValueError: as :func:`alpha_iou_loss`, at construction.

    >>> loss = AlphaIoULoss("ciou", alpha=3.0, reduction="sum")
    >>> loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
    tensor(0.)
    """

    fn = alpha_iou_loss
    hyper_parameters = ("variant", "alpha", "alpha_penalty", "box_cox", "inner_ratio")
    keyword_only = ("box_cox", "inner_ratio")

    def extra_repr(self) -> str:
        pen = "" if self.alpha_penalty is None else f", alpha_penalty={self.alpha_penalty}"
        extra = ", box_cox=True" if self.box_cox else ""
        extra += "" if self.inner_ratio is None else f", inner_ratio={self.inner_ratio}"
        return (
            f"variant={self.variant!r}, alpha={self.alpha}{pen}, "
            f"box_format={self.box_format!r}, reduction={self.reduction!r}{extra}"
        )
