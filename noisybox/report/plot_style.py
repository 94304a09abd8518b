"""The look of a report's figures: one colour and line per loss (an alpha variant keeps its
baseline's colour), the shared legend, spreads, and the one save path."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from noisybox._fileio import save_figure  # noqa: E402
from noisybox.report.tables import loss_rows, order_labels  # noqa: E402
from noisybox.study.collapse_flags import base_variant, is_alpha_variant  # noqa: E402

__all__ = [
    "METRIC_TITLES",
    "detector_rows",
    "figure_legend",
    "is_collapsed",
    "line_style",
    "line_styles",
    "save",
    "spread",
]


METRIC_TITLES = {"map": "mAP (AP50:95)", "map_75_95": "mAP75:95"}


def save(fig: plt.Figure, path: Path) -> Path:
    try:
        save_figure(fig, path, format="png", dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return path


def line_styles(labels: list[str], loss_order: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Colour per IoU variant (an alpha variant shares its baseline's colour, see
    :mod:`noisybox.study.collapse_flags`), solid line for alpha = 1 and dashed for alpha
    variants.

    The first ten variants take matplotlib's ``tab10`` colours; the next ten (a loss zoo)
    the light shade of the same hues (``tab20``), with dash-dot and dotted lines and
    triangle markers, so that no two variants of up to twenty look alike.

    >>> from noisybox.report.tables import LossOrder, LossSpec
    >>> specs = [LossSpec("iou", 1.0), LossSpec("alpha-iou", 3.0)]
    >>> specs += [LossSpec(f"l{i}", 1.0) for i in range(10)]
    >>> styles = line_styles([s.label for s in specs], LossOrder.of_specs([], specs))
    >>> styles["iou"]["color"] == styles["alpha-iou@3"]["color"]
    True
    >>> styles["l0"]["color"] == styles["l9"]["color"], styles["l9"]["linestyle"]
    (False, '-.')
    """
    bases: dict[str, int] = {}
    out: dict[str, dict[str, Any]] = {}
    rows = loss_rows(loss_order)
    for label in labels:
        spec = rows.spec(label)
        out[label] = line_style(bases.setdefault(base_variant(spec.name), len(bases)), spec.alpha)
    if len(set(bases)) == 1:  # one variant: tell the lines apart by colour instead
        for i, label in enumerate(labels):
            out[label]["color"] = plt.get_cmap("tab10")(i % 10)
    return out


def line_style(index: int, alpha: float | None) -> dict[str, Any]:
    """The colour, line and marker of the ``index``-th IoU variant (see :func:`line_styles`)."""
    alpha_variant = is_alpha_variant(alpha)
    if index % 20 < 10:
        return {
            "color": plt.get_cmap("tab10")(index % 10),
            "linestyle": "--" if alpha_variant else "-",
            "marker": "s" if alpha_variant else "o",
        }
    return {
        "color": plt.get_cmap("tab20")(2 * (index % 10) + 1),
        "linestyle": ":" if alpha_variant else "-.",
        "marker": "v" if alpha_variant else "^",
    }


def figure_legend(fig: plt.Figure, axes: object, title: str) -> None:
    """One legend for all panels, right of them (a loss missing from a panel still shows)."""
    seen: dict[str, Any] = {}
    flat = list(np.ravel(axes))  # type: ignore[call-overload]
    right = max(ax.get_position().x1 for ax in flat)
    for ax in flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    fig.legend(
        list(seen.values()),
        list(seen),
        loc="center left",
        bbox_to_anchor=(right + 0.01, 0.5),
        fontsize=9,
        title=title,
        title_fontsize=9,
        frameon=False,
    )


def spread(rows: pd.DataFrame, kind: str) -> str:
    seeds = int((rows["n"] - rows["n_collapsed"]).max()) if len(rows) else 0
    if seeds <= 1:
        return "one seed: no spread shown"
    return f"mean over up to {seeds} seeds, {kind} = ± std"


def detector_rows(
    frame: pd.DataFrame, detector: str, backbone: str, loss_order: Sequence[str]
) -> tuple[pd.DataFrame, list[str], dict[str, dict[str, Any]]]:
    """The rows of one detector, their loss labels in the report's row order and their
    styles (see :func:`line_styles`)."""
    rows = frame[(frame["detector"] == detector) & (frame["backbone"] == backbone)]
    labels = order_labels(list(rows["label"]), loss_order)
    return rows, labels, line_styles(labels, loss_order)


def is_collapsed(row: pd.Series) -> bool:
    return bool(row["n"] == row["n_collapsed"])
