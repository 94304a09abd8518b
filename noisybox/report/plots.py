"""Benchmark plots (matplotlib, Agg backend, PNG), drawn from a report summary.

* ``ap_vs_iou_<detector>.png``: AP against the IoU threshold (0.50 ... 0.95), one panel
  per eta, one line per loss (shaded: +- std over seeds).
* ``map_vs_eta_<detector>.png``: mAP and mAP75:95 against eta, one line per loss.
* ``alpha_sweep_<detector>.png`` (when a loss is run at 3 or more alphas): mAP and
  mAP75:95 against alpha, one line per eta.
* ``learning_curves_<detector>.png`` (from :func:`noisybox.report.learning_curves.curves_frame`,
  when cells were evaluated during training): mAP and mAP75:95 against the epoch, one
  panel per eta, one line per loss (shaded: +- std over seeds).
* ``paired_diff_<detector>.png`` (from :func:`noisybox.report.writer.paired_differences`):
  per eta, each alpha variant minus its baseline at every AP column, one dot per seed and
  the mean +- std over seeds, so a difference can be read against the seed-to-seed spread.
* ``reference_diff_<detector>.png`` (studies with ``report: {reference: LOSS}``): a forest
  plot of every loss's paired difference to the reference in mAP and mAP75:95, one panel
  per eta, one row per loss: a dot per seed and the mean with its 95% t interval (filled
  when the interval excludes 0).

Collapsed rows are not drawn as numbers: they are named in the legend as collapsed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from noisybox.engine.evaluation import IOU_THRESHOLDS, THRESHOLD_METRICS  # noqa: E402
from noisybox.report.plot_style import (  # noqa: E402
    METRIC_TITLES,
    detector_rows,
    figure_legend,
    is_collapsed,
    save,
    spread,
)
from noisybox.report.tables import order_labels  # noqa: E402

_DIFF_METRICS = (*THRESHOLD_METRICS, "map", "map_75_95")

__all__ = [
    "plot_all",
    "plot_learning_curves",
    "plot_alpha_sweep",
    "plot_ap_vs_iou",
    "plot_map_vs_eta",
    "plot_paired_diffs",
    "plot_reference_diffs",
]


def plot_ap_vs_iou(
    summary: pd.DataFrame,
    detector: str,
    backbone: str,
    path: Path,
    loss_order: Sequence[str] = (),
) -> Path:
    """AP at each IoU threshold, one panel per eta, one line per loss (in the report's
    row order for the config's ``loss_order``)."""
    rows, labels, styles = detector_rows(summary, detector, backbone, loss_order)
    etas = sorted(rows["eta"].unique())
    fig, axes = plt.subplots(
        1, len(etas), figsize=(4.2 * len(etas) + 0.6, 3.8), sharey=True, squeeze=False
    )
    x = np.array(IOU_THRESHOLDS)
    for ax, eta in zip(axes[0], etas, strict=True):
        for label in labels:
            sel = rows[(rows["eta"] == eta) & (rows["label"] == label)]
            if sel.empty:
                continue
            row = sel.iloc[0]
            if is_collapsed(row):
                ax.plot(
                    [],
                    [],
                    label=f"{label}: collapsed",
                    color=styles[label]["color"],
                    marker="x",
                    linestyle="none",
                )
                continue
            y = 100 * np.array([row[f"{m}_mean"] for m in THRESHOLD_METRICS])
            s = 100 * np.array([row[f"{m}_std"] for m in THRESHOLD_METRICS])
            ax.plot(x, y, label=label, linewidth=1.8, markersize=4, **styles[label])  # type: ignore[arg-type]
            if not np.isnan(s).all():
                ax.fill_between(
                    x, y - s, y + s, color=styles[label]["color"], alpha=0.15, linewidth=0
                )  # type: ignore[arg-type]
        title = "clean training boxes" if eta == 0 else f"noisy training boxes, η = {eta:g}"
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("IoU threshold of AP")
        ax.set_xticks(x[::2])
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("AP on clean test set (%)")
    axes[0][0].set_ylim(bottom=0)
    figure_legend(fig, axes[0], "box loss")
    fig.suptitle(
        f"{detector} ({backbone}): AP vs IoU threshold ({spread(rows, 'band')})", fontsize=11
    )
    return save(fig, path)


def plot_map_vs_eta(
    summary: pd.DataFrame,
    detector: str,
    backbone: str,
    path: Path,
    loss_order: Sequence[str] = (),
) -> Path:
    """mAP and mAP75:95 against the noise rate eta, one line per loss (in the report's
    row order for the config's ``loss_order``)."""
    rows, labels, styles = detector_rows(summary, detector, backbone, loss_order)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9))
    for ax, metric in zip(axes, ("map", "map_75_95"), strict=True):
        for label in labels:
            sel = rows[rows["label"] == label].sort_values("eta")
            ok = sel[sel["n"] > sel["n_collapsed"]]
            name = label
            if len(ok) < len(sel):
                bad = ", ".join(f"{e:g}" for e in sel.loc[sel["n"] == sel["n_collapsed"], "eta"])
                name += f" (collapsed at η {bad})"
            if ok.empty:
                ax.plot(
                    [], [], label=name, color=styles[label]["color"], marker="x", linestyle="none"
                )
                continue
            y = 100 * ok[f"{metric}_mean"].to_numpy(dtype=float)
            s = 100 * ok[f"{metric}_std"].to_numpy(dtype=float)
            ax.errorbar(
                ok["eta"],
                y,
                yerr=None if np.isnan(s).all() else np.nan_to_num(s),
                label=name,
                capsize=3,
                linewidth=1.8,
                markersize=5,
                **styles[label],  # type: ignore[arg-type]
            )
        ax.set_title(METRIC_TITLES[metric], fontsize=10)
        ax.set_xlabel("noise rate η of the training boxes (0 = clean)")
        ax.set_ylabel("AP on clean test set (%)")
        ax.set_xticks(sorted(rows["eta"].unique()))
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    figure_legend(fig, axes, "box loss")
    fig.suptitle(
        f"{detector} ({backbone}): accuracy vs box noise ({spread(rows, 'bars')})",
        fontsize=11,
    )
    return save(fig, path)


