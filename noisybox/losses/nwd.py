"""The normalised Gaussian Wasserstein distance (NWD) as a box loss (Wang et al., 2021).

>>> pred = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
>>> target = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
>>> nwd_loss(pred, target, constant=2.0)  # W2^2 = 0 + (4 + 4) / 4 = 2: 1 - exp(-sqrt(2) / 2)
tensor([0.5069])
"""

from __future__ import annotations

import torch
from torch import Tensor

from noisybox.losses._common import (
    PairLoss,
    centre_deltas,
    check_number,
    check_powers,
    pairwise_loss,
)
from noisybox.losses._geometry import Geometry, safe_pow

__all__ = ["NWD_REFERENCE", "NWDLoss", "nwd_loss"]

NWD_REFERENCE = (
    "Wang et al., A Normalized Gaussian Wasserstein Distance for Tiny Object Detection, 2021, "
    "https://arxiv.org/abs/2110.13389 (NWD = exp(-sqrt(W2^2) / C), L_NWD = 1 - NWD)"
)


def nwd_loss(
    pred: Tensor,
    target: Tensor,
    *,
    alpha: float = 1.0,
    constant: float = 12.8,
    box_format: str = "xyxy",
    reduction: str = "none",
    weight: Tensor | None = None,
    eps: float = 1e-7,
) -> Tensor:
    """NWD loss ``1 - NWD`` of matched box pairs.

    Each box is the 2-D Gaussian ``N((cx, cy), diag(w^2 / 4, h^2 / 4))``; the squared
    2-Wasserstein distance of two such Gaussians is ``W2^2 = ||(cx, cy, w/2, h/2) - (cxgt,
    cygt, wgt/2, hgt/2)||^2`` and ``NWD = exp(-sqrt(W2^2) / C)``. ``C`` (``constant``, in
    the boxes' units) is tied to the data set: the paper uses the average absolute object
    size, 12.8 px on AI-TOD (the default). Unlike the IoU, NWD does not fall to 0 for
    disjoint boxes and is not scale invariant.

    Conventions: NWD takes the IoU's place in eq. 2 of the Alpha-IoU paper: ``1 -
    NWD^alpha = 1 - exp(-alpha sqrt(W2^2) / C)`` (so ``alpha`` acts as ``C / alpha``), and
    ``alpha = 0`` gives ``-log(NWD) = sqrt(W2^2) / C``; ``alpha = 1`` is the paper's loss.
    The square root is replaced by its chord below ``eps`` (finite gradient, exactly 0 for
    identical boxes; the authors' code adds ``eps`` under the root instead).

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes.
        target: ``Tensor[..., 4]`` target boxes, same shape.
        alpha: power of NWD, ``>= 0``.
        constant: ``C``, ``> 0``, in the boxes' units.
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"`` (``Tensor[...]``), ``"mean"`` or ``"sum"``.
        weight: optional ``Tensor[...]`` multiplied into the per-pair loss.
        eps: below it the square root is linear.

    Returns:
        ``Tensor[...]`` or a scalar, float32 or float64.

    Raises:
        ValueError: bad alpha or constant, reduction, box format or shapes.

    Reference:
        Wang et al., A Normalized Gaussian Wasserstein Distance for Tiny Object Detection,
        2021, https://arxiv.org/abs/2110.13389 (NWD and its loss ``1 - NWD``).
    """
    a, _ = check_powers(alpha, None)
    c = check_number("constant", constant)

    def body(g: Geometry) -> Tensor:
        dx, dy = centre_deltas(g)
        w2 = dx**2 + dy**2 + ((g.w - g.gw) ** 2 + (g.h - g.gh) ** 2) / 4
        distance = safe_pow(w2, 0.5, eps) / c
        return distance if a == 0 else 1 - torch.exp(-a * distance)

    return pairwise_loss(
        pred, target, body, box_format=box_format, reduction=reduction, weight=weight, eps=eps
    )


class NWDLoss(PairLoss):
    """``nn.Module`` over :func:`nwd_loss`; ``alpha`` and ``constant`` read at every call.

    >>> NWDLoss(constant=8.0).constant
    8.0
    """

    fn = nwd_loss
    hyper_parameters = ("alpha", "constant")

    def __init__(
        self,
        alpha: float = 1.0,
        constant: float = 12.8,
        *,
        box_format: str = "xyxy",
        reduction: str = "none",
        eps: float = 1e-7,
    ) -> None:
        super().__init__(
            box_format=box_format, reduction=reduction, eps=eps, alpha=alpha, constant=constant
        )
