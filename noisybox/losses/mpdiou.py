"""MPDIoU: IoU minus the corner distances over the input image's diagonal (Ma and Xu, 2023).

>>> import torch
>>> pred = torch.tensor([[0.0, 0.0, 4.0, 4.0]])
>>> target = torch.tensor([[1.0, 1.0, 3.0, 3.0]])
>>> mpdiou_loss(pred, target, image_size=10.0)  # 1 - 1/4 + 2 / 200 + 2 / 200
tensor([0.7700])
"""

from __future__ import annotations

from collections.abc import Sequence

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

__all__ = ["MPDIOU_REFERENCE", "ImageSize", "MPDIoULoss", "mpdiou_loss"]

MPDIOU_REFERENCE = (
    "Ma and Xu, MPDIoU: A Loss for Efficient and Accurate Bounding Box Regression, 2023, "
    "https://arxiv.org/abs/2307.07662 (Algorithm 1; L_MPDIoU = 1 - MPDIoU)"
)

#: The network input's size: one side (square), ``(width, height)``, or ``Tensor[..., 2]``.
ImageSize = float | Sequence[float] | Tensor


def _squared_diagonal(image_size: ImageSize) -> float | Tensor:
    if isinstance(image_size, Tensor):
        if image_size.dim() == 0 or image_size.shape[-1] != 2:
            raise ValueError(
                f"Expected image_size as Tensor[..., 2] (width, height) but got shape "
                f"{list(image_size.shape)}"
            )
        size = image_size.float() if not image_size.is_floating_point() else image_size
        return size[..., 0] ** 2 + size[..., 1] ** 2
    if isinstance(image_size, (int, float)):
        side = check_number("image_size", image_size)
        return 2 * side**2
    values = list(image_size)
    if len(values) != 2:
        raise ValueError(f"Expected image_size as (width, height) but got {image_size!r}")
    width = check_number("image_size width", values[0])
    height = check_number("image_size height", values[1])
    return width**2 + height**2


def mpdiou_loss(
    pred: Tensor,
    target: Tensor,
    *,
    alpha: float = 1.0,
    alpha_penalty: float | None = None,
    image_size: ImageSize | None = None,
    inner_ratio: float | None = None,
    box_format: str = "xyxy",
    reduction: str = "none",
    weight: Tensor | None = None,
    eps: float = 1e-7,
) -> Tensor:
    """MPDIoU loss ``1 - MPDIoU`` of matched box pairs.

    ``MPDIoU = IoU - d1^2 / (w^2 + h^2) - d2^2 / (w^2 + h^2)`` with ``d1`` the distance
    between the top-left corners, ``d2`` between the bottom-right corners and ``w, h`` the
    width and height of the input image. Since ``d1^2 + d2^2 = 2 rho^2 + ((w - wgt)^2 +
    (h - hgt)^2) / 2`` (``rho`` the centre distance), the penalty holds DIoU's centre
    distance and EIoU's width and height differences in one term.

    ``image_size`` is the paper's input image, in the boxes' units: the detectors of
    :func:`noisybox.detectors.build_detector` fill it with their square input side when it
    is ``None``. Called without one, the squared diagonal of the smallest enclosing box
    normalises instead (scale-free like DIoU; this is *not* the paper's MPDIoU).

    Conventions: the alpha power applies as eq. 3 of the Alpha-IoU paper, to ``1 -
    IoU^alpha`` and to each of the two corner terms (as eq. 4 powers each of CIoU's terms);
    ``alpha = 1`` is the paper's loss.

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes.
        target: ``Tensor[..., 4]`` target boxes, same shape.
        alpha: power of the IoU term, ``>= 0`` (``0``: ``-log(IoU)``).
        alpha_penalty: power of each corner term; ``None`` follows ``alpha``.
        image_size: the input image: a side (square), ``(width, height)``, or
            ``Tensor[..., 2]`` per pair (broadcast, e.g. per stride level in grid units; not
            checked for positivity); ``None`` for the enclosing-box fallback.
        inner_ratio: Inner-IoU's auxiliary-box ratio for the IoU term (Inner-MPDIoU).
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        reduction: ``"none"`` (``Tensor[...]``), ``"mean"`` or ``"sum"``.
        weight: optional ``Tensor[...]`` multiplied into the per-pair loss.
        eps: added to every denominator.

    Returns:
        ``Tensor[...]`` or a scalar, float32 or float64.

    Raises:
        ValueError: bad alpha, image size or ratio, reduction, box format or shapes.

    Reference:
        Ma and Xu, MPDIoU: A Loss for Efficient and Accurate Bounding Box Regression,
        2023, https://arxiv.org/abs/2307.07662 (Algorithm 1, ``L_MPDIoU = 1 - MPDIoU``).
    """
    a, a_pen = check_powers(alpha, alpha_penalty)
    ratio = check_inner_ratio(inner_ratio)
    diagonal2 = None if image_size is None else _squared_diagonal(image_size)

    def body(g: Geometry) -> Tensor:
        d1 = (g.x1 - g.gx1) ** 2 + (g.y1 - g.gy1) ** 2
        d2 = (g.x2 - g.gx2) ** 2 + (g.y2 - g.gy2) ** 2
        norm = g.cw**2 + g.ch**2 + eps if diagonal2 is None else diagonal2 + eps
        iou = g.iou if ratio is None else inner_iou(g, ratio, eps)
        return (
            alpha_iou_term(iou, a, eps=eps)
            + safe_pow(d1 / norm, a_pen, eps)
            + safe_pow(d2 / norm, a_pen, eps)
        )

    return pairwise_loss(
        pred, target, body, box_format=box_format, reduction=reduction, weight=weight, eps=eps
    )


class MPDIoULoss(PairLoss):
    """``nn.Module`` over :func:`mpdiou_loss`; ``alpha`` and ``image_size`` read at every call.

    >>> MPDIoULoss(image_size=(640, 480)).image_size
    (640, 480)
    """

    fn = mpdiou_loss
    hyper_parameters = ("alpha", "alpha_penalty", "image_size", "inner_ratio")

    def __init__(
        self,
        alpha: float = 1.0,
        alpha_penalty: float | None = None,
        image_size: ImageSize | None = None,
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
            image_size=image_size,
            inner_ratio=inner_ratio,
        )
