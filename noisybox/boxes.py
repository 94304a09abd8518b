"""Box formats, conversions and IoU on numpy arrays.

Every function takes ``(N, 4)`` (or ``(N, 4+)``, extra columns are left alone where a box is
returned) float arrays, accepts ``N = 0`` and names its box format. Inside noisybox boxes are
absolute pixel ``xyxy``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "BOX_FORMATS",
    "box_area",
    "box_convert",
    "box_iou",
    "check_box_format",
    "elementwise_box_iou",
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


def box_convert(boxes: np.ndarray, in_fmt: str, out_fmt: str) -> np.ndarray:
    """Convert boxes between ``xyxy``, ``xywh`` and ``cxcywh``.

    Args:
        boxes: ``float[N, 4+]`` boxes in ``in_fmt``; columns past the fourth are copied.
        in_fmt: format of ``boxes``.
        out_fmt: format of the result.

    Returns:
        ``float[N, 4+]`` a new array in ``out_fmt`` (same dtype; integers become float64).

    Raises:
        ValueError: for an unknown format or a wrong shape.

    >>> box_convert(np.array([[10.0, 20.0, 30.0, 60.0]]), "xyxy", "cxcywh")
    array([[20., 40., 20., 40.]])
    """
    check_box_format(in_fmt)
    check_box_format(out_fmt)
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


def elementwise_box_iou(
    boxes1: np.ndarray, boxes2: np.ndarray, box_format: str = "xyxy"
) -> np.ndarray:
    """IoU of ``boxes1[i]`` with ``boxes2[i]``.

    Args:
        boxes1: ``float[N, 4+]``.
        boxes2: ``float[N, 4+]``.
        box_format: format of both inputs.

    Returns:
        ``float[N]`` IoU in ``[0, 1]``; ``0`` where the union is empty.

    Raises:
        ValueError: if the two inputs hold different numbers of boxes.

    >>> elementwise_box_iou(np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[0.0, 0.0, 2.0, 1.0]]))
    array([0.5])
    """
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
