"""Wise-IoU v1 and v3 (Tong et al., 2023): distance attention and a dynamic focusing gain.

v1 multiplies the IoU loss by a distance attention ``R_WIoU``; v3 multiplies v1 by a
non-monotonic gain ``r`` of the box's *outlier degree* ``beta``, its IoU loss over the
running mean of the IoU loss. That running mean is state: :class:`WiseIoULoss` keeps it in
a buffer, so it is saved with the detector's ``state_dict`` (noisybox checkpoints) and
restored on resume.

>>> pred = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
>>> target = torch.tensor([[2.0, 0.0, 3.0, 1.0]])
>>> wise_iou_loss(pred, target, version=1)  # exp(rho^2 / c^2) (1 - IoU) = exp(4 / 10)
tensor([1.4918])
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from noisybox.losses._common import (
    PairLoss,
    centre_deltas,
    check_choice,
    check_number,
    check_powers,
    pairwise_loss,
)
from noisybox.losses._geometry import Geometry
from noisybox.losses.alpha_iou import alpha_iou_term

__all__ = ["WISE_IOU_REFERENCE", "WiseIoULoss", "wise_iou_loss"]

WISE_IOU_REFERENCE = (
    "Tong et al., Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing Mechanism, "
    "2023, https://arxiv.org/abs/2301.10051 (WIoU v1: L = R_WIoU L_IoU; v3: L = r L_WIoUv1, "
    "r = beta / (delta alpha^(beta - delta)))"
)

VERSIONS = (1, 3)


def wise_iou_loss(
    pred: Tensor,
    target: Tensor,
    *,
    version: int = 3,
    alpha: float = 1.0,
    running_mean: Tensor | float = 1.0,
    training: bool = False,
    momentum: float = 0.01,
    focus_alpha: float = 1.9,
    focus_delta: float = 3.0,
    box_format: str = "xyxy",
    reduction: str = "none",
    weight: Tensor | None = None,
    eps: float = 1e-7,
) -> Tensor:
    """Wise-IoU v1 or v3 loss of matched box pairs.

    v1: ``L = R_WIoU * L_IoU`` with ``R_WIoU = exp(((x - xgt)^2 + (y - ygt)^2) /
    (Wg^2 + Hg^2)*)``, ``(x, y)`` the box centres, ``Wg, Hg`` the size of the smallest
    enclosing box and ``*`` detached from the graph (so ``R`` cannot shrink by growing the
    enclosing box); ``1 <= R < e``.

    v3: ``L = r * L_WIoUv1`` with the outlier degree ``beta = L_IoU* / mean(L_IoU)`` and the
    non-monotonic focusing coefficient ``r = beta / (delta * alpha^(beta - delta))`` (``r =
    1`` at ``beta = delta``; ``*`` detached). ``mean(L_IoU)`` is an exponential running mean
    (``running_mean``) updated, like ``torch.nn.functional.batch_norm``'s statistics, in
    place and before use when ``training`` is true: ``m <- (1 - momentum) m + momentum *
    mean over this call's pairs of L_IoU``. The paper's ``alpha = 1.9, delta = 3`` are the
    defaults, here ``focus_alpha`` and ``focus_delta`` (``alpha`` is the power below).

    Conventions: ``L_IoU = 1 - IoU`` in ``beta`` and the running mean (the box's quality,
    independent of the power); the alpha power applies to the IoU loss that ``R`` (and
    ``r``) multiply, ``1 - IoU^alpha`` (eq. 2); ``alpha = 1`` is the paper's loss.

    Its length is the docstring (both versions' parameters and their defaults); the code is
    one loss body handed to the shared reduction.

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes.
        target: ``Tensor[..., 4]`` target boxes, same shape.
        version: ``1`` or ``3``.
        alpha: power of the IoU term, ``>= 0`` (``0``: ``-log(IoU)``).
        running_mean: v3's ``mean(L_IoU)``: a number, or a one-element tensor that
            ``training`` updates in place. ``1`` is the authors' initial value.
        training: update a tensor ``running_mean`` with this call's pairs (v3 only).
        momentum: weight of the new value in the update, in ``(0, 1]``.
        focus_alpha: ``alpha`` of ``r``, ``>= 1``; ``1`` makes ``r = beta / delta`` monotonic.
        focus_delta: ``delta`` of ``r``, ``> 0``: the outlier degree whose gain is 1.
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"`` (``Tensor[...]``), ``"mean"`` or ``"sum"``.
        weight: optional ``Tensor[...]`` multiplied into the per-pair loss.
        eps: added to every denominator; the running mean is clamped to ``>= eps``.

    Returns:
        ``Tensor[...]`` or a scalar, float32 or float64.

    Raises:
        ValueError: bad version or hyper-parameter, reduction, box format or shapes.

    Reference:
        Tong et al., Wise-IoU: Bounding Box Regression Loss with Dynamic Focusing
        Mechanism, 2023, https://arxiv.org/abs/2301.10051 (WIoU v1 and v3). Authors' code,
        for the update order and the initial mean: https://github.com/Instinct323/wiou.

    >>> mean = torch.tensor(1.0)
    >>> pred, target = torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]])
    >>> loss = wise_iou_loss(pred, target, running_mean=mean, training=True, momentum=0.5)
    >>> mean  # 0.5 * 1 + 0.5 * (1 - 1/4)
    tensor(0.8750)
    """
    check_choice("version", version, VERSIONS)
    a, _ = check_powers(alpha, None)
    m = check_number("momentum", momentum)
    if m > 1:
        raise ValueError(f"Expected momentum <= 1 but got {momentum!r}")
    f_alpha = check_number("focus_alpha", focus_alpha, low=1.0, allow_low=True)
    f_delta = check_number("focus_delta", focus_delta)
    log_alpha = math.log(f_alpha)

    def body(g: Geometry) -> Tensor:
        dx, dy = centre_deltas(g)
        attention = torch.exp((dx**2 + dy**2) / ((g.cw**2 + g.ch**2).detach() + eps))
        loss = attention * alpha_iou_term(g.iou, a, eps=eps)
        if version == 1:
            return loss
        with torch.no_grad():
            iou_loss = 1 - g.iou
            if training and isinstance(running_mean, Tensor):
                # non-finite pairs (a degenerate or NaN box) are left out of the mean: one
                # of them would make every pair of this call, and the mean of every later
                # call, NaN; a call without a finite pair leaves the mean as it was
                finite = torch.isfinite(iou_loss)
                count = finite.sum()
                new = torch.where(finite, iou_loss, 0).sum() / count.clamp(min=1)
                weight = m * (count > 0).to(running_mean.dtype)
                running_mean.mul_(1 - weight).add_(weight * new.to(running_mean.dtype))
            mean = torch.as_tensor(running_mean, dtype=g.iou.dtype, device=g.iou.device)
            beta = iou_loss / mean.clamp(min=eps)
            # r = beta / (delta alpha^(beta - delta)), as a product so that alpha^(...) never
            # overflows: with alpha >= 1 the exponent is at most delta ln(alpha)
            gain = beta / f_delta * torch.exp((f_delta - beta) * log_alpha)
        return gain * loss

    return pairwise_loss(
        pred, target, body, box_format=box_format, reduction=reduction, weight=weight, eps=eps
    )


class WiseIoULoss(PairLoss):
    """``nn.Module`` over :func:`wise_iou_loss`; v3 keeps ``mean(L_IoU)`` in a buffer.

    The buffer ``running_mean`` (v3 only; ``version`` is fixed at construction) starts at 1
    and is updated in training mode (``module.train()``, the detector's mode) at every call
    with that call's pairs, before it is used; in eval mode it is read only. Being a
    buffer of a submodule of the detector, it is in ``model.state_dict()``: noisybox
    checkpoints save it and resuming restores it (weights loaded with
    ``build_detector(weights=...)`` keep the new loss's own state instead).

    The running mean counts calls, not images: FCOS and Faster R-CNN call the loss once per
    training step, RetinaNet once per image. The paper derives ``momentum`` from the length
    of training (:meth:`paper_momentum`); the default ``0.01`` is the authors' current
    code's.

    Under DDP: ``DistributedDataParallel`` (``broadcast_buffers=True``, its default and
    noisybox's) copies rank 0's buffers to every rank at the start of each forward. Each
    rank then updates that copy with its own pairs before using it, so within a step the
    ranks' means differ by their own batch's share; across steps the mean follows rank 0's
    batches only, and the checkpoint (written by rank 0) holds rank 0's. With
    ``broadcast_buffers=False`` each rank would keep its own mean and only rank 0's would
    be saved. No collective is added inside the loss (a rank with no foreground box would
    otherwise stall the others).

    Args:
        version: ``1`` or ``3``.
        alpha: power of the IoU term (``1``: the paper's loss).
        focus_alpha: ``alpha`` of v3's focusing coefficient ``r`` (paper: 1.9).
        focus_delta: ``delta`` of ``r`` (paper: 3).
        momentum: weight of each call's mean in the running mean.
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"``, ``"mean"`` or ``"sum"``.
        eps: added to every denominator.

    Raises:
        ValueError: as :func:`wise_iou_loss`, at construction.

    >>> loss = WiseIoULoss(version=3, momentum=0.5)
    >>> _ = loss(torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.tensor([[1.0, 1.0, 3.0, 3.0]]))
    >>> loss.state_dict()["running_mean"]
    tensor(0.8750)
    """

    fn = wise_iou_loss
    hyper_parameters = ("version", "alpha", "focus_alpha", "focus_delta", "momentum")

    def init_state(self) -> None:
        if self.version == 3:
            self.register_buffer("running_mean", torch.tensor(1.0))

    def state_arguments(self) -> dict[str, Any]:
        """v3's ``running_mean``, which a call in training mode updates before using it."""
        if self.version != 3:
            return {}
        return {"running_mean": self.get_buffer("running_mean"), "training": self.training}

    @staticmethod
    def paper_momentum(steps: int) -> float:
        """The paper's ``m = 1 - 0.05^(1 / (t n))``: after ``steps = t n`` updates the initial
        value weighs 5 % (``n`` batches per epoch, ``t`` the epoch where mAP's rise slows).

        >>> round(WiseIoULoss.paper_momentum(100), 5)
        0.02951
        """
        if steps < 1:
            raise ValueError(f"Expected steps >= 1 but got {steps}")
        return 1 - 0.05 ** (1 / steps)
