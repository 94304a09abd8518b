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
from noisybox._fileio import save_figure as _save_figure
from noisybox._limits import MAX_FIGURE_PIXELS, MAX_TILE_SIZE, check_limit
from noisybox.corrupt import perturb_annotations
from noisybox.errors import NoisyboxError
from noisybox.formats import detect_format, read_annotations, read_provenance
from noisybox.formats.annotations import Annotations
from noisybox.formats.edits import dropped_records, relocated_records
from noisybox.formats.images import load_image, resolve_image_root
from noisybox.noise.annotation_noise import ANNOTATION_CORRUPTIONS
from noisybox.noise.spec import NoiseSpec, takes_noise_spec
from noisybox.stats import align_boxes, match_records
from noisybox.viz.tiles import add_legend, class_name_map, draw_tile

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DEFAULT_NUM_IMAGES",
    "describe_noise",
    "noise_label",
    "plot_preview",
    "preview_annotations",
    "save_figure",
    "select_images",
]

DEFAULT_NUM_IMAGES = 6
_DPI = 100


def _match_noisy(
    clean: Annotations, noisy: Annotations | None
) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(noisy_boxes, matched, extra_rows, categories, relocated)``: the noisy box of
    each clean record (NaN where the noisy set dropped it), ``bool[N]`` which clean records
    have one, the rows of ``noisy`` without a clean record (extra boxes), each clean
    record's category in ``noisy``, and ``bool[N]`` the clean records the provenance lists
    as relocated (``None``, ``None``, no rows, ``None``, ``None`` without ``noisy``; the
    last is ``None`` without relocation). Sets are checked by
    :func:`~noisybox.stats.align_boxes` (the same records) unless ``noisy``'s provenance
    records annotation-level noise (``corrupt --missing``, ``--class-flip``, ``--extra``,
    ``--relocate``); those are matched by :func:`noisybox.stats.match_records`."""
    if noisy is None:
        return None, None, np.zeros(0, dtype=np.int64), None, None

    prov = read_provenance(noisy)
    if not (prov and prov.get("annotation_noise")):  # the same records, or an error
        out = align_boxes(clean, noisy)
        if noisy.record_ids is clean.record_ids:  # made in memory: row for row
            rows = np.arange(clean.num_boxes, dtype=np.int64)
        else:
            position = {rid: k for k, rid in enumerate(noisy.record_ids)}
            rows = np.array([position[rid] for rid in clean.record_ids], dtype=np.int64)
    else:
        rows, _ = match_records(clean, noisy, dropped=dropped_records(noisy))
        boxes = np.asarray(noisy.boxes, dtype=np.float64).reshape(-1, 4)
        out = np.where((rows >= 0)[:, None], boxes[np.maximum(rows, 0)], np.nan)
    matched = rows >= 0
    extra = np.setdiff1d(np.arange(noisy.num_boxes), rows[matched])
    cats = np.where(
        matched, np.asarray(noisy.categories)[np.maximum(rows, 0)], np.asarray(clean.categories)
    )
    ids = relocated_records(noisy)
    wanted = set(ids or ())
    moved = None if ids is None else np.array([rid in wanted for rid in clean.record_ids], bool)
    return out.reshape(-1, 4), matched, extra, cats, moved


def _extra_of(
    noisy: Annotations | None, extra_rows: np.ndarray, image_id: Any
) -> tuple[np.ndarray, np.ndarray] | None:
    """``(boxes, categories)`` of the extra rows of ``noisy`` on image ``image_id``, or
    ``None`` if it has none."""
    if noisy is None or not extra_rows.size:
        return None
    image_ids = np.asarray(noisy.image_ids)[np.asarray(noisy.box_image_index)[extra_rows]]
    rows = extra_rows[image_ids == image_id]
    if not rows.size:
        return None
    return np.asarray(noisy.boxes)[rows], np.asarray(noisy.categories)[rows]


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
        if not len(image_ids):
            raise NoisyboxError(
                f"Expected at least one image id or file name of {ann.source} but got none"
            )
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

    Its length is the docstring and the grid layout; each tile is drawn by
    :func:`~noisybox.viz.tiles.draw_tile`.

    Args:
        clean: clean annotations.
        noisy: noisy annotations with the record ids of ``clean`` (a file written by
            ``noisybox corrupt``, or :func:`~noisybox.corrupt.perturb_annotations`); ``None`` draws clean
            boxes only.
        image_root: folder ``clean.file_names`` are relative to (default: see
            :func:`noisybox.formats.images.default_image_root`).
        rows: image rows to show (see :func:`select_images`); default a seeded sample of
            ``num_images``.
        num_images: images sampled when ``rows`` is ``None``.
        sample_seed: seed of that sample.
        class_names: names overriding the annotations' (see :func:`~noisybox.viz.tiles.class_name_map`).
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
            image, records of ``clean`` and ``noisy`` that cannot be matched, or bad class
            names. A ``noisy`` set that dropped, relabelled, added or relocated records
            (``corrupt --missing/--class-flip/--extra/--relocate``) is drawn with the
            dropped clean boxes dotted red, the extra boxes dashed orange, the relocated
            boxes dashed cyan with an arrow from their clean box, and a relabelled box's
            new class in its tag.
    """
    from matplotlib.figure import Figure

    check_limit("tile_size", tile_size, MAX_TILE_SIZE)
    root = resolve_image_root(clean, image_root)
    names = class_name_map(clean, class_names)
    noisy_boxes, matched, extra_rows, noisy_cats, relocated = _match_noisy(clean, noisy)
    chosen = (
        select_images(clean, num_images=num_images, seed=sample_seed)
        if rows is None
        else np.asarray(rows, dtype=np.int64).reshape(-1)
    )
    n = len(chosen)
    check_limit(
        f"the preview's pixels ({n} tiles of {tile_size} px)",
        n * tile_size**2,
        MAX_FIGURE_PIXELS,
    )
    images = [load_image(clean, int(r), root) for r in chosen.tolist()]
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
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < n:
            draw_tile(
                ax,
                clean,
                int(chosen[k]),
                images[k],
                noisy_boxes,
                names,
                tile_size=tile_size,
                show_labels=show_labels,
                matched=matched,
                noisy_categories=noisy_cats,
                extra=_extra_of(noisy, extra_rows, clean.image_ids[int(chosen[k])]),
                relocated=relocated,
            )
    dropped = matched is not None and not matched.all()
    add_legend(
        fig,
        noisy=noisy is not None,
        dropped=dropped,
        extra=bool(extra_rows.size),
        relocated=relocated is not None and bool(relocated.any()),
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
    _save_figure(fig, path, format="png", dpi=dpi if dpi is not None else fig.dpi)
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
    if params.get("reproduce"):
        parts.append(f"reproduce={params['reproduce']}")
    annotation = params.get("annotation_noise")
    if isinstance(annotation, dict):
        for name in ANNOTATION_CORRUPTIONS:
            if isinstance(annotation.get(name), dict):
                parts.append(f"{name}={annotation[name].get('rate')}")
    parts.append(f"seed={params.get('seed', 0)}")
    return " ".join(parts)


@renamed_keywords(model="noise_model", images="image_root")
@takes_noise_spec
def preview_annotations(
    clean_path: str | os.PathLike[str],
    noisy_path: str | os.PathLike[str] | None = None,
    *,
    image_root: str | os.PathLike[str] | None = None,
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
    spec: NoiseSpec | None = None,
) -> Figure:
    """Read annotation files and draw a preview grid (what ``noisybox preview`` does).

    With ``noisy_path`` the noisy boxes come from that file; without it and with ``eta``
    (or ``eta_w``/``eta_h``, or a ``spec``) they are drawn on the fly with :func:`~noisybox.corrupt.perturb_annotations`
    and the noise parameters, seed included, go into the title; with neither only the
    clean boxes are drawn.

    Its length is the docstring (it mirrors ``noisybox preview``'s options); reading is
    :func:`_read_pair`, drawing :func:`plot_preview`.

    Args:
        clean_path: COCO json, VOC year folder or YOLO dataset folder.
        noisy_path: a noisy copy of it.
        image_root: the images folder (default: next to the annotations, see
            :func:`noisybox.formats.images.default_image_root`).
        output: PNG to write (atomically); ``None`` writes nothing.
        eta, eta_w, eta_h, noise_model, boundary, ratio, seed: on-the-fly noise.
        num_images, image_ids, sample_seed: which images (see :func:`select_images`).
        class_names: names overriding the annotations' (see :func:`~noisybox.viz.tiles.class_name_map`).
        format: format of both files (detected by default).
        columns, tile_size, show_labels: layout (see :func:`plot_preview`).
        spec: the on-the-fly noise as one :class:`~noisybox.noise.NoiseSpec`, instead of
            ``eta`` ... ``ratio`` (box noise only).

    Returns:
        The matplotlib ``Figure``.

    Raises:
        NoisyboxError: for bad input files, images or parameters, or both ``noisy_path``
            and a noise rate.
        TypeError: for both ``spec`` and a noise keyword.

    Example:
        >>> import tempfile
        >>> from noisybox.data import make_shapes_dataset
        >>> ds = make_shapes_dataset(tempfile.mkdtemp(), num_train=1, num_val=2, image_size=64)
        >>> fig = preview_annotations(ds.val_annotations, eta=0.2, num_images=2)
        >>> len(fig.axes), fig.get_suptitle().splitlines()[1]
        (2, 'on-the-fly noise: model=uniform eta=0.2 boundary=shift seed=0')
    """
    on_the_fly = spec is not None or any(v is not None for v in (eta, eta_w, eta_h))
    if noisy_path is not None and on_the_fly:
        raise NoisyboxError(
            f"Expected either a NOISY file or --eta but got both ({noisy_path} and a noise rate)"
        )
    if on_the_fly and spec is None:
        spec = NoiseSpec(
            noise_model=noise_model,
            eta=0.2 if eta is None else eta,
            eta_w=eta_w,
            eta_h=eta_h,
            boundary=boundary,
            ratio=ratio,
        )
    clean, noisy = _read_pair(clean_path, noisy_path, image_root, format)
    title = Path(clean_path).name
    if noisy is not None:
        title += f"  vs  {Path(str(noisy_path)).name}"
        label = noise_label(noisy)
        if label:
            title += f"\n{label}"
    elif spec is not None:
        noisy = perturb_annotations(clean, spec=spec, seed=seed)
        title += f"\non-the-fly noise: {describe_noise({**spec.to_dict(), 'seed': seed})}"
    rows = (
        select_images(clean, image_ids=image_ids)
        if image_ids is not None
        else select_images(clean, num_images=num_images, seed=sample_seed)
    )
    fig = plot_preview(
        clean,
        noisy,
        image_root=image_root,
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


def _read_pair(
    clean_path: str | os.PathLike[str],
    noisy_path: str | os.PathLike[str] | None,
    image_root: str | os.PathLike[str] | None,
    format: str | None,
) -> tuple[Annotations, Annotations | None]:
    """The clean set and, if given, the noisy one, in one format (a YOLO image root read in)."""
    kwargs: dict[str, Any] = {}
    fmt = format
    if image_root is not None:
        if fmt is None:
            fmt = detect_format(clean_path)
        if fmt == "yolo":
            kwargs["image_root"] = image_root
    clean = read_annotations(clean_path, fmt, **kwargs)
    if noisy_path is None:
        return clean, None
    return clean, read_annotations(noisy_path, fmt or clean.format, **kwargs)


def noise_label(ann: Annotations) -> str:
    """A short description of the noise a ``noisybox corrupt`` output was written with
    (from its provenance: COCO ``info["noisybox"]`` or the folder's manifest), or ``""``.
    """
    prov = read_provenance(ann)
    if prov is None or "eta_w" not in prov:
        return ""
    try:
        return describe_noise(prov)
    except (TypeError, ValueError):
        return ""
