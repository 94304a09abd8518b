"""Focal-EIoU: the EIoU loss reweighted by ``IoU^gamma`` (Zhang et al., Neurocomputing 2022).

>>> pred = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
>>> target = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
>>> focal_eiou_loss(pred, target)  # IoU^0.5 * (1 - 1/4 + 0 + 4/16 + 4/16) = 0.5 * 1.25
tensor([0.6250])
"""

from __future__ import annotations

import torch
from torch import Tensor

from noisybox.losses._common import PairLoss, check_number, check_powers, pairwise_loss
from noisybox.losses._geometry import Geometry
from noisybox.losses.alpha_iou import _eiou_penalty, alpha_iou_term

__all__ = ["FOCAL_EIOU_REFERENCE", "FocalEIoULoss", "focal_eiou_loss"]

FOCAL_EIOU_REFERENCE = (
    "Zhang et al., Focal and Efficient IOU Loss for Accurate Bounding Box Regression, "
    "Neurocomputing 506 (2022), https://arxiv.org/abs/2101.08158 (EIoU eq. 10; Focal-EIoU "
    "L = IoU^gamma L_EIoU)"
)


def focal_eiou_loss(
    pred: Tensor,
    target: Tensor,
    *,
    alpha: float = 1.0,
    alpha_penalty: float | None = None,
    gamma: float = 0.5,
    box_format: str = "xyxy",
    reduction: str = "none",
    weight: Tensor | None = None,
    eps: float = 1e-7,
) -> Tensor:
    """Focal-EIoU loss ``IoU^gamma * L_EIoU`` of matched box pairs.

    ``L_EIoU = 1 - IoU + rho^2(b, bgt) / c^2 + (w - wgt)^2 / cw^2 + (h - hgt)^2 / ch^2``
    with ``c`` the diagonal and ``cw, ch`` the width and height of the smallest enclosing
    box. The paper's ``gamma = 0.5`` is the default.

    Conventions: the focal weight ``IoU^gamma`` is the plain IoU and carries no gradient
    (the paper uses it to *reweight* the EIoU loss; differentiated, the product would be
    minimised by ``IoU -> 0``, where it vanishes, and push low-IoU boxes away). The alpha
    power applies to the EIoU factor as :func:`~noisybox.losses.alpha_iou_loss` applies it to
    EIoU (eq. 3: ``1 - IoU^alpha`` and each of the three penalty terms to
    ``alpha_penalty``); ``alpha = 1`` is the paper's loss.

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes.
        target: ``Tensor[..., 4]`` target boxes, same shape.
        alpha: power of the IoU term, ``>= 0`` (``0``: ``-log(IoU)``).
        alpha_penalty: power of each penalty term; ``None`` follows ``alpha``.
        gamma: focusing exponent of the weight ``IoU^gamma``, ``>= 0``.
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"`` (``Tensor[...]``), ``"mean"`` or ``"sum"``.
        weight: optional ``Tensor[...]`` multiplied into the per-pair loss.
        eps: added to every denominator.

    Returns:
        ``Tensor[...]`` or a scalar, float32 or float64.

    Raises:
        ValueError: bad alpha or gamma, reduction, box format or shapes.

    Reference:
        Zhang et al., Focal and Efficient IOU Loss for Accurate Bounding Box Regression,
        Neurocomputing 506 (2022), https://arxiv.org/abs/2101.08158 (EIoU eq. 10; Focal-EIoU
        ``L = IoU^gamma L_EIoU``). Alpha power: He et al., NeurIPS 2021 (eq. 3).
    """
    a, a_pen = check_powers(alpha, alpha_penalty)
    g_exp = check_number("gamma", gamma, allow_low=True)

    def body(g: Geometry) -> Tensor:
        eiou = alpha_iou_term(g.iou, a, eps=eps) + _eiou_penalty(g, a_pen, eps)
        with torch.no_grad():
            focus = g.iou.clamp(min=0).pow(g_exp)
        return focus * eiou

    return pairwise_loss(
        pred, target, body, box_format=box_format, reduction=reduction, weight=weight, eps=eps
    )


class FocalEIoULoss(PairLoss):
    """``nn.Module`` over :func:`focal_eiou_loss`; ``alpha`` and ``gamma`` read at every call.

    >>> FocalEIoULoss(gamma=0.5)
    FocalEIoULoss(alpha=1.0, alpha_penalty=None, gamma=0.5, box_format='xyxy', reduction='none')
    """

    fn = focal_eiou_loss
    hyper_parameters = ("alpha", "alpha_penalty", "gamma")

    def __init__(
        self,
        alpha: float = 1.0,
        alpha_penalty: float | None = None,
        gamma: float = 0.5,
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
            gamma=gamma,
        )
