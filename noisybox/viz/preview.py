"""Preview grids: dataset images with the clean boxes and their noisy versions.

The pure parts (choosing images, noisy boxes on the fly, rasterising a tile) work on arrays;
:func:`plot_preview` lays tiles out with matplotlib (a bare ``Figure`` on the Agg canvas, so
it works in scripts, notebooks and tests without touching pyplot's global state).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from noisybox._deprecation import renamed_keywords
from noisybox.boxes import elementwise_box_iou
from noisybox.errors import NoisyboxError
from noisybox.formats.annotations import Annotations
from noisybox.viz.draw import CLEAN_STYLE, NOISY_STYLE, BoxStyle, draw_boxes
from noisybox.viz.images import load_image, resolve_image_root

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_NUM_IMAGES",
    "align_noisy_boxes",
    "class_name_map",
    "describe_noise",
    "noise_label",
    "perturb_annotations",
    "plot_preview",
    "preview_annotations",
    "render_tile",
    "save_figure",
    "select_images",
]

DEFAULT_NUM_IMAGES = 6
_DPI = 100


def align_noisy_boxes(clean: Annotations, noisy: Annotations) -> np.ndarray:
    """The boxes of ``noisy`` in the row order of ``clean``, matched by record id (see
    :func:`noisybox.stats.align_boxes`, which also checks that both sets describe the same
    images and records).

    Returns:
        ``float64[N, 4]`` with ``N = clean.num_boxes``.

    Raises:
        NoisyboxError: if the two sets do not describe the same images and records.
    """
    from noisybox.stats import align_boxes

    return align_boxes(clean, noisy)


@renamed_keywords(model="noise_model")
def perturb_annotations(
    ann: Annotations,
    *,
    eta: float = 0.2,
    eta_w: float | None = None,
    eta_h: float | None = None,
    noise_model: str = "uniform",
    boundary: str = "shift",
    ratio: float = 1.0,
    min_size: float = 1.0,
    seed: int = 0,
) -> Annotations:
    """Noisy annotations in memory, as ``noisybox corrupt --seed SEED`` would write them.

    :func:`noisybox.corrupt.corrupt_boxes` with ``on_invalid="skip"``: crowd boxes and
    invalid clean boxes (non-finite, empty, or outside the image) are left unchanged, like
    ``corrupt --on-invalid skip``; for a file without invalid boxes the result equals the
    boxes ``corrupt`` writes with the same parameters and seed (rounded by the format's
    writer, :func:`noisybox.formats.snap_boxes`).

    Args:
        ann: clean annotations.
        eta, eta_w, eta_h, noise_model, boundary, ratio, min_size: see
            :func:`noisybox.noise.perturb_boxes`.
        seed: seed of the ``numpy.random.Generator`` drawing all the noise.

    Returns:
        A copy of ``ann`` with noisy boxes.

    Raises:
        NoisyboxError: for a rate outside ``[0, 1)`` or another bad parameter.
    """
    from noisybox.corrupt import corrupt_boxes

    try:
        noisy = corrupt_boxes(
            ann,
            eta=eta,
            eta_w=eta_w,
            eta_h=eta_h,
            noise_model=noise_model,
            boundary=boundary,
            ratio=ratio,
            min_size=min_size,
            seed=seed,
            on_invalid="skip",
        )
    except ValueError as exc:  # a noise model returning a wrong shape
        raise NoisyboxError(str(exc)) from None
    return noisy.annotations


def select_images(
    ann: Annotations,
    *,
    num_images: int = DEFAULT_NUM_IMAGES,
    image_ids: Sequence[int | str] | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Image rows to show: the given ids, or a seeded random sample.

    Args:
        ann: the annotations.
        num_images: how many images to sample when ``image_ids`` is ``None``; images with
            boxes are preferred (at most all of them).
        image_ids: image ids (``ann.image_ids``) or file names / file stems, in the order
            to show them.
        seed: seed of the sample.

    Returns:
        ``int64[K]`` image rows; a sample is in ascending row order.

    Raises:
        NoisyboxError: for an unknown id, a non-positive ``num_images`` or no images.

    >>> ann = Annotations(np.array([4, 9, 2]), np.ones((3, 2)), ["a.png", "b.png", "c.png"],
    ...     np.array([0, 2]), np.ones((2, 4)), np.array([1, 1]), np.zeros(2, bool), [1, 2], {},
    ...     "coco", "x.json")
    >>> select_images(ann, image_ids=[2, "a"]).tolist()
    [2, 0]
    >>> select_images(ann, num_images=5).tolist()
    [0, 2]
    """
    if ann.num_images == 0:
        raise NoisyboxError(f"Expected at least one image in {ann.source} but got none")
    if image_ids is not None:
        by_id = {int(v): k for k, v in enumerate(ann.image_ids.tolist())}
        by_name: dict[str, int] = {}
        for k, name in enumerate(ann.file_names):
            by_name.setdefault(name, k)
            by_name.setdefault(Path(name).name, k)
            by_name.setdefault(Path(name).stem, k)
        rows = []
        for token in image_ids:
            text = str(token).strip()
            row: int | None = None
            if text.lstrip("-").isdigit() and int(text) in by_id:
                row = by_id[int(text)]
            elif text in by_name:
                row = by_name[text]
            if row is None:
                raise NoisyboxError(
                    f"Expected an image id or file name of {ann.source} but got {text!r}"
                )
            rows.append(row)
        return np.array(rows, dtype=np.int64)
    if int(num_images) < 1:
        raise NoisyboxError(f"Expected num_images >= 1 but got {num_images}")
    with_boxes = np.unique(np.asarray(ann.box_image_index, dtype=np.int64))
    pool = with_boxes if with_boxes.size else np.arange(ann.num_images)
    count = min(int(num_images), pool.size)
    chosen = np.random.default_rng(seed).choice(pool, size=count, replace=False)
    return np.sort(chosen).astype(np.int64)


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
    fontsize: float,
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


