"""The paired tables of a report: every loss against the reference loss, and retention
differences with the reading their intervals support, for Markdown, LaTeX and CSV."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from noisybox.report.summary import (
    COLUMN_TITLES,
    RETENTION_METRICS,
)
from noisybox.report.tables import Style, fmt_ci, fmt_p, fmt_value, sort_by_loss_order

__all__ = [
    "REFERENCE_METRICS",
    "reference_paired_frames",
    "reference_summary_display",
    "retention_reading",
    "retention_paired_frames",
]


#: Metrics of the paired tables against a reference loss (``report.reference``).
REFERENCE_METRICS = ("map", "ap50", "ap75", "map_75_95")


def _fmt_paired(r: pd.Series, m: str) -> str:
    """``+1.50 [+0.21, +2.79]; 3/3 ahead; p 0.250 / 0.250``: mean paired difference in AP
    points, its 95 % interval (from 2 pairs), seeds ahead and Wilcoxon / sign p-values."""
    n = int(r["n_pairs"])
    if n == 0:
        return "-"
    text = f"{100 * r[f'{m}_diff']:+.2f}"
    if n >= 2:
        text += " " + fmt_ci(r[f"{m}_ci_low"], r[f"{m}_ci_high"])
    return (
        f"{text}; {r[f'{m}_ahead']}/{n} ahead; "
        f"p {fmt_p(r[f'{m}_wilcoxon_p'])} / {fmt_p(r[f'{m}_sign_p'])}"
    )


def reference_paired_frames(
    paired: pd.DataFrame, style: Style, loss_order: Sequence[str] = ()
) -> list[tuple[str, pd.DataFrame]]:
    """Display tables (strings) per detector and eta of a comparison with a reference loss.

    Args:
        paired: ``relative_improvements(frame, reference)``.
        style: the output's :class:`Style`.
        loss_order: the config's loss names, for the row order.

    Returns:
        ``(title, table)`` per detector and eta: one row per loss with its seed pairs and,
        per :data:`REFERENCE_METRICS`, the cell of :func:`_fmt_paired` (``-`` without pairs).
    """
    out = []
    for (det, bb, eta), rows in paired.groupby(["detector", "backbone", "eta"], sort=True):
        rows = sort_by_loss_order(rows, loss_order, by=())
        lines = [
            [
                style.escape(r["label"]),
                str(r["n_pairs"]),
                *(_fmt_paired(r, m) for m in REFERENCE_METRICS),
            ]
            for _, r in rows.iterrows()
        ]
        table = pd.DataFrame(
            lines, columns=["Loss", "pairs", *(COLUMN_TITLES[m] for m in REFERENCE_METRICS)]
        )
        reference = rows["baseline_label"].iloc[0]
        out.append((f"{det} ({bb}), eta = {eta:g}: difference to {reference}", table))
    return out


def reference_summary_display(
    table: pd.DataFrame, style: Style, reference: str, loss_order: Sequence[str] = ()
) -> pd.DataFrame:
    """The compact per-loss table of :func:`~noisybox.report.summary.reference_summary`.

    Columns: detector, loss, ``mAP @<eta>`` (percent, mean ± std over seeds, ``collapsed``
    where every seed collapsed, the count of collapsed seeds where some did),
    ``retention @<eta>`` for eta > 0 (mAP at eta over mAP at eta = 0), and ``diff @<eta>``:
    the mean paired mAP difference to ``reference`` in points with its 95 % interval
    (``reference`` on the reference's own row, ``-`` without seed pairs).
    """
    etas = sorted(float(c.split("@")[1]) for c in table.columns if c.startswith("map@"))
    lines = []
    for _, r in sort_by_loss_order(table, loss_order).iterrows():
        maps, retention, diffs = [], [], []
        for eta in etas:
            at = f"@{eta:g}"
            n, k = int(r[f"n{at}"]), int(r[f"n_collapsed{at}"])
            text = fmt_value(r[f"map{at}"], r[f"map_std{at}"], style)
            maps.append(
                "collapsed" if n and k == n else text + (f" ({k}/{n} collapsed)" if k else "")
            )
            if eta > 0:
                v = r[f"retention_map{at}"]
                retention.append("-" if math.isnan(v) else f"{v:.2f}")
            pairs = int(r[f"n_pairs{at}"])
            if r["label"] == reference:
                diffs.append("reference")
            elif pairs == 0:
                diffs.append("-")
            else:
                diff = f"{100 * r[f'map_diff{at}']:+.2f}"
                ci = fmt_ci(r[f"map_ci_low{at}"], r[f"map_ci_high{at}"]) if pairs >= 2 else ""
                diffs.append(f"{diff} {ci}".strip())
        lines.append(
            [
                f"{r['detector']} ({r['backbone']})",
                style.escape(r["label"]),
                *maps,
                *retention,
                *diffs,
            ]
        )
    cols = [
        "Detector",
        "Loss",
        *(f"mAP @{e:g}" for e in etas),
        *(f"retention @{e:g}" for e in etas if e > 0),
        *(f"diff @{e:g} (95% CI)" for e in etas),
    ]
    return pd.DataFrame(lines, columns=[style.escape(c) for c in cols])


def _excludes_zero(low: float, high: float) -> int:
    """+1 when the interval lies wholly above 0, -1 wholly below, 0 otherwise (or NaN)."""
    return 1 if low > 0 else -1 if high < 0 else 0


def retention_reading(r: pd.Series) -> str:
    """The wording a row of :func:`~noisybox.report.summary.retention_differences`
    supports: "higher (lower) mAP under noise" only where the interval of the noisy mAP
    difference excludes 0, "more (less) robust" only where the interval of the mAP
    retention difference excludes 0; otherwise the two "cannot be told apart" (at this
    scale: this number of seeds).

    >>> row = {"n_pairs": 3, "map_ci_low": 0.001, "map_ci_high": 0.02,
    ...        "retention_map_ci_low": -0.03, "retention_map_ci_high": 0.08}
    >>> retention_reading(pd.Series(row))
    'higher mAP under noise; robustness cannot be told apart'
    """
    if int(r["n_pairs"]) < 2:
        return "fewer than 2 seed pairs: no interval"
    level = _excludes_zero(r["map_ci_low"], r["map_ci_high"])
    robust = _excludes_zero(r["retention_map_ci_low"], r["retention_map_ci_high"])
    words = [
        {1: "higher mAP under noise", -1: "lower mAP under noise"}.get(
            level, "mAP cannot be told apart"
        ),
        {1: "more robust", -1: "less robust"}.get(robust, "robustness cannot be told apart"),
    ]
    return "; ".join(words)


def _fmt_stat(r: pd.Series, prefix: str, scale: float, digits: int) -> str:
    """``+0.026 [-0.036, +0.087]; 2/3 ahead; p 0.250 / 0.250`` for the paired statistics
    ``<prefix>_diff``, ``_ci_low``, ``_ci_high``, ``_ahead``, ``_wilcoxon_p`` and ``_sign_p``
    of a row, the values multiplied by ``scale`` (100 for AP points)."""
    n = int(r["n_pairs"])
    diff = r[f"{prefix}_diff"]
    if n == 0 or math.isnan(diff):
        return "-"
    text = f"{scale * diff:+.{digits}f}"
    low, high = r[f"{prefix}_ci_low"], r[f"{prefix}_ci_high"]
    if not math.isnan(low):
        text += f" [{scale * low:+.{digits}f}, {scale * high:+.{digits}f}]"
    return (
        f"{text}; {r[f'{prefix}_ahead']}/{n} ahead; "
        f"p {fmt_p(r[f'{prefix}_wilcoxon_p'])} / {fmt_p(r[f'{prefix}_sign_p'])}"
    )


def _fmt_fraction(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def retention_paired_frames(
    table: pd.DataFrame, style: Style, loss_order: Sequence[str] = ()
) -> list[tuple[str, pd.DataFrame]]:
    """Display tables (strings) per detector of the paired differences of retention.

    Args:
        table: :func:`~noisybox.report.summary.retention_differences`' frame.
        style: the output's :class:`Style`.
        loss_order: the config's loss names, for the row order.

    Returns:
        ``(title, table)`` per detector: one row per noisy eta and compared loss row with
        its seed pairs, the noisy mAP difference in AP points, and per metric of
        :data:`~noisybox.report.summary.RETENTION_METRICS` the mean per-seed retention
        of the row and of its baseline and their paired difference (a fraction), each
        difference with its 95 % interval, seeds ahead and Wilcoxon / sign-test p-values,
        and the reading of :func:`retention_reading`.
    """
    out = []
    for (det, bb), rows in table.groupby(["detector", "backbone"], sort=True):
        rows = sort_by_loss_order(rows, loss_order, by=("eta",))
        lines = []
        for _, r in rows.iterrows():
            line = [f"{r['eta']:g}", style.escape(r["label"]), style.escape(r["baseline_label"])]
            line += [str(r["n_pairs"]), _fmt_stat(r, "map", 100, 2)]
            for m in RETENTION_METRICS:
                line.append(
                    f"{_fmt_fraction(r[f'retention_{m}'])} / "
                    f"{_fmt_fraction(r[f'retention_{m}_baseline'])}"
                )
                line.append(_fmt_stat(r, f"retention_{m}", 1, 3))
            line.append(retention_reading(r))
            lines.append(line)
        cols = ["eta", "Loss", "vs", "pairs", "mAP diff. (points)"]
        for m in RETENTION_METRICS:
            title = COLUMN_TITLES[m]
            cols += [f"{title} retention (loss / vs)", f"{title} retention diff."]
        cols.append("reading")
        frame = pd.DataFrame(lines, columns=[style.escape(c) for c in cols])
        out.append((f"{det} ({bb}): paired difference of retention", frame))
    return out