def plot_alpha_sweep(
    summary: pd.DataFrame, detector: str, backbone: str, loss: str, path: Path
) -> Path:
    """mAP and mAP75:95 against alpha for one loss name, one line per eta."""
    rows = summary[
        (summary["detector"] == detector)
        & (summary["backbone"] == backbone)
        & (summary["loss"] == loss)
    ]
    etas = sorted(rows["eta"].unique())
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.9))
    for ax, metric in zip(axes, ("map", "map_75_95"), strict=True):
        for i, eta in enumerate(etas):
            sel = rows[rows["eta"] == eta].sort_values("alpha")
            ok = sel[sel["n"] > sel["n_collapsed"]]
            colour = cmap(i / max(1, len(etas) - 1) * 0.85)
            name = "clean boxes" if eta == 0 else f"η = {eta:g}"
            y = 100 * ok[f"{metric}_mean"].to_numpy(dtype=float)
            s = 100 * ok[f"{metric}_std"].to_numpy(dtype=float)
            ax.errorbar(
                ok["alpha"],
                y,
                yerr=None if np.isnan(s).all() else np.nan_to_num(s),
                label=name,
                color=colour,
                marker="o",
                capsize=3,
                linewidth=1.8,
            )
            dead = sel[sel["n"] == sel["n_collapsed"]]
            if len(dead):
                ax.scatter(
                    dead["alpha"],
                    np.zeros(len(dead)),
                    marker="x",
                    color=colour,
                    s=60,
                    label=f"{name}: collapsed",
                    zorder=3,
                )
        ax.axvline(1.0, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(METRIC_TITLES[metric], fontsize=10)
        ax.set_xlabel(f"α of {loss} (1 = plain IoU loss)")
        ax.set_ylabel("AP on clean test set (%)")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    figure_legend(fig, axes, "training boxes")
    fig.suptitle(f"{detector} ({backbone}): effect of α ({spread(rows, 'bars')})", fontsize=11)
    return save(fig, path)


def plot_paired_diffs(
    diffs: pd.DataFrame,
    detector: str,
    backbone: str,
    path: Path,
    loss_order: Sequence[str] = (),
) -> Path:
    """Per eta, each alpha variant minus its baseline at every AP column: a dot per seed,
    the mean with a +- std bar, and the zero line (variants in the report's row order for
    the config's ``loss_order``)."""
    rows, labels, styles = detector_rows(diffs, detector, backbone, loss_order)
    etas = sorted(rows["eta"].unique())
    bases = dict(zip(rows["label"], rows["baseline_label"], strict=True))
    pairs = [(label, bases[label]) for label in labels]
    fig, axes = plt.subplots(
        1, len(etas), figsize=(5.2 * len(etas) + 0.6, 3.8), sharey=True, squeeze=False
    )
    x = np.arange(len(_DIFF_METRICS), dtype=float)
    width = 0.7 / max(1, len(pairs))
    for ax, eta in zip(axes[0], etas, strict=True):
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.axvline(len(THRESHOLD_METRICS) - 0.5, color="grey", linewidth=0.6)
        for i, (label, base) in enumerate(pairs):
            sel = rows[(rows["eta"] == eta) & (rows["label"] == label)]
            if sel.empty:
                continue
            xs = x + (i - (len(pairs) - 1) / 2) * width
            values = 100 * sel[list(_DIFF_METRICS)].to_numpy(dtype=float)
            color = styles[label]["color"]
            for seed_values in values:
                ax.plot(xs, seed_values, linestyle="none", marker=".", color=color, alpha=0.5)
            mean = values.mean(axis=0)
            std = values.std(axis=0, ddof=1) if len(values) > 1 else np.zeros_like(mean)
            ax.errorbar(
                xs,
                mean,
                yerr=std,
                linestyle="none",
                marker=styles[label]["marker"],
                markersize=5,
                capsize=2,
                color=color,
                label=f"{label} − {base} (n = {len(values)})",
            )
        title = "clean training boxes" if eta == 0 else f"noisy training boxes, η = {eta:g}"
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x)
        ax.set_xticklabels(
            [
                m[2:] if m.startswith("ap") else {"map": "mAP", "map_75_95": "75:95"}[m]
                for m in _DIFF_METRICS
            ],
            fontsize=8,
        )
        ax.set_xlabel("AP column (IoU threshold, mAP, mAP75:95)")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].set_ylabel("paired difference (AP points)")
    figure_legend(fig, axes[0], "alpha variant − baseline")
    fig.suptitle(
        f"{detector} ({backbone}): per-seed paired differences (dots), mean ± std (bars)",
        fontsize=11,
    )
    return save(fig, path)


