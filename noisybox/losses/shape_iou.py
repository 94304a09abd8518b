"""Shape-IoU: distance and shape costs weighted by the target box's own shape (Zhang and Zhang, 2023).

>>> pred = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
>>> target = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
>>> shape_iou_loss(pred, target)  # 1 - 1/4 + 0 + 0.5 * 2 (1 - exp(-1/2))^4
tensor([0.7740])
"""

from __future__ import annotations

import torch
from torch import Tensor

from noisybox.losses._common import (
    PairLoss,
    centre_deltas,
    check_inner_ratio,
    check_number,
    check_powers,
    pairwise_loss,
)
from noisybox.losses._geometry import Geometry, inner_iou, safe_pow
from noisybox.losses.alpha_iou import alpha_iou_term

__all__ = ["SHAPE_IOU_REFERENCE", "ShapeIoULoss", "shape_iou_loss"]

SHAPE_IOU_REFERENCE = (
    "Zhang and Zhang, Shape-IoU: More Accurate Metric considering Bounding Box Shape and "
    "Scale, 2023, https://arxiv.org/abs/2312.17663 (L = 1 - IoU + distance^shape + "
    "0.5 Omega^shape)"
)


def shape_iou_loss(
    pred: Tensor,
    target: Tensor,
    *,
    alpha: float = 1.0,
    alpha_penalty: float | None = None,
    scale: float = 0.0,
    inner_ratio: float | None = None,
    box_format: str = "xyxy",
    reduction: str = "none",
    weight: Tensor | None = None,
    eps: float = 1e-7,
) -> Tensor:
    """Shape-IoU loss ``1 - IoU + distance^shape + 0.5 Omega^shape`` of matched box pairs.

    With the target's shape weights ``ww = 2 wgt^s / (wgt^s + hgt^s)`` and ``hh = 2 hgt^s /
    (wgt^s + hgt^s)`` (``s = scale``, a property of the data set's object sizes):
    ``distance^shape = hh (x - xgt)^2 / c^2 + ww (y - ygt)^2 / c^2`` (``c`` the enclosing
    box's diagonal) and ``Omega^shape = sum_{t=w,h} (1 - exp(-omega_t))^4`` with ``omega_w
    = hh |w - wgt| / max(w, wgt)`` and ``omega_h = ww |h - hgt| / max(h, hgt)``. At
    ``scale = 0`` (the authors' code's default) ``ww = hh = 1``: DIoU's distance plus half
    SIoU's shape cost.

    Conventions: the alpha power applies as eq. 3 of the Alpha-IoU paper, to ``1 -
    IoU^alpha``, to ``distance^shape`` and to ``0.5 Omega^shape`` (two terms, as eq. 4
    powers CIoU's two); ``alpha = 1`` is the paper's loss.

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes.
        target: ``Tensor[..., 4]`` target boxes, same shape.
        alpha: power of the IoU term, ``>= 0`` (``0``: ``-log(IoU)``).
        alpha_penalty: power of each penalty term; ``None`` follows ``alpha``.
        scale: the exponent ``scale`` of the shape weights, ``>= 0``.
        inner_ratio: Inner-IoU's auxiliary-box ratio for the IoU term (Inner-Shape-IoU).
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"`` (``Tensor[...]``), ``"mean"`` or ``"sum"``.
        weight: optional ``Tensor[...]`` multiplied into the per-pair loss.
        eps: added to every denominator.

    Returns:
        ``Tensor[...]`` or a scalar, float32 or float64.

    Raises:
        ValueError: bad alpha, scale or ratio, reduction, box format or shapes.

    Reference:
        Zhang and Zhang, Shape-IoU: More Accurate Metric considering Bounding Box Shape and
        Scale, 2023, https://arxiv.org/abs/2312.17663 (Shape-IoU loss); authors' code for
        the default scale: https://github.com/malagoutou/Shape-IoU.
    """
    a, a_pen = check_powers(alpha, alpha_penalty)
    s = check_number("scale", scale, allow_low=True)
    ratio = check_inner_ratio(inner_ratio)

    def body(g: Geometry) -> Tensor:
        if s == 0:
            ww: Tensor | float = 1.0
            hh: Tensor | float = 1.0
        else:
            gw_s, gh_s = safe_pow(g.gw, s, eps), safe_pow(g.gh, s, eps)
            total = gw_s + gh_s + eps
            ww, hh = 2 * gw_s / total, 2 * gh_s / total
        dx, dy = centre_deltas(g)
        distance = (hh * dx**2 + ww * dy**2) / (g.cw**2 + g.ch**2 + eps)
        # |w - wgt| as max - min: the same values and gradients, and autograd keeps w, wgt
        # once for both instead of the difference as well
        w_max, h_max = torch.maximum(g.w, g.gw), torch.maximum(g.h, g.gh)
        omega_w = hh * (w_max - torch.minimum(g.w, g.gw)) / (w_max + eps)
        omega_h = ww * (h_max - torch.minimum(g.h, g.gh)) / (h_max + eps)
        shape = (1 - torch.exp(-omega_w)) ** 4 + (1 - torch.exp(-omega_h)) ** 4
        iou = g.iou if ratio is None else inner_iou(g, ratio, eps)
        return (
            alpha_iou_term(iou, a, eps=eps)
            + safe_pow(distance, a_pen, eps)
            + safe_pow(0.5 * shape, a_pen, eps)
        )

    return pairwise_loss(
        pred, target, body, box_format=box_format, reduction=reduction, weight=weight, eps=eps
    )


class ShapeIoULoss(PairLoss):
    """``nn.Module`` over :func:`shape_iou_loss`; ``alpha`` and ``scale`` read at every call.

    >>> ShapeIoULoss(scale=0.5).scale
    0.5
    """

    fn = shape_iou_loss
    hyper_parameters = ("alpha", "alpha_penalty", "scale", "inner_ratio")

    def __init__(
        self,
        alpha: float = 1.0,
        alpha_penalty: float | None = None,
        scale: float = 0.0,
        inner_ratio: float | None = None,
        *,
        box_format: str = "xyxy",
        reduction: str = "none",
        eps: float = 1e-7,
    ) -> None:
        super().__init__(
            box_format=box_format,
            reduction=reduction,
            eps=eps,
            alpha=alpha,
            alpha_penalty=alpha_penalty,
            scale=scale,
            inner_ratio=inner_ratio,
        )
