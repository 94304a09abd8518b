"""Distributions of noisy-to-clean IoU, one histogram per noise level, overlaid."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from noisybox._deprecation import renamed_keywords
from noisybox._limits import MAX_BINS, check_limit
from noisybox.boxes import elementwise_box_iou
from noisybox.corrupt import perturb_annotations
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations
from noisybox.formats.annotations import Annotations
from noisybox.noise.spec import NoiseSpec
from noisybox.stats import align_boxes, compare_annotations
from noisybox.viz.preview import noise_label, save_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["IoUDistribution", "iou_distribution", "iou_histogram", "plot_iou_histogram"]

# Colour-blind-safe (Okabe-Ito) colours, one per overlaid distribution.
_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000")


@dataclasses.dataclass
class IoUDistribution:
    """Per-box IoU of a noisy annotation set against its clean version.

    Attributes:
        label: legend text.
        ious: ``float64[N]`` IoU of every compared box (crowd boxes left out).
        image_index: ``int64[N]`` image row of every compared box.
        mean_iou: mean over boxes (as :func:`noisybox.stats.compare_annotations`).
        mean_image_iou: mean over each image's boxes, then over images (the paper's §4.3).
    """

    label: str
    ious: np.ndarray
    image_index: np.ndarray
    mean_iou: float
    mean_image_iou: float


def iou_distribution(
    clean: Annotations,
    noisy: Annotations,
    *,
    label: str | None = None,
    include: np.ndarray | None = None,
) -> IoUDistribution:
    """IoU of every box of ``noisy`` with the box of the same record id in ``clean``.

    Args:
        clean: the reference annotations.
        noisy: annotations holding every record id of ``clean``.
        label: legend text (default: the noise parameters from ``noisy``'s provenance, or
            its file name).
        include: ``bool[N]`` over ``clean``'s boxes restricting the comparison (e.g. to
            the boxes ``corrupt`` perturbed).

    Returns:
        :class:`IoUDistribution`; the means are :func:`noisybox.stats.compare_annotations`'s.

    Raises:
        NoisyboxError: if a record id of ``clean`` is missing from ``noisy``.
    """
    noisy_boxes = align_boxes(clean, noisy)
    keep = ~np.asarray(clean.iscrowd, dtype=bool)
    if include is not None:
        keep &= np.asarray(include, dtype=bool)
    stats = compare_annotations(clean, noisy, include=include)
    if label is None:
        spec = noise_label(noisy)
        label = f"{Path(noisy.source).name}: {spec}" if spec else Path(noisy.source).name
    return IoUDistribution(
        label=label,
        ious=elementwise_box_iou(clean.boxes[keep], noisy_boxes[keep]),
        image_index=np.asarray(clean.box_image_index, dtype=np.int64)[keep],
        mean_iou=stats.mean_iou,
        mean_image_iou=stats.mean_image_iou,
    )


def plot_iou_histogram(
    distributions: IoUDistribution | Sequence[IoUDistribution],
    *,
    bins: int = 40,
    title: str | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Overlaid histograms of noisy-to-clean IoU, with each set's mean per box (solid line)
    and mean per image (dashed line) marked.

    Bars are shares of each set's boxes, so sets of different sizes compare directly.

    Args:
        distributions: one or several :class:`IoUDistribution`.
        bins: bins over ``[0, 1]``.
        title: figure title.
        figsize: inches (default grows with the legend).

    Returns:
        A matplotlib ``Figure`` (Agg canvas, 100 dpi); save it with
        :func:`noisybox.viz.save_figure`.

    Raises:
        NoisyboxError: if no distribution is given or ``bins < 1``.

    >>> d = IoUDistribution("eta=0.1", np.array([0.8, 0.9, 1.0]), np.array([0, 0, 1]), 0.9, 0.925)
    >>> fig = plot_iou_histogram(d)
    >>> [line.get_xdata()[0] for line in fig.axes[0].lines]
    [0.9, 0.925]
    """
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    dists = [distributions] if isinstance(distributions, IoUDistribution) else list(distributions)
    if not dists:
        raise NoisyboxError("Expected at least one IoU distribution but got none")
    if int(bins) < 1:
        raise NoisyboxError(f"Expected bins >= 1 but got {bins}")
    check_limit("bins", int(bins), MAX_BINS)
    labels = [
        f"{d.label} ({d.ious.size} boxes): mean/box {d.mean_iou:.3f}, "
        f"mean/image {d.mean_image_iou:.3f}"
        for d in dists
    ]
    if figsize is None:
        # wide enough for the longest legend line at 8 pt (~0.06 in per character)
        width = max(7.0, 0.06 * max(len(text) for text in labels) + 0.8)
        figsize = (width, 4.0 + 0.17 * (len(dists) + 2))
    fig = Figure(figsize=figsize, dpi=100, layout="constrained")
    ax = fig.add_subplot()
    edges = np.linspace(0.0, 1.0, int(bins) + 1).tolist()
    for k, d in enumerate(dists):
        color = _COLORS[k % len(_COLORS)]
        n = max(d.ious.size, 1)
        weights = np.full(d.ious.size, 1.0 / n)
        ax.hist(d.ious, bins=edges, weights=weights, histtype="stepfilled", color=color, alpha=0.25)
        ax.hist(
            d.ious,
            bins=edges,
            weights=weights,
            histtype="step",
            color=color,
            lw=1.5,
            label=labels[k],
        )
        if np.isfinite(d.mean_iou):
            ax.axvline(d.mean_iou, color=color, lw=1.5, ls="-")
        if np.isfinite(d.mean_image_iou):
            ax.axvline(d.mean_image_iou, color=color, lw=1.5, ls="--")
    handles, _ = ax.get_legend_handles_labels()
    handles += [
        Line2D([], [], color="0.3", lw=1.5, ls="-", label="mean IoU per box"),
        Line2D([], [], color="0.3", lw=1.5, ls="--", label="mean IoU per image"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=1, fontsize=8, frameon=False)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel("IoU of noisy box with its clean box")
    ax.set_ylabel("share of boxes")
    ax.set_title(title if title is not None else "Noisy-to-clean IoU", fontsize=10)
    ax.grid(alpha=0.3)
    return fig


@renamed_keywords(model="noise_model")
def iou_histogram(
    clean_path: str | os.PathLike[str],
    noisy_paths: Sequence[str | os.PathLike[str]] = (),
    *,
    etas: Sequence[float] = (),
    noise_model: str = "uniform",
    boundary: str = "shift",
    seed: int = 0,
    labels: Sequence[str] | None = None,
    bins: int = 40,
    output: str | os.PathLike[str] | None = None,
    format: str | None = None,
) -> tuple[Figure, list[IoUDistribution]]:
    """Read annotation files and plot their IoU distributions (what ``noisybox iou-hist``
    does).

    Args:
        clean_path: the clean annotations.
        noisy_paths: noisy copies of it (e.g. ``corrupt`` outputs at several etas).
        etas: noise rates drawn on the fly (:func:`noisybox.corrupt.perturb_annotations`),
            plotted after the files.
        noise_model, boundary, seed: parameters of the on-the-fly noise.
        labels: legend texts, one per file then per eta (default: from provenance).
        bins: histogram bins over ``[0, 1]``.
        output: PNG to write atomically, or ``None``.
        format: format of all files (detected by default).

    Returns:
        ``(figure, distributions)``.

    Raises:
        NoisyboxError: for bad files, no noisy input, or a wrong number of labels.

    Example:
        >>> import tempfile
        >>> from noisybox.data import make_shapes_dataset
        >>> ds = make_shapes_dataset(tempfile.mkdtemp(), num_train=1, num_val=3, image_size=64)
        >>> fig, dists = iou_histogram(ds.val_annotations, etas=[0.0, 0.3])
        >>> [d.label for d in dists], dists[0].mean_iou
        (['eta=0 (on the fly)', 'eta=0.3 (on the fly)'], 1.0)
    """
    if not noisy_paths and not etas:
        raise NoisyboxError("Expected at least one NOISY file or --eta but got neither")
    n = len(noisy_paths) + len(etas)
    if labels is not None and len(labels) != n:
        raise NoisyboxError(
            f"Expected {n} labels (one per NOISY file and eta) but got {len(labels)}"
        )
    specs = [NoiseSpec(eta=eta, noise_model=noise_model, boundary=boundary) for eta in etas]
    clean = read_annotations(clean_path, format)
    dists: list[IoUDistribution] = []
    for k, path in enumerate(noisy_paths):
        noisy = read_annotations(path, format or clean.format)
        dists.append(iou_distribution(clean, noisy, label=labels[k] if labels else None))
    for j, spec in enumerate(specs):
        noisy = perturb_annotations(clean, spec=spec, seed=seed)
        label = labels[len(noisy_paths) + j] if labels else f"eta={spec.eta:g} (on the fly)"
        dists.append(iou_distribution(clean, noisy, label=label))
    title = f"Noisy-to-clean IoU, {Path(clean_path).name}"
    if etas:
        title += f"\non the fly: model={noise_model} boundary={boundary} seed={seed}"
    fig = plot_iou_histogram(dists, bins=bins, title=title)
    if output is not None:
        save_figure(fig, output)
    return fig, dists