def plot_reference_diffs(
    paired: pd.DataFrame,
    per_seed: pd.DataFrame,
    detector: str,
    backbone: str,
    path: Path,
    order: Sequence[str] = (),
) -> Path:
    """Forest plot of every loss row against the reference, seed by seed.

    Args:
        paired: ``relative_improvements(frame, reference)`` (``<metric>_diff``,
            ``<metric>_ci_low`` / ``_ci_high``, ``n_pairs``, ``baseline_label``).
        per_seed: ``paired_differences(frame, reference)`` (one row per seed).
        detector: the detector whose rows are drawn.
        backbone: its backbone.
        path: the PNG to write.
        order: the rows' labels top to bottom (the report's row order); labels not in it
            follow in ``paired``'s order.

    A row with one seed pair has no interval.
    """
    mine = paired[(paired["detector"] == detector) & (paired["backbone"] == backbone)]
    seeds = per_seed[(per_seed["detector"] == detector) & (per_seed["backbone"] == backbone)]
    etas = sorted(mine["eta"].unique())
    present = list(dict.fromkeys(mine["label"]))
    labels = [label for label in order if label in present]
    labels += [label for label in present if label not in labels]
    reference = str(mine["baseline_label"].iloc[0]) if len(mine) else "reference"
    metrics = ("map", "map_75_95")
    fig, axes = plt.subplots(
        len(metrics),
        len(etas),
        figsize=(4.2 * len(etas) + 1.6, (0.28 * len(labels) + 1.1) * len(metrics)),
        sharex="row",
        sharey=True,
        squeeze=False,
    )
    y = np.arange(len(labels), dtype=float)[::-1]
    for row, metric in enumerate(metrics):
        for ax, eta in zip(axes[row], etas, strict=True):
            ax.axvline(0.0, color="black", linewidth=0.8)
            for yi, label in zip(y, labels, strict=True):
                sel = mine[(mine["eta"] == eta) & (mine["label"] == label)]
                dots = seeds[(seeds["eta"] == eta) & (seeds["label"] == label)]
                ax.plot(
                    100 * dots[metric].to_numpy(dtype=float),
                    np.full(len(dots), yi),
                    linestyle="none",
                    marker="|",
                    color="grey",
                    alpha=0.7,
                )
                if sel.empty:
                    continue
                r = sel.iloc[0]
                mean = 100 * float(r[f"{metric}_diff"])
                low, high = (100 * float(r[f"{metric}_ci_{k}"]) for k in ("low", "high"))
                has_ci = np.isfinite(low) and np.isfinite(high)
                excludes = has_ci and (low > 0 or high < 0)
                if has_ci:
                    ax.plot([low, high], [yi, yi], color="tab:blue", linewidth=1.4)
                ax.plot(
                    [mean],
                    [yi],
                    marker="o",
                    markersize=5,
                    color="tab:blue",
                    markerfacecolor="tab:blue" if excludes else "white",
                )
            title = "clean boxes" if eta == 0 else f"η = {eta:g}"
            ax.set_title(f"{METRIC_TITLES[metric]}, {title}", fontsize=9)
            ax.grid(alpha=0.3, axis="x")
            if row == len(metrics) - 1:
                ax.set_xlabel(f"paired difference to {reference} (AP points)")
        axes[row][0].set_yticks(y)
        axes[row][0].set_yticklabels(labels, fontsize=8)
    fig.suptitle(
        f"{detector} ({backbone}) against {reference}: mean and 95% t CI (filled: CI "
        "excludes 0), seeds as ticks",
        fontsize=10,
    )
    fig.tight_layout()
    return save(fig, path)


