"""One tile of a preview grid: an image with its clean and noisy boxes, tags and legend.

:func:`render_tile` rasterises the boxes onto the pixels (pure numpy); :func:`draw_tile`
puts a tile on matplotlib axes with its title and the class and IoU tags (and, for a noisy
set with annotation-level noise, the dropped, extra and relocated boxes and the new
classes);
:func:`noisybox.viz.plot_preview` lays the tiles out.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from noisybox.boxes import box_convert, elementwise_box_iou
from noisybox.formats.annotations import Annotations, category_ids, names_by_category
from noisybox.viz.draw import (
    CLEAN_STYLE,
    DROPPED_STYLE,
    EXTRA_STYLE,
    NOISY_STYLE,
    RELOCATED_STYLE,
    BoxStyle,
    draw_boxes,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["add_legend", "class_name_map", "draw_tile", "render_tile"]

_FONTSIZE = 7.5


def class_name_map(ann: Annotations, class_names: Sequence[str] | None = None) -> dict[int, str]:
    """Category id -> display name.

    Args:
        ann: the annotations (their own names are the default).
        class_names: names overriding them, by the format's rule
            (:func:`noisybox.formats.annotations.names_by_category`: for YOLO name ``k``
            is class ``k``; for COCO and VOC the names follow the sorted category ids).

    Returns:
        A dict holding every category id of ``ann``.

    Raises:
        NoisyboxError: if there are fewer names than categories.

    >>> ann = Annotations(np.array([1]), np.ones((1, 2)), ["a"], np.array([0, 0]),
    ...     np.ones((2, 4)), np.array([3, 7]), np.zeros(2, bool), [1, 2], {3: "cat"}, "coco", "x")
    >>> class_name_map(ann), class_name_map(ann, ["dog", "bus"])
    ({3: 'cat', 7: '7'}, {3: 'dog', 7: 'bus'})
    """
    if class_names is None:
        return {c: str(ann.category_names.get(c, c)) for c in category_ids(ann)}
    return names_by_category(ann, class_names)


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
    matched: np.ndarray | None = None,
    noisy_categories: np.ndarray | None = None,
    extra: tuple[np.ndarray, np.ndarray] | None = None,
    relocated: np.ndarray | None = None,
) -> None:
    """Draw image ``row`` of ``clean`` on ``ax``: its boxes, a title with the mean IoU and tags.

    Its length is the docstring and the layers (clean, noisy, dropped, extra, relocated).

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
        matched: ``bool[N]`` the clean records the noisy set kept (``None``: all); the
            others are drawn dotted red and tagged "(dropped)".
        noisy_categories: ``int[N]`` each clean record's class in the noisy set (``None``:
            the clean ones); a changed class is named in the noisy box's tag.
        extra: ``(float[M, 4] boxes, int[M] categories)``, the noisy boxes of this image
            without a clean record, drawn dashed orange.
        relocated: ``bool[N]`` the clean records given a new box (``corrupt
            --relocate``; ``None``: none): their noisy box is drawn dashed cyan with an
            arrow from the clean box's centre, tagged "relocated", and left out of the
            title's mean IoU (as out of the figures of ``noisybox iou``).
    """
    crowd = np.asarray(clean.iscrowd, dtype=bool)
    kept = np.ones(clean.num_boxes, dtype=bool) if matched is None else np.asarray(matched, bool)
    away = np.zeros(clean.num_boxes, bool) if relocated is None else np.asarray(relocated, bool)
    h, w = image.shape[:2]
    scale = tile_size / max(h, w)
    sel = np.flatnonzero(np.asarray(clean.box_image_index, dtype=np.int64) == row)
    moved = sel[~crowd[sel] & kept[sel] & ~away[sel]]
    shifted = sel[~crowd[sel] & kept[sel] & away[sel]] if noisy_boxes is not None else sel[:0]
    gone = sel[~kept[sel]]
    nboxes = noisy_boxes[moved] if noisy_boxes is not None else None
    tile = render_tile(image, clean.boxes[sel[kept[sel]]], nboxes, scale=scale)
    if gone.size:
        tile = draw_boxes(tile, clean.boxes[gone] * scale, DROPPED_STYLE)
    extra_boxes = np.zeros((0, 4)) if extra is None else np.asarray(extra[0], float).reshape(-1, 4)
    if len(extra_boxes):
        tile = draw_boxes(tile, extra_boxes * scale, EXTRA_STYLE)
    if shifted.size and noisy_boxes is not None:
        tile = draw_boxes(tile, noisy_boxes[shifted] * scale, RELOCATED_STYLE)
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
    if shifted.size and noisy_boxes is not None:
        _arrows(ax, clean.boxes[shifted] * scale, noisy_boxes[shifted] * scale)
    if not show_labels:
        return
    tile_h = tile.shape[0]
    _tag_clean(ax, clean, sel, kept[sel], names, scale=scale, tile_h=tile_h)
    if nboxes is not None:
        new = clean.categories if noisy_categories is None else np.asarray(noisy_categories)
        tags = [
            f"IoU {iou:.2f}" + ("" if old == cat else f", as {names.get(int(cat), str(cat))}")
            for iou, old, cat in zip(
                ious.tolist(), clean.categories[moved].tolist(), new[moved].tolist(), strict=True
            )
        ]
        _tag_below(ax, nboxes * scale, tags, NOISY_STYLE, tile_h=tile_h)
    if extra is not None and len(extra_boxes):
        tags = [f"extra {names.get(int(c), str(c))}" for c in np.asarray(extra[1]).tolist()]
        _tag_below(ax, extra_boxes * scale, tags, EXTRA_STYLE, tile_h=tile_h)
    if shifted.size and noisy_boxes is not None:
        new = clean.categories if noisy_categories is None else np.asarray(noisy_categories)
        ious = elementwise_box_iou(clean.boxes[shifted], noisy_boxes[shifted])
        tags = [
            f"relocated, IoU {iou:.2f}"
            + ("" if old == cat else f", as {names.get(int(cat), str(cat))}")
            for iou, old, cat in zip(
                ious.tolist(),
                clean.categories[shifted].tolist(),
                new[shifted].tolist(),
                strict=True,
            )
        ]
        _tag_below(ax, noisy_boxes[shifted] * scale, tags, RELOCATED_STYLE, tile_h=tile_h)


def _arrows(ax: Axes, start: np.ndarray, end: np.ndarray) -> None:
    """An arrow from the centre of each ``start`` box to that of its ``end`` box (tile
    pixels, ``xyxy``): where a relocated box came from."""
    from matplotlib.patches import FancyArrowPatch

    a = box_convert(start[:, :4], "xyxy", "cxcywh")[:, :2]
    b = box_convert(end[:, :4], "xyxy", "cxcywh")[:, :2]
    for (x0, y0), (x1, y1) in zip(a.tolist(), b.tolist(), strict=True):
        ax.add_patch(
            FancyArrowPatch(
                (x0, y0),
                (x1, y1),
                arrowstyle="-|>",
                mutation_scale=9,
                color=_rgb(RELOCATED_STYLE),
                lw=1.2,
                shrinkA=0,
                shrinkB=0,
                clip_on=True,
            )
        )


def _tag_clean(
    ax: Axes,
    clean: Annotations,
    sel: np.ndarray,
    kept: np.ndarray,
    names: dict[int, str],
    *,
    scale: float,
    tile_h: float,
) -> None:
    """The class tags of the clean boxes ``sel``, above them; the dropped ones (``kept``
    false) in the dropped style."""
    crowd = np.asarray(clean.iscrowd, dtype=bool)[sel]
    for b, cat, is_crowd, keep in zip(
        clean.boxes[sel].tolist(),
        clean.categories[sel].tolist(),
        crowd.tolist(),
        kept.tolist(),
        strict=True,
    ):
        text = names.get(int(cat), str(cat)) + (" (crowd)" if is_crowd else "")
        if not keep:
            text += " (dropped)"
        style = CLEAN_STYLE if keep else DROPPED_STYLE
        _label(ax, b[0] * scale, b[1] * scale, text, style, above=True, tile_h=tile_h)


def _tag_below(
    ax: Axes, boxes: np.ndarray, tags: list[str], style: BoxStyle, *, tile_h: float
) -> None:
    """One tag per box (tile pixels), below its lower-left corner."""
    for b, text in zip(boxes.tolist(), tags, strict=True):
        _label(ax, b[0], b[3], text, style, above=False, tile_h=tile_h)


def add_legend(
    fig: Figure,
    *,
    noisy: bool,
    dropped: bool = False,
    extra: bool = False,
    relocated: bool = False,
) -> None:
    """The legend below the grid: the clean style, the noisy one when there are noisy boxes,
    and the dropped, extra and relocated ones when the noisy set dropped, added or
    relocated records."""
    from matplotlib.lines import Line2D

    entries = [
        (True, CLEAN_STYLE, "-", "clean"),
        (noisy, NOISY_STYLE, (0, (3, 2)), "noisy (tag: IoU to clean)"),
        (dropped, DROPPED_STYLE, (0, (1, 2)), "dropped"),
        (extra, EXTRA_STYLE, (0, (4, 1)), "extra"),
        (relocated, RELOCATED_STYLE, (0, (1.5, 1)), "relocated (arrow from clean box)"),
    ]
    handles = [
        Line2D([], [], color=_rgb(style), lw=2, ls=ls, label=label)
        for shown, style, ls, label in entries
        if shown
    ]
    fig.legend(
        handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False
    )
