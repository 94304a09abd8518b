"""Rasterise box outlines onto numpy images: the pure part of the preview grids.

Boxes use pixel-edge coordinates (a box covering pixel columns ``3..9`` has ``x1 = 3,
x2 = 10``), the convention of the annotation formats and of the embedded shapes dataset. An
outline of thickness ``t`` covers the ``t`` outermost pixel rows and columns *inside* the
box, so a box never paints pixels it does not cover, and the parts of an outline that fall
outside the image are simply not drawn. A style's optional halo (a one-pixel dark border on
both sides of every stroke) keeps outlines visible on backgrounds of their own colour.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from noisybox.boxes import box_convert

__all__ = [
    "CLEAN_STYLE",
    "DROPPED_STYLE",
    "EXTRA_STYLE",
    "NOISY_STYLE",
    "RELOCATED_STYLE",
    "BoxStyle",
    "draw_boxes",
    "outline_mask",
]


@dataclasses.dataclass(frozen=True)
class BoxStyle:
    """How a set of boxes is drawn.

    Attributes:
        color: RGB ``uint8`` triple.
        thickness: outline width in pixels (inside the box).
        dash: ``(on, off)`` lengths in pixels along each edge, or ``None`` for a solid line.
        name: the legend text.
        halo: RGB of a one-pixel border around every stroke (contrast on busy or
            same-coloured backgrounds), or ``None``.
    """

    color: tuple[int, int, int]
    thickness: int = 2
    dash: tuple[int, int] | None = None
    name: str = ""
    halo: tuple[int, int, int] | None = None


#: Clean boxes: solid green.
CLEAN_STYLE = BoxStyle(
    color=(0, 220, 0), thickness=2, dash=None, name="clean (solid green)", halo=(0, 0, 0)
)
#: Noisy boxes: dashed magenta.
NOISY_STYLE = BoxStyle(
    color=(255, 0, 255), thickness=2, dash=(6, 4), name="noisy (dashed magenta)", halo=(0, 0, 0)
)
#: Clean boxes the noisy set dropped (annotation-level noise): dotted red.
DROPPED_STYLE = BoxStyle(
    color=(255, 40, 40), thickness=2, dash=(2, 3), name="dropped (dotted red)", halo=(0, 0, 0)
)
#: Noisy boxes with no clean record (extra, bogus boxes): dashed orange.
EXTRA_STYLE = BoxStyle(
    color=(255, 170, 0), thickness=2, dash=(8, 3), name="extra (dashed orange)", halo=(0, 0, 0)
)
#: Relocated boxes (a new box around the clean one, ``corrupt --relocate``): dashed cyan,
#: with an arrow from the clean box's centre in the previews.
RELOCATED_STYLE = BoxStyle(
    color=(0, 200, 255), thickness=2, dash=(3, 2), name="relocated (dashed cyan)", halo=(0, 0, 0)
)


def _pixel_edges(boxes: np.ndarray) -> np.ndarray:
    """``int64[N, 4]`` first/last-plus-one pixel index of every box (half-up rounding)."""
    return np.floor(boxes[:, :4] + 0.5).astype(np.int64)


def outline_mask(
    boxes: np.ndarray,
    image_size: tuple[int, int],
    *,
    thickness: int = 2,
    dash: tuple[int, int] | None = None,
    box_format: str = "xyxy",
) -> np.ndarray:
    """Pixels covered by the outlines of ``boxes``.

    Args:
        boxes: ``float[N, 4+]`` absolute pixel boxes in ``box_format``.
        image_size: ``(width, height)`` of the image.
        thickness: outline width in pixels, drawn inside each box (``>= 1``).
        dash: ``(on, off)`` dash pattern in pixels along each edge, starting at the box's
            top-left corner; ``None`` draws solid outlines.
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
        ``bool[H, W]``.

    Raises:
        ValueError: for a thickness below 1, a dash with a non-positive part, or bad boxes.

    >>> outline_mask(np.array([[1.0, 1.0, 4.0, 4.0]]), (5, 5), thickness=1).astype(int)
    array([[0, 0, 0, 0, 0],
           [0, 1, 1, 1, 0],
           [0, 1, 0, 1, 0],
           [0, 1, 1, 1, 0],
           [0, 0, 0, 0, 0]])
    """
    if int(thickness) < 1:
        raise ValueError(f"Expected thickness >= 1 but got {thickness}")
    if dash is not None and (len(dash) != 2 or min(dash) < 1):
        raise ValueError(f"Expected dash (on, off) with both parts >= 1 but got {dash}")
    width, height = int(image_size[0]), int(image_size[1])
    mask = np.zeros((height, width), dtype=bool)
    xyxy = box_convert(np.asarray(boxes, dtype=np.float64).reshape(-1, 4), box_format, "xyxy")
    finite = np.all(np.isfinite(xyxy[:, :4]), axis=1)
    t = int(thickness)
    for x1, y1, x2, y2 in _pixel_edges(xyxy[finite]).tolist():
        if x2 <= x1 or y2 <= y1:
            continue
        cols = np.arange(x1, x2)
        rows = np.arange(y1, y2)
        if dash is not None:
            period = dash[0] + dash[1]
            on_cols = (cols - x1) % period < dash[0]
            on_rows = (rows - y1) % period < dash[0]
        else:
            on_cols = np.ones(cols.size, dtype=bool)
            on_rows = np.ones(rows.size, dtype=bool)
        edge_cols = (cols < x1 + t) | (cols >= x2 - t)
        edge_rows = (rows < y1 + t) | (rows >= y2 - t)
        # Horizontal edges: the top/bottom t rows, dashed along x; vertical edges likewise.
        stroke = (edge_rows[:, None] & on_cols[None, :]) | (edge_cols[None, :] & on_rows[:, None])
        r_in = (rows >= 0) & (rows < height)
        c_in = (cols >= 0) & (cols < width)
        if r_in.any() and c_in.any():
            sub = stroke[np.ix_(r_in, c_in)]
            mask[rows[r_in][0] : rows[r_in][-1] + 1, cols[c_in][0] : cols[c_in][-1] + 1] |= sub
    return mask


def draw_boxes(
    image: np.ndarray,
    boxes: np.ndarray,
    style: BoxStyle = CLEAN_STYLE,
    *,
    box_format: str = "xyxy",
) -> np.ndarray:
    """Draw box outlines onto a copy of ``image``.

    Args:
        image: ``uint8[H, W, 3]`` RGB (or ``uint8[H, W]`` grey, converted to RGB).
        boxes: ``float[N, 4+]`` absolute pixel boxes in ``box_format``; ``N = 0`` is fine.
        style: colour, thickness and dash pattern.
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.

    Returns:
        ``uint8[H, W, 3]`` a new image; ``image`` is not modified.

    Raises:
        ValueError: for an image that is not ``[H, W]`` or ``[H, W, 3]``, or bad boxes.

    >>> img = draw_boxes(np.zeros((4, 6, 3), np.uint8), np.array([[0.0, 0, 6, 4]]),
    ...                  BoxStyle((255, 0, 0), thickness=1))
    >>> img[..., 0].tolist()
    [[255, 255, 255, 255, 255, 255], [255, 0, 0, 0, 0, 255], [255, 0, 0, 0, 0, 255], [255, 255, 255, 255, 255, 255]]
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"Expected an image of shape (H, W, 3) but got {np.asarray(image).shape}")
    out = np.array(arr, dtype=np.uint8, copy=True)
    mask = outline_mask(
        boxes,
        (out.shape[1], out.shape[0]),
        thickness=style.thickness,
        dash=style.dash,
        box_format=box_format,
    )
    if style.halo is not None:
        out[_dilate(mask) & ~mask] = np.asarray(style.halo, dtype=np.uint8)
    out[mask] = np.asarray(style.color, dtype=np.uint8)
    return out


def _dilate(mask: np.ndarray) -> np.ndarray:
    """``mask`` grown by one pixel in the 8 directions."""
    grown = mask.copy()
    grown[1:, :] |= mask[:-1, :]
    grown[:-1, :] |= mask[1:, :]
    tall = grown.copy()
    grown[:, 1:] |= tall[:, :-1]
    grown[:, :-1] |= tall[:, 1:]
    return grown