def plot_learning_curves(
    curves: pd.DataFrame,
    detector: str,
    backbone: str,
    path: Path,
    loss_order: Sequence[str] = (),
) -> Path:
    """mAP and mAP75:95 (rows) against the epoch, one panel per eta (columns), one line per
    loss (in the report's row order for the config's ``loss_order``): the mean over seeds
    with a band of +- std."""
    rows, labels, styles = detector_rows(curves, detector, backbone, loss_order)
    etas = sorted(rows["eta"].unique())
    metrics = ("map", "map_75_95")
    fig, axes = plt.subplots(
        len(metrics),
        len(etas),
        figsize=(3.8 * len(etas) + 0.6, 3.0 * len(metrics)),
        sharex=True,
        sharey="row",
        squeeze=False,
    )
    seeds = int(rows.groupby(["eta", "label"])["seed"].nunique().max()) if len(rows) else 0
    for j, eta in enumerate(etas):
        for i, metric in enumerate(metrics):
            ax = axes[i][j]
            for label in labels:
                sel = rows[(rows["eta"] == eta) & (rows["label"] == label)]
                if sel.empty:
                    continue
                stats = sel.groupby("epoch")[metric].agg(["mean", "std"]).sort_index()
                x = stats.index.to_numpy()
                mean = 100 * stats["mean"].to_numpy()
                std = 100 * stats["std"].fillna(0.0).to_numpy()
                style = styles[label]
                ax.plot(x, mean, color=style["color"], linestyle=style["linestyle"], label=label)
                ax.fill_between(x, mean - std, mean + std, color=style["color"], alpha=0.15)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"eta = {eta:g}", fontsize=10)
            if i == len(metrics) - 1:
                ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel(f"{METRIC_TITLES[metric]} (%)")
    spread = "one seed: no band" if seeds <= 1 else f"mean over {seeds} seeds, band = ± std"
    fig.suptitle(f"{detector} ({backbone}): clean-test AP during training ({spread})", fontsize=11)
    figure_legend(fig, axes, "loss")
    return save(fig, path)


def plot_all(
    summary: pd.DataFrame,
    out_dir: str | Path,
    diffs: pd.DataFrame | None = None,
    curves: pd.DataFrame | None = None,
    reference: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    loss_order: Sequence[str] = (),
) -> list[Path]:
    """Every plot the summary (and the paired differences, learning curves and the
    comparison with a reference loss as ``(paired, per_seed)``, when given)
    supports, written to ``out_dir``; returns the paths. ``loss_order`` (the config's loss
    names) orders the legends as the report orders its rows."""
    out = Path(out_dir)
    paths = []
    for (det, bb), rows in summary.groupby(["detector", "backbone"], sort=True):
        stem = f"{det}-{bb}"
        paths.append(plot_ap_vs_iou(summary, det, bb, out / f"ap_vs_iou_{stem}.png", loss_order))
        if (
            curves is not None
            and not curves[curves["detector"].eq(det) & curves["backbone"].eq(bb)].empty
        ):
            paths.append(
                plot_learning_curves(
                    curves, det, bb, out / f"learning_curves_{stem}.png", loss_order
                )
            )
        if (
            diffs is not None
            and not diffs[diffs["detector"].eq(det) & diffs["backbone"].eq(bb)].empty
        ):
            paths.append(
                plot_paired_diffs(diffs, det, bb, out / f"paired_diff_{stem}.png", loss_order)
            )
        if reference is not None:
            paired, per_seed = reference
            if not paired[paired["detector"].eq(det) & paired["backbone"].eq(bb)].empty:
                order = order_labels(list(paired["label"]), loss_order)
                paths.append(
                    plot_reference_diffs(
                        paired, per_seed, det, bb, out / f"reference_diff_{stem}.png", order
                    )
                )
        if rows["eta"].nunique() >= 2:
            paths.append(
                plot_map_vs_eta(summary, det, bb, out / f"map_vs_eta_{stem}.png", loss_order)
            )
        for loss, lrows in rows.groupby("loss", sort=True):
            alphas = {a for a in lrows["alpha"] if not (isinstance(a, float) and math.isnan(a))}
            if len(alphas) >= 3:
                paths.append(
                    plot_alpha_sweep(summary, det, bb, loss, out / f"alpha_sweep_{stem}_{loss}.png")
                )
    return paths
