"""Powerful-IoU (PIoU) v1 and v2: a target-size-adaptive edge penalty (Liu et al., 2024).

>>> pred = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
>>> target = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
>>> powerful_iou_loss(pred, target)  # P = (2/2 + 2/2) / 4 = 1/2: 1 - 1/4 + 1 - exp(-1/4)
tensor([0.9712])
"""

from __future__ import annotations

import torch
from torch import Tensor

from noisybox.losses._common import (
    PairLoss,
    check_inner_ratio,
    check_number,
    check_powers,
    pairwise_loss,
)
from noisybox.losses._geometry import Geometry, inner_iou, safe_pow
from noisybox.losses.alpha_iou import alpha_iou_term

__all__ = ["POWERFUL_IOU_REFERENCE", "PowerfulIoULoss", "powerful_iou_loss"]

POWERFUL_IOU_REFERENCE = (
    "Liu et al., Powerful-IoU: More straightforward and faster bounding box regression loss "
    "with a nonmonotonic focusing mechanism, Neural Networks (2024), "
    "https://www.sciencedirect.com/science/article/pii/S0893608023006640 "
    "(L_PIoU = 1 - IoU + 1 - exp(-P^2); "
    "L_PIoUv2 = u(lambda q) L_PIoU)"
)

VERSIONS = (1, 2)


def powerful_iou_loss(
    pred: Tensor,
    target: Tensor,
    *,
    version: int = 1,
    alpha: float = 1.0,
    alpha_penalty: float | None = None,
    focus_lambda: float = 1.3,
    inner_ratio: float | None = None,
    box_format: str = "xyxy",
    reduction: str = "none",
    weight: Tensor | None = None,
    eps: float = 1e-7,
) -> Tensor:
    """PIoU (v1) or PIoU v2 loss of matched box pairs.

    The penalty factor ``P = (dw1 / wgt + dw2 / wgt + dh1 / hgt + dh2 / hgt) / 4`` adds up the
    distances between corresponding edges (``dw1 = |x1 - x1gt|``, ``dw2 = |x2 - x2gt|``,
    ``dh1``, ``dh2`` likewise), each relative to the *target's* size, so that it does not
    grow with the enclosing box. v1: ``L_PIoU = 1 - IoU + f(P)`` with ``f(P) = 1 -
    exp(-P^2)``. v2 multiplies v1 by the non-monotonic attention ``u(lambda q) = 3 lambda q
    exp(-(lambda q)^2)`` of the box quality ``q = exp(-P)``, ``lambda = focus_lambda``
    (paper: 1.3).

    Conventions: as in the authors' code, the attention ``u`` keeps its gradient (the paper
    writes no stop-gradient); with it, ``L_PIoUv2`` tends to 0 as ``P`` grows, so for a very
    poor box (``lambda q < 1/sqrt(2)``) the gradient can point away from the target. The
    alpha power applies as eq. 3 of the Alpha-IoU paper, to ``1 - IoU^alpha`` and
    ``f(P)^alpha_penalty`` (``u`` is not powered); ``alpha = 1`` is the paper's loss.

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes.
        target: ``Tensor[..., 4]`` target boxes, same shape.
        version: ``1`` (PIoU) or ``2`` (PIoU v2).
        alpha: power of the IoU term, ``>= 0`` (``0``: ``-log(IoU)``).
        alpha_penalty: power of ``f(P)``; ``None`` follows ``alpha``.
        focus_lambda: ``lambda`` of v2's attention, ``> 0``.
        inner_ratio: Inner-IoU's auxiliary-box ratio for the IoU term (v1 only: v2's
            attention multiplies the whole loss).
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"`` (``Tensor[...]``), ``"mean"`` or ``"sum"``.
        weight: optional ``Tensor[...]`` multiplied into the per-pair loss.
        eps: added to every denominator.

    Returns:
        ``Tensor[...]`` or a scalar, float32 or float64.

    Raises:
        ValueError: bad version, alpha, lambda or ratio, reduction, box format or shapes.

    Reference:
        Liu et al., Powerful-IoU: More straightforward and faster bounding box regression
        loss with a nonmonotonic focusing mechanism, Neural Networks (2024),
        https://www.sciencedirect.com/science/article/pii/S0893608023006640; authors'
        code: https://github.com/fppccc/Powerful-IoU.
    """
    if version not in VERSIONS:
        raise ValueError(f"Expected version to be one of {VERSIONS} but got {version!r}")
    a, a_pen = check_powers(alpha, alpha_penalty)
    lam = check_number("focus_lambda", focus_lambda)
    ratio = check_inner_ratio(inner_ratio)
    if ratio is not None and version == 2:
        raise ValueError(f"Expected inner_ratio=None for PIoU v2 but got {inner_ratio!r}")

    def body(g: Geometry) -> Tensor:
        edges_x = (g.x1 - g.gx1).abs() + (g.x2 - g.gx2).abs()
        edges_y = (g.y1 - g.gy1).abs() + (g.y2 - g.gy2).abs()
        p = (edges_x / (g.gw + eps) + edges_y / (g.gh + eps)) / 4
        iou = g.iou if ratio is None else inner_iou(g, ratio, eps)
        loss = alpha_iou_term(iou, a, eps=eps) + safe_pow(1 - torch.exp(-(p**2)), a_pen, eps)
        if version == 1:
            return loss
        x = lam * torch.exp(-p)
        return 3 * x * torch.exp(-(x**2)) * loss

    return pairwise_loss(
        pred, target, body, box_format=box_format, reduction=reduction, weight=weight, eps=eps
    )


class PowerfulIoULoss(PairLoss):
    """``nn.Module`` over :func:`powerful_iou_loss`; ``alpha`` read at every call.

    >>> PowerfulIoULoss(version=2)
    PowerfulIoULoss(version=2, alpha=1.0, alpha_penalty=None, focus_lambda=1.3, inner_ratio=None, box_format='xyxy', reduction='none')
    """

    fn = powerful_iou_loss
    hyper_parameters = ("version", "alpha", "alpha_penalty", "focus_lambda", "inner_ratio")

    def __init__(
        self,
        version: int = 1,
        alpha: float = 1.0,
        alpha_penalty: float | None = None,
        focus_lambda: float = 1.3,
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
            version=version,
            alpha=alpha,
            alpha_penalty=alpha_penalty,
            focus_lambda=focus_lambda,
            inner_ratio=inner_ratio,
        )