def plot_preview(
    clean: Annotations,
    noisy: Annotations | None = None,
    *,
    image_root: str | os.PathLike[str] | None = None,
    rows: Sequence[int] | np.ndarray | None = None,
    num_images: int = DEFAULT_NUM_IMAGES,
    sample_seed: int = 0,
    class_names: Sequence[str] | None = None,
    columns: int = 3,
    tile_size: int = 360,
    show_labels: bool = True,
    title: str | None = None,
) -> Figure:
    """A grid of dataset images with clean boxes (solid green) and noisy ones (dashed
    magenta), each noisy box tagged with its IoU to its clean version.

    Args:
        clean: clean annotations.
        noisy: noisy annotations with the record ids of ``clean`` (a file written by
            ``noisybox corrupt``, or :func:`perturb_annotations`); ``None`` draws clean
            boxes only.
        image_root: folder ``clean.file_names`` are relative to (default: see
            :func:`noisybox.viz.images.default_image_root`).
        rows: image rows to show (see :func:`select_images`); default a seeded sample of
            ``num_images``.
        num_images: images sampled when ``rows`` is ``None``.
        sample_seed: seed of that sample.
        class_names: names overriding the annotations' (see :func:`class_name_map`).
        columns: tiles per row.
        tile_size: longest image side in the figure, in pixels at 100 dpi.
        show_labels: tag boxes with class names and IoU.
        title: figure title (default: the file names).

    Returns:
        A matplotlib ``Figure`` (100 dpi); save it with :func:`save_figure`. Each tile's
        axes map image pixels ``* scale`` (``scale = tile_size / max(W, H)``, stored as
        ``ax.noisybox_scale``) to data coordinates, so ``ax.transData`` locates a box.

    Raises:
        NoisyboxError: for a missing images folder, a missing, unreadable or wrongly sized
            image, a record id of ``clean`` missing from ``noisy``, or bad class names.
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    root = resolve_image_root(clean, image_root)
    names = class_name_map(clean, class_names)
    noisy_boxes = align_noisy_boxes(clean, noisy) if noisy is not None else None
    chosen = (
        select_images(clean, num_images=num_images, seed=sample_seed)
        if rows is None
        else np.asarray(rows, dtype=np.int64).reshape(-1)
    )
    images = [load_image(clean, int(r), root) for r in chosen.tolist()]

    n = len(images)
    ncols = max(1, min(int(columns), n))
    nrows = math.ceil(n / ncols)
    tile_in = tile_size / _DPI
    # each grid row is as tall as its tallest tile (landscape images leave no gaps)
    aspect = [img.shape[0] / max(img.shape[:2]) for img in images]
    row_in = [tile_in * max(aspect[r * ncols : (r + 1) * ncols]) for r in range(nrows)]
    fig = Figure(
        figsize=(ncols * tile_in + 0.2, sum(row_in) + 0.35 * nrows + 0.9),
        dpi=_DPI,
        layout="constrained",
    )
    axes = fig.subplots(nrows, ncols, squeeze=False, gridspec_kw={"height_ratios": row_in})
    crowd = np.asarray(clean.iscrowd, dtype=bool)
    box_rows = np.asarray(clean.box_image_index, dtype=np.int64)
    fontsize = 7.5
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k >= n:
            continue
        row = int(chosen[k])
        image = images[k]
        h, w = image.shape[:2]
        scale = tile_size / max(h, w)
        sel = np.flatnonzero(box_rows == row)
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
            continue
        for b, cat, is_crowd in zip(
            cboxes.tolist(), clean.categories[sel].tolist(), crowd[sel].tolist(), strict=True
        ):
            text = names.get(int(cat), str(cat)) + (" (crowd)" if is_crowd else "")
            _label(
                ax,
                b[0] * scale,
                b[1] * scale,
                text,
                CLEAN_STYLE,
                above=True,
                tile_h=tile.shape[0],
                fontsize=fontsize,
            )
        if nboxes is not None:
            for b, iou in zip(nboxes.tolist(), ious.tolist(), strict=True):
                _label(
                    ax,
                    b[0] * scale,
                    b[3] * scale,
                    f"IoU {iou:.2f}",
                    NOISY_STYLE,
                    above=False,
                    tile_h=tile.shape[0],
                    fontsize=fontsize,
                )
    handles = [Line2D([], [], color=_rgb(CLEAN_STYLE), lw=2, label="clean")]
    if noisy is not None:
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
    fig.suptitle(title if title is not None else Path(clean.source).name, fontsize=9)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike[str], *, dpi: float | None = None) -> Path:
    """Write ``fig`` as a PNG atomically (temporary file in the same folder, then rename).

    The figure is saved at its own size (no tight cropping), so figure pixel coordinates
    are PNG pixel coordinates (with ``y`` flipped).

    Returns:
        The path written.
    """
    from noisybox._fileio import save_figure as _save

    _save(fig, path, format="png", dpi=dpi if dpi is not None else fig.dpi)
    return Path(path)


def describe_noise(params: dict[str, Any]) -> str:
    """One line naming noise parameters (keys of ``corrupt``'s provenance; missing ones take
    ``corrupt``'s defaults).

    >>> describe_noise({"eta": 0.2, "eta_w": 0.2, "eta_h": 0.1, "seed": 3})
    'model=uniform eta_w=0.2 eta_h=0.1 boundary=shift seed=3'
    """
    eta = params.get("eta", 0.2)
    eta = 0.2 if eta is None else float(eta)
    ew = float(params["eta_w"]) if params.get("eta_w") is not None else eta
    eh = float(params["eta_h"]) if params.get("eta_h") is not None else eta
    parts = [f"model={params.get('noise_model', params.get('model', 'uniform'))}"]
    parts.append(f"eta={ew:g}" if ew == eh else f"eta_w={ew:g} eta_h={eh:g}")
    parts.append(f"boundary={params.get('boundary', 'shift')}")
    if params.get("ratio", 1.0) != 1.0:
        parts.append(f"ratio={params['ratio']:g}")
    parts.append(f"seed={params.get('seed', 0)}")
    return " ".join(parts)


@renamed_keywords(model="noise_model")
def preview_annotations(
    clean_path: str | os.PathLike[str],
    noisy_path: str | os.PathLike[str] | None = None,
    *,
    images: str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    eta: float | None = None,
    eta_w: float | None = None,
    eta_h: float | None = None,
    noise_model: str = "uniform",
    boundary: str = "shift",
    ratio: float = 1.0,
    seed: int = 0,
    num_images: int = DEFAULT_NUM_IMAGES,
    image_ids: Sequence[int | str] | None = None,
    sample_seed: int = 0,
    class_names: Sequence[str] | None = None,
    format: str | None = None,
    columns: int = 3,
    tile_size: int = 360,
    show_labels: bool = True,
) -> Figure:
    """Read annotation files and draw a preview grid (what ``noisybox preview`` does).

    With ``noisy_path`` the noisy boxes come from that file; without it and with ``eta``
    (or ``eta_w``/``eta_h``) they are drawn on the fly with :func:`perturb_annotations`
    and the noise parameters, seed included, go into the title; with neither only the
    clean boxes are drawn.

    Args:
        clean_path: COCO json, VOC year folder or YOLO dataset folder.
        noisy_path: a noisy copy of it.
        images: the images folder (default: next to the annotations, see
            :func:`noisybox.viz.images.default_image_root`).
        output: PNG to write (atomically); ``None`` writes nothing.
        eta, eta_w, eta_h, noise_model, boundary, ratio, seed: on-the-fly noise.
        num_images, image_ids, sample_seed: which images (see :func:`select_images`).
        class_names: names overriding the annotations' (see :func:`class_name_map`).
        format: format of both files (detected by default).
        columns, tile_size, show_labels: layout (see :func:`plot_preview`).

    Returns:
        The matplotlib ``Figure``.

    Raises:
        NoisyboxError: for bad input files, images or parameters, or both ``noisy_path``
            and a noise rate.

    Example:
        >>> import tempfile
        >>> from noisybox.data import make_shapes_dataset
        >>> ds = make_shapes_dataset(tempfile.mkdtemp(), num_train=1, num_val=2, image_size=64)
        >>> fig = preview_annotations(ds.val_annotations, eta=0.2, num_images=2)
        >>> len(fig.axes), fig.get_suptitle().splitlines()[1]
        (2, 'on-the-fly noise: model=uniform eta=0.2 boundary=shift seed=0')
    """
    from noisybox.formats import read_annotations

    on_the_fly = eta is not None or eta_w is not None or eta_h is not None
    if noisy_path is not None and on_the_fly:
        raise NoisyboxError(
            f"Expected either a NOISY file or --eta but got both ({noisy_path} and a noise rate)"
        )
    kwargs: dict[str, Any] = {}
    fmt = format
    if images is not None:
        if fmt is None:
            from noisybox.formats import detect_format

            fmt = detect_format(clean_path)
        if fmt == "yolo":
            kwargs["image_root"] = images
    clean = read_annotations(clean_path, fmt, **kwargs)
    title = Path(clean_path).name
    noisy: Annotations | None = None
    if noisy_path is not None:
        noisy = read_annotations(noisy_path, fmt or clean.format, **kwargs)
        title += f"  vs  {Path(noisy_path).name}"
        label = noise_label(noisy)
        if label:
            title += f"\n{label}"
    elif on_the_fly:
        params: dict[str, Any] = {
            "eta": 0.2 if eta is None else eta,
            "eta_w": eta_w,
            "eta_h": eta_h,
            "noise_model": noise_model,
            "boundary": boundary,
            "ratio": ratio,
            "seed": seed,
        }
        noisy = perturb_annotations(clean, **params)
        title += f"\non-the-fly noise: {describe_noise(params)}"
    rows = (
        select_images(clean, image_ids=image_ids)
        if image_ids is not None
        else select_images(clean, num_images=num_images, seed=sample_seed)
    )
    fig = plot_preview(
        clean,
        noisy,
        image_root=images,
        rows=rows,
        class_names=class_names,
        columns=columns,
        tile_size=tile_size,
        show_labels=show_labels,
        title=title,
    )
    if output is not None:
        save_figure(fig, output)
    return fig


def noise_label(ann: Annotations) -> str:
    """A short description of the noise a ``noisybox corrupt`` output was written with
    (from its provenance: COCO ``info["noisybox"]`` or the folder's manifest), or ``""``.
    """
    from noisybox.formats import MANIFEST_NAME

    prov: Any = None
    doc = ann.document
    data = getattr(doc, "data", None)
    if isinstance(data, dict) and isinstance(data.get("info"), dict):
        prov = data["info"].get("noisybox")
    if prov is None:
        source = Path(ann.source)
        for folder in (source, *source.parents[:2]):
            manifest = folder / MANIFEST_NAME
            if manifest.is_file():
                import json

                try:
                    prov = json.loads(manifest.read_text())
                except (OSError, ValueError):
                    prov = None
                break
    if not isinstance(prov, dict) or "eta_w" not in prov:
        return ""
    try:
        return describe_noise(prov)
    except (TypeError, ValueError):
        return ""
