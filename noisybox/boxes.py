"""Box formats, conversions and IoU on numpy arrays and torch tensors.

Every function takes ``(N, 4)`` (or ``(N, 4+)``, extra columns are left alone where a box is
returned) float arrays, accepts ``N = 0`` and names its box format. Inside noisybox boxes are
absolute pixel ``xyxy``.

:func:`box_convert` and :func:`elementwise_box_iou` also take torch tensors ``Tensor[..., 4]``
and then return tensors; :func:`interval_overlap` (a side of the intersection),
:func:`interval_hull` (a side of the enclosing box), :func:`union_and_iou` and
:func:`elementwise_box_overlap` are the element-wise geometry of matched pairs that the box
losses and the detectors' IoU statistics are built on. torch is imported only when a tensor is passed,
so reading and perturbing annotations does not load it.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, overload

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "BOX_FORMATS",
    "box_area",
    "box_convert",
    "box_iou",
    "check_box_format",
    "elementwise_box_iou",
    "elementwise_box_overlap",
    "interval_hull",
    "interval_overlap",
    "union_and_iou",
]

BOX_FORMATS: tuple[str, ...] = ("xyxy", "xywh", "cxcywh")


def check_box_format(box_format: str) -> str:
    """Return ``box_format`` if it is known.

    Raises:
        ValueError: if ``box_format`` is not one of ``BOX_FORMATS``.
    """
    if box_format not in BOX_FORMATS:
        raise ValueError(f"Expected box_format in {list(BOX_FORMATS)} but got {box_format!r}")
    return box_format


def _as_boxes(boxes: np.ndarray) -> np.ndarray:
    arr = np.asarray(boxes)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    if arr.ndim != 2 or arr.shape[1] < 4:
        raise ValueError(f"Expected boxes of shape (N, 4) but got {arr.shape}")
    return arr


def _is_tensor(x: object) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


@overload
def box_convert(boxes: Tensor, in_fmt: str, out_fmt: str) -> Tensor: ...


@overload
def box_convert(boxes: np.ndarray, in_fmt: str, out_fmt: str) -> np.ndarray: ...


def box_convert(boxes: Any, in_fmt: str, out_fmt: str) -> Any:
    """Convert boxes between ``xyxy``, ``xywh`` and ``cxcywh``.

    A tensor goes through ``torchvision.ops.box_convert`` (autograd intact).

    Args:
        boxes: ``float[N, 4+]`` boxes in ``in_fmt``; columns past the fourth are copied.
            Or a ``Tensor[..., 4]``.
        in_fmt: format of ``boxes``.
        out_fmt: format of the result.

    Returns:
        ``float[N, 4+]`` a new array in ``out_fmt`` (same dtype; integers become float64),
        or a new ``Tensor[..., 4]``.

    Raises:
        ValueError: for an unknown format or a wrong shape.

    >>> box_convert(np.array([[10.0, 20.0, 30.0, 60.0]]), "xyxy", "cxcywh")
    array([[20., 40., 20., 40.]])
    >>> import torch
    >>> box_convert(torch.tensor([[20.0, 40.0, 20.0, 40.0]]), "cxcywh", "xyxy")
    tensor([[10., 20., 30., 60.]])
    """
    check_box_format(in_fmt)
    check_box_format(out_fmt)
    if _is_tensor(boxes):
        from torchvision.ops import box_convert as tv_box_convert

        if boxes.dim() == 0 or boxes.shape[-1] != 4:
            raise ValueError(f"Expected boxes of shape [..., 4] but got {list(boxes.shape)}")
        return tv_box_convert(boxes, in_fmt, out_fmt)
    arr = _as_boxes(boxes)
    out = arr.copy()
    if in_fmt == out_fmt:
        return out
    a, b, c, d = (arr[:, k] for k in range(4))
    if in_fmt == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        x1, y1, x2, y2 = a - c / 2, b - d / 2, a + c / 2, b + d / 2
    else:
        x1, y1, x2, y2 = a, b, c, d
    if out_fmt == "xyxy":
        cols = (x1, y1, x2, y2)
    elif out_fmt == "xywh":
        cols = (x1, y1, x2 - x1, y2 - y1)
    else:
        cols = ((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1)
    for k, col in enumerate(cols):
        out[:, k] = col
    return out


def box_area(boxes: np.ndarray, box_format: str = "xyxy") -> np.ndarray:
    """Area of every box.

    Args:
        boxes: ``float[N, 4+]``.
        box_format: format of ``boxes``.

    Returns:
        ``float[N]`` areas (negative sizes give zero area).

    >>> box_area(np.array([[0.0, 0.0, 2.0, 3.0]]))
    array([6.])
    """
    xyxy = box_convert(boxes, box_format, "xyxy")
    w = np.clip(xyxy[:, 2] - xyxy[:, 0], 0, None)
    h = np.clip(xyxy[:, 3] - xyxy[:, 1], 0, None)
    return w * h


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray, box_format: str = "xyxy") -> np.ndarray:
    """Pairwise IoU.

    Args:
        boxes1: ``float[N, 4+]``.
        boxes2: ``float[M, 4+]``.
        box_format: format of both inputs.

    Returns:
        ``float[N, M]`` IoU in ``[0, 1]``; ``0`` where the union is empty.

    >>> box_iou(np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[1.0, 0.0, 3.0, 2.0], [5.0, 5, 6, 6]]))
    array([[0.33333333, 0.        ]])
    """
    a = box_convert(boxes1, box_format, "xyxy")[:, None, :4]
    b = box_convert(boxes2, box_format, "xyxy")[None, :, :4]
    return _iou(a, b)


@overload
def elementwise_box_iou(boxes1: Tensor, boxes2: Tensor, box_format: str = "xyxy") -> Tensor: ...


@overload
def elementwise_box_iou(
    boxes1: np.ndarray, boxes2: np.ndarray, box_format: str = "xyxy"
) -> np.ndarray: ...


def elementwise_box_iou(boxes1: Any, boxes2: Any, box_format: str = "xyxy") -> Any:
    """IoU of ``boxes1[i]`` with ``boxes2[i]``.

    Args:
        boxes1: ``float[N, 4+]``, or ``Tensor[..., 4]``.
        boxes2: ``float[N, 4+]``, or ``Tensor[..., 4]`` of the same shape.
        box_format: format of both inputs.

    Returns:
        ``float[N]`` IoU in ``[0, 1]``; ``0`` where the union is empty. For tensors
        ``Tensor[...]``, the IoU of :func:`elementwise_box_overlap` with ``eps = 1e-7``.

    Raises:
        ValueError: if the two inputs hold different numbers of boxes.

    >>> elementwise_box_iou(np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[0.0, 0.0, 2.0, 1.0]]))
    array([0.5])
    """
    if _is_tensor(boxes1):
        if box_format != "xyxy":
            boxes1 = box_convert(boxes1, box_format, "xyxy")
            boxes2 = box_convert(boxes2, box_format, "xyxy")
        return elementwise_box_overlap(boxes1, boxes2, 1e-7)[2]
    a = box_convert(boxes1, box_format, "xyxy")
    b = box_convert(boxes2, box_format, "xyxy")
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"Expected the same number of boxes but got {a.shape[0]} and {b.shape[0]}")
    return _iou(a[:, :4], b[:, :4])


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    return np.clip(iou, 0.0, 1.0)


def interval_overlap(a1: Tensor, a2: Tensor, b1: Tensor, b2: Tensor) -> Tensor:
    """Length of the overlap of the intervals ``[a1, a2]`` and ``[b1, b2]`` (0 if apart).

    ``relu`` rather than ``clamp(min=0)``: the same values, and autograd keeps only the
    result, which the intersection's product keeps anyway; its gradient is 0 for edges that
    exactly touch, like torchvision's strict mask.

    >>> import torch
    >>> interval_overlap(*torch.tensor([[0.0], [2.0], [1.0], [5.0]]))
    tensor([1.])
    """
    import torch

    return torch.relu(torch.minimum(a2, b2) - torch.maximum(a1, b1))


def interval_hull(a1: Tensor, a2: Tensor, b1: Tensor, b2: Tensor) -> Tensor:
    """Length of the smallest interval holding ``[a1, a2]`` and ``[b1, b2]``: a side of the
    smallest box enclosing two boxes (GIoU's ``C``, DIoU's diagonal).

    >>> import torch
    >>> interval_hull(*torch.tensor([[0.0], [2.0], [1.0], [5.0]]))
    tensor([5.])
    """
    import torch

    return torch.maximum(a2, b2) - torch.minimum(a1, b1)


def _at_least(x: Tensor, eps: float) -> Tensor:
    """``max(x, eps)``; autograd keeps a boolean mask instead of ``x`` (``clamp`` keeps ``x``)."""
    import torch

    return torch.where(x > eps, x, eps)


def elementwise_box_overlap(
    boxes1: Tensor, boxes2: Tensor, eps: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Intersection, union and IoU of ``boxes1[i]`` with ``boxes2[i]``, autograd intact.

    The areas are ``(x2 - x1) (y2 - y1)`` as given, not clamped (a loss's gradient must see
    an inverted box); the IoU is ``inter / max(union, eps)``: ``max`` rather than ``union +
    eps``, so identical boxes give exactly 1, even tiny ones, and for ``union >> eps`` it
    agrees with torchvision's ``box_iou`` to ~eps / union.

    Args:
        boxes1: ``Tensor[..., 4]`` ``xyxy``.
        boxes2: ``Tensor[..., 4]`` ``xyxy``, the same shape.
        eps: lower bound of the union in the IoU's denominator.

    Returns:
        ``(inter, union, iou)``, each ``Tensor[...]``.

    >>> import torch
    >>> a, b = torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[1.0, 0.0, 3.0, 2.0]])
    >>> [t.tolist() for t in elementwise_box_overlap(a, b, 1e-7)]
    [[2.0], [6.0], [0.3333333432674408]]
    """
    x1, y1, x2, y2 = boxes1.unbind(-1)
    gx1, gy1, gx2, gy2 = boxes2.unbind(-1)
    inter = interval_overlap(x1, x2, gx1, gx2) * interval_overlap(y1, y2, gy1, gy2)
    return (inter, *union_and_iou(inter, (x2 - x1) * (y2 - y1), (gx2 - gx1) * (gy2 - gy1), eps))


def union_and_iou(inter: Tensor, area1: Tensor, area2: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """``(union, iou)`` of box pairs from their intersection and areas: the one IoU formula.

    ``union = area1 + area2 - inter`` and ``iou = inter / max(union, eps)``. A caller that
    already holds the boxes' widths and heights (the losses' geometry) passes its own
    ``w * h`` so that autograd sees one node per side length, as the losses always had.

    >>> import torch
    >>> union_and_iou(torch.tensor([2.0]), torch.tensor([4.0]), torch.tensor([4.0]), 1e-7)
    (tensor([6.]), tensor([0.3333]))
    """
    union = area1 + area2 - inter
    return union, inter / _at_least(union, eps)
