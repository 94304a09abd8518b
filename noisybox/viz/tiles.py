"""One tile of a preview grid: an image with its clean and noisy boxes, tags and legend.

:func:`render_tile` rasterises the boxes onto the pixels (pure numpy); :func:`draw_tile`
puts a tile on matplotlib axes with its title and the class and IoU tags;
:func:`noisybox.viz.plot_preview` lays the tiles out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from noisybox.boxes import elementwise_box_iou
from noisybox.errors import NoisyboxError
from noisybox.formats.annotations import Annotations
from noisybox.viz.draw import CLEAN_STYLE, NOISY_STYLE, BoxStyle, draw_boxes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["add_legend", "class_name_map", "draw_tile", "render_tile"]

_FONTSIZE = 7.5


def class_name_map(ann: Annotations, class_names: Sequence[str] | None = None) -> dict[int, str]:
    """Category id -> display name.

    Args:
        ann: the annotations (their own names are the default).
        class_names: names overriding them. For YOLO name ``k`` is class ``k``; for COCO
            and VOC the names follow the sorted category ids (the order of the detectors'
            labels ``1..K``).

    Returns:
        A dict holding every category id of ``ann``.

    Raises:
        NoisyboxError: if there are fewer names than categories.

    >>> ann = Annotations(np.array([1]), np.ones((1, 2)), ["a"], np.array([0, 0]),
    ...     np.ones((2, 4)), np.array([3, 7]), np.zeros(2, bool), [1, 2], {3: "cat"}, "coco", "x")
    >>> class_name_map(ann), class_name_map(ann, ["dog", "bus"])
    ({3: 'cat', 7: '7'}, {3: 'dog', 7: 'bus'})
    """
    ids = sorted({int(c) for c in ann.categories.tolist()} | {int(c) for c in ann.category_names})
    if class_names is None:
        return {c: str(ann.category_names.get(c, c)) for c in ids}
    names = [str(n) for n in class_names]
    if ann.format == "yolo":
        needed = max(ids) + 1 if ids else 0
        if len(names) < needed:
            raise NoisyboxError(
                f"Expected at least {needed} class names (YOLO classes 0..{needed - 1} in "
                f"{ann.source}) but got {len(names)}"
            )
        return {c: names[c] for c in ids}
    if len(names) < len(ids):
        raise NoisyboxError(
            f"Expected {len(ids)} class names (one per category id {ids} of {ann.source}) "
            f"but got {len(names)}"
        )
    return dict(zip(ids, names[: len(ids)], strict=True))


def render_tile(
    image: np.ndarray,
    clean_boxes: np.ndarray,
    noisy_boxes: np.ndarray | None = None,
    *,
    scale: float = 1.0,
    clean_style: BoxStyle = CLEAN_STYLE,
    noisy_style: BoxStyle = NOISY_STYLE,
) -> np.ndarray:
    """Resize an image and draw clean (below) and noisy (on top) boxes onto it.

    Resizing first keeps outlines the same width in every tile whatever the image size.

    Args:
        image: ``uint8[H, W, 3]``.
        clean_boxes: ``float[N, 4]`` absolute ``xyxy`` in the original image's pixels.
        noisy_boxes: ``float[M, 4]`` or ``None``.
        scale: resize factor (nearest neighbour when enlarging, so pixel-exact boxes stay
            visibly exact; area-averaging when shrinking).
        clean_style: style of ``clean_boxes``.
        noisy_style: style of ``noisy_boxes``.

    Returns:
        ``uint8[round(H * scale), round(W * scale), 3]``.

    >>> tile = render_tile(np.zeros((10, 10, 3), np.uint8), np.array([[0.0, 0, 5, 5]]), scale=2.0)
    >>> tile.shape, tile[0, 0].tolist(), tile[5, 5].tolist()
    ((20, 20, 3), [0, 220, 0], [0, 0, 0])
    """
    img = np.asarray(image, dtype=np.uint8)
    if scale != 1.0:
        from PIL import Image

        h, w = img.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.BOX
        img = np.asarray(Image.fromarray(img).resize(size, resample))
    out = draw_boxes(
        img, np.asarray(clean_boxes, dtype=np.float64).reshape(-1, 4) * scale, clean_style
    )
    if noisy_boxes is not None:
        noisy = np.asarray(noisy_boxes, dtype=np.float64).reshape(-1, 4) * scale
        out = draw_boxes(out, noisy, noisy_style)
    return out


def _rgb(style: BoxStyle) -> tuple[float, float, float]:
    r, g, b = style.color
    return r / 255, g / 255, b / 255


def _label(
    ax: Axes,
    x: float,
    y: float,
    text: str,
    style: BoxStyle,
    *,
    above: bool,
    tile_h: float,
    fontsize: float = _FONTSIZE,
) -> None:
    """Put ``text`` on a coloured tag just outside a box edge (inside if at the border)."""
    line_px = fontsize * 1.5
    if above and y - line_px < 0:
        above = False
        y = y + style.thickness
    elif not above and y + line_px > tile_h:
        above = True
        y = y - style.thickness
    r, g, b = _rgb(style)
    dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.6
    ax.text(
        x,
        y,
        text,
        fontsize=fontsize,
        color="white" if dark else "black",
        va="bottom" if above else "top",
        ha="left",
        clip_on=True,
        bbox={
            "boxstyle": "square,pad=0.12",
            "facecolor": (r, g, b),
            "edgecolor": "none",
            "alpha": 0.85,
        },
    )


def draw_tile(
    ax: Axes,
    clean: Annotations,
    row: int,
    image: np.ndarray,
    noisy_boxes: np.ndarray | None,
    names: dict[int, str],
    *,
    tile_size: int,
    show_labels: bool,
) -> None:
    """Draw image ``row`` of ``clean`` on ``ax``: its boxes, a title with the mean IoU and tags.

    Args:
        ax: the tile's axes.
        clean: clean annotations.
        row: the image row.
        image: its pixels, ``uint8[H, W, 3]``.
        noisy_boxes: ``float[N, 4]`` every clean box's noisy version (row order of
            ``clean``), or ``None``.
        names: category id -> display name (:func:`class_name_map`).
        tile_size: longest image side in the figure, in pixels at 100 dpi.
        show_labels: tag boxes with class names and IoU.
    """
    crowd = np.asarray(clean.iscrowd, dtype=bool)
    h, w = image.shape[:2]
    scale = tile_size / max(h, w)
    sel = np.flatnonzero(np.asarray(clean.box_image_index, dtype=np.int64) == row)
    cboxes = clean.boxes[sel]
    moved = sel[~crowd[sel]]
    nboxes = noisy_boxes[moved] if noisy_boxes is not None else None
    tile = render_tile(image, cboxes, nboxes, scale=scale)
    ax.imshow(tile, interpolation="nearest", extent=(0, tile.shape[1], tile.shape[0], 0))
    ax.set_xlim(0, tile.shape[1])
    ax.set_ylim(tile.shape[0], 0)
    ax.noisybox_scale = scale  # type: ignore[attr-defined]
    head = f"{Path(clean.file_names[row]).name} (id {int(clean.image_ids[row])})"
    ious = np.zeros(0)
    if nboxes is not None:
        ious = elementwise_box_iou(clean.boxes[moved], nboxes)
        if ious.size:
            head += f"  mean IoU {ious.mean():.2f}"
    ax.set_title(head, fontsize=8)
    if not show_labels:
        return
    tile_h = tile.shape[0]
    for b, cat, is_crowd in zip(
        cboxes.tolist(), clean.categories[sel].tolist(), crowd[sel].tolist(), strict=True
    ):
        text = names.get(int(cat), str(cat)) + (" (crowd)" if is_crowd else "")
        _label(ax, b[0] * scale, b[1] * scale, text, CLEAN_STYLE, above=True, tile_h=tile_h)
    if nboxes is not None:
        for b, iou in zip(nboxes.tolist(), ious.tolist(), strict=True):
            _label(
                ax,
                b[0] * scale,
                b[3] * scale,
                f"IoU {iou:.2f}",
                NOISY_STYLE,
                above=False,
                tile_h=tile_h,
            )


def add_legend(fig: Figure, *, noisy: bool) -> None:
    """The legend below the grid: the clean style, and the noisy one when there are noisy boxes."""
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=_rgb(CLEAN_STYLE), lw=2, label="clean")]
    if noisy:
        handles.append(
            Line2D(
                [],
                [],
                color=_rgb(NOISY_STYLE),
                lw=2,
                ls=(0, (3, 2)),
                label="noisy (tag: IoU to clean)",
            )
        )
    fig.legend(
        handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False
    )
