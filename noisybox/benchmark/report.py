"""Benchmark report: the paper's Table 3 per noise level, relative improvements, robustness.

Everything here is computed from result records (plain dicts, see
``noisybox.benchmark.runner``), so that a report can be rebuilt from a committed
``records/`` folder alone, and tested on hand-made records.

* **Table 3** (Alpha-IoU paper): per detector and eta, one row per loss with AP50, AP55,
  ..., AP95, mAP and mAP75:95 in percent (2 decimals), mean +- std over seeds, and after
  each alpha variant a ``rela. improv.`` row over its alpha = 1 baseline (the same IoU
  variant: ``alpha-iou@3`` over ``iou``), computed on the seeds where neither collapsed.
* **Collapsed cells** (see ``detect_collapse``) are excluded from means and relative
  improvements; a row whose seeds all collapsed shows ``collapsed`` in every column, a row
  with some collapsed seeds says how many in its label.
* **Robustness** in the convention of detection-robustness benchmarks (Michaelis et al.,
  2019): ``mPC`` = mean performance over the noisy levels eta > 0, ``rPC`` = mPC / clean
  performance (eta = 0), for mAP and mAP75:95.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from noisybox._fileio import atomic_write_text, check_outputs, staged
from noisybox.benchmark.config import CollapseConfig, loss_label
from noisybox.benchmark.curves import convergence_status, curve_summary, curves_frame
from noisybox.benchmark.paired import min_rank_p, paired_stats
from noisybox.benchmark.runner import ResultsFolder, apply_collapse_flags
from noisybox.engine.evaluation import THRESHOLD_METRICS
from noisybox.errors import NoisyboxError

__all__ = [
    "COLUMN_TITLES",
    "TABLE_METRICS",
    "Report",
    "build_report",
    "loss_label",
    "paired_differences",
    "paired_verdicts",
    "records_frame",
    "relative_improvements",
    "robustness_frame",
    "summarize",
    "write_report",
]

TABLE_METRICS: tuple[str, ...] = (*THRESHOLD_METRICS, "map", "map_75_95")
COLUMN_TITLES: dict[str, str] = {
    **{m: f"AP{m[2:]}" for m in THRESHOLD_METRICS},
    "map": "mAP",
    "map_75_95": "mAP75:95",
}
_GROUP = ["detector", "backbone", "eta", "loss", "alpha", "alpha_warmup"]

#: Baseline AP (fraction) below which a relative improvement is not printed as a
#: percentage: +470 % of 0.01 AP is a swing of a near-zero number, not a finding.
REL_FLOOR = 0.01


def _base_variant(loss: str) -> str:
    return loss[len("alpha-") :] if loss.startswith("alpha-") else loss


def records_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: the cell's axes, ``collapsed``, the noise IoU and every metric.

    Metrics stay fractions in [0, 1] here.
    """
    rows = []
    for rec in records:
        cell = rec["cell"]
        row: dict[str, Any] = {
            "cell_id": rec.get("cell_id"),
            "detector": cell["detector"],
            "backbone": cell.get("backbone", ""),
            "loss": cell["loss"],
            "alpha": np.nan if cell.get("alpha") is None else float(cell["alpha"]),
            "alpha_warmup": np.nan
            if cell.get("alpha_warmup") is None
            else float(cell["alpha_warmup"]),
            "eta": float(cell["eta"]),
            "seed": int(cell["seed"]),
            "collapsed": bool(rec.get("collapsed", False)),
            "collapse_reasons": "; ".join(rec.get("collapse_reasons") or []),
            "noise_mean_iou": (rec.get("noise") or {}).get("mean_iou", np.nan),
            "wall_time_s": rec.get("wall_time_s", np.nan),
        }
        metrics = rec.get("metrics") or {}
        for m in TABLE_METRICS:
            row[m] = float(metrics.get(m, np.nan))
        rows.append(row)
    columns = [
        "cell_id",
        *_GROUP,
        "seed",
        "collapsed",
        "collapse_reasons",
        "noise_mean_iou",
        "wall_time_s",
        *TABLE_METRICS,
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (detector, backbone, eta, loss, alpha, alpha_warmup).

    Collapsed cells are excluded from ``<metric>_mean`` / ``<metric>_std`` (``std`` is the
    sample std, ``ddof = 1``; NaN for one seed). ``n`` counts the seeds, ``n_collapsed``
    the collapsed ones, ``seeds`` lists the seeds that were averaged.
    """
    out = []
    for key, group in frame.groupby(_GROUP, dropna=False, sort=False):
        ok = group[~group["collapsed"]]
        row: dict[str, Any] = dict(zip(_GROUP, key, strict=True))
        row["label"] = loss_label(row["loss"], _none(row["alpha"]), _none(row["alpha_warmup"]))
        row["n"] = len(group)
        row["n_collapsed"] = int(group["collapsed"].sum())
        row["seeds"] = " ".join(str(s) for s in sorted(ok["seed"]))
        row["noise_mean_iou"] = float(group["noise_mean_iou"].mean())
        for m in TABLE_METRICS:
            vals = ok[m].to_numpy(dtype=float)
            row[f"{m}_mean"] = float(vals.mean()) if len(vals) else np.nan
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else np.nan
        out.append(row)
    return pd.DataFrame(out)


def _none(value: Any) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def _order_key(row: pd.Series, order: dict[str, int]) -> tuple[Any, ...]:
    base = _base_variant(row["loss"])
    alpha = _none(row["alpha"])
    return (
        order.get(base, len(order)),
        base,
        0 if alpha in (None, 1.0) else 1,
        alpha or 0.0,
        row["loss"],
        _none(row["alpha_warmup"]) or -1.0,
    )


def _baseline_of(row: pd.Series, rows: pd.DataFrame) -> pd.Series | None:
    alpha = _none(row["alpha"])
    if alpha is None or alpha == 1 or row["loss"] in ("torchvision", "log-iou"):
        return None
    base = _base_variant(row["loss"])
    cands = rows[
        rows["loss"].map(_base_variant).eq(base)
        & rows["alpha"].eq(1.0)
        & rows["loss"].ne("torchvision")
    ]
    if cands.empty:
        return None
    # prefer the plain variant (``iou``) over ``alpha-iou@1``, and no warm-up
    cands = cands.assign(_plain=cands["loss"].ne(base), _w=cands["alpha_warmup"].notna())
    return cands.sort_values(["_plain", "_w"]).iloc[0]


def relative_improvements(frame: pd.DataFrame) -> pd.DataFrame:
    """Per alpha variant and its alpha = 1 baseline, per detector and eta: relative
    improvement of every metric (percent of the baseline), and a paired comparison.

    Only seeds where both cells exist and neither collapsed are used. Columns:
    ``<metric>_rel`` (100 * (variant - baseline) / baseline, NaN if the baseline is 0 or
    no seed pairs), ``<metric>_diff`` (mean paired difference, fraction),
    ``<metric>_diff_std`` (its std over seeds), ``n_pairs``, ``baseline_label``, and
    ``<metric>_beyond_spread`` (``|diff| > diff_std``, the seed-to-seed spread; NaN with
    fewer than 2 pairs), ``<metric>_ahead`` (seeds on which the variant is higher), and
    from :func:`~noisybox.benchmark.paired.paired_stats`: ``<metric>_ci_low`` /
    ``<metric>_ci_high`` (95 % t interval of the mean difference), ``<metric>_wilcoxon_p``
    and ``<metric>_sign_p`` (exact two-sided p-values). ``<metric>_rel`` is NaN when the
    baseline is below one AP point (:data:`REL_FLOOR`): a percentage of a near-zero value
    says nothing.
    """
    out = []
    for key, pairs in _seed_pairs(frame):
        res: dict[str, Any] = {**key, "n_pairs": len(pairs)}
        for m in TABLE_METRICS:
            v = pairs[f"{m}_v"].to_numpy(dtype=float)
            w = pairs[f"{m}_b"].to_numpy(dtype=float)
            mean_v, mean_b = (float(v.mean()), float(w.mean())) if len(v) else (np.nan, np.nan)
            res[f"{m}_rel"] = (
                100.0 * (mean_v - mean_b) / mean_b if len(v) and mean_b >= REL_FLOOR else np.nan
            )
            res[f"{m}_baseline"] = mean_b
            diff = v - w
            res[f"{m}_diff"] = float(diff.mean()) if len(diff) else np.nan
            res[f"{m}_diff_std"] = float(diff.std(ddof=1)) if len(diff) > 1 else np.nan
            res[f"{m}_beyond_spread"] = (
                bool(abs(res[f"{m}_diff"]) > res[f"{m}_diff_std"]) if len(diff) > 1 else np.nan
            )
            res[f"{m}_ahead"] = int((diff > 0).sum())
            st = paired_stats(diff)
            for k in ("ci_low", "ci_high", "wilcoxon_p", "sign_p"):
                res[f"{m}_{k}"] = st[k]
        out.append(res)
    columns = ["detector", "backbone", "eta", "label", "baseline_label", "n_pairs"]
    for m in TABLE_METRICS:
        columns += [
            f"{m}_rel",
            f"{m}_baseline",
            f"{m}_diff",
            f"{m}_diff_std",
            f"{m}_beyond_spread",
            f"{m}_ahead",
            f"{m}_ci_low",
            f"{m}_ci_high",
            f"{m}_wilcoxon_p",
            f"{m}_sign_p",
        ]
    return pd.DataFrame(out, columns=columns)


def _seed_pairs(frame: pd.DataFrame) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """``(key, pairs)`` per alpha variant with a baseline: ``key`` holds ``detector``,
    ``backbone``, ``eta``, ``label`` and ``baseline_label``; ``pairs`` has ``seed`` and
    ``<metric>_v`` / ``<metric>_b`` for the seeds where both cells exist and neither
    collapsed."""
    summary = summarize(frame)
    for (det, bb, eta), rows in summary.groupby(["detector", "backbone", "eta"], sort=False):
        for _, row in rows.iterrows():
            base = _baseline_of(row, rows)
            if base is None:
                continue
            pairs = _cells(frame, row).merge(_cells(frame, base), on="seed", suffixes=("_v", "_b"))
            pairs = pairs[~pairs["collapsed_v"] & ~pairs["collapsed_b"]]
            key = {
                "detector": det,
                "backbone": bb,
                "eta": eta,
                "label": row["label"],
                "baseline_label": base["label"],
            }
            yield key, pairs


def paired_differences(frame: pd.DataFrame) -> pd.DataFrame:
    """Per alpha variant, eta and seed: ``<metric>`` = variant minus its baseline (fraction).

    Columns ``detector, backbone, eta, label, baseline_label, seed`` and one per
    ``TABLE_METRICS``; collapsed cells have no row (as in :func:`relative_improvements`).
    """
    out = []
    for key, pairs in _seed_pairs(frame):
        for _, pair in pairs.iterrows():
            res: dict[str, Any] = {**key, "seed": int(pair["seed"])}
            res.update({m: float(pair[f"{m}_v"] - pair[f"{m}_b"]) for m in TABLE_METRICS})
            out.append(res)
    columns = ["detector", "backbone", "eta", "label", "baseline_label", "seed", *TABLE_METRICS]
    return pd.DataFrame(out, columns=columns)


def _cells(frame: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for k in _GROUP:
        value = row[k]
        mask &= (
            frame[k].isna()
            if isinstance(value, float) and math.isnan(value)
            else frame[k].eq(value)
        )
    return frame.loc[mask, ["seed", "collapsed", *TABLE_METRICS]]


def robustness_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """mPC / rPC per detector and loss, for mAP and mAP75:95 (fractions).

    ``clean_<m>`` is the eta = 0 mean, ``mpc_<m>`` the mean over eta > 0 levels of the seed
    means, ``rpc_<m> = mpc / clean``. A level whose seeds all collapsed makes the row's
    ``collapsed`` true and its mPC NaN.
    """
    out = []
    keys = ["detector", "backbone", "loss", "alpha", "alpha_warmup"]
    for key, rows in summary.groupby(keys, dropna=False, sort=False):
        res: dict[str, Any] = dict(zip(keys, key, strict=True))
        res["label"] = rows["label"].iloc[0]
        noisy = rows[rows["eta"] > 0]
        clean = rows[rows["eta"] == 0]
        res["etas"] = " ".join(f"{e:g}" for e in sorted(noisy["eta"]))
        res["collapsed"] = bool((rows["n"] == rows["n_collapsed"]).any())
        for m in ("map", "map_75_95"):
            c = float(clean[f"{m}_mean"].iloc[0]) if len(clean) else np.nan
            vals = noisy[f"{m}_mean"].to_numpy(dtype=float)
            mpc = float(vals.mean()) if len(vals) and not np.isnan(vals).any() else np.nan
            res[f"clean_{m}"] = c
            res[f"mpc_{m}"] = mpc
            res[f"rpc_{m}"] = mpc / c if c > 0 and not math.isnan(mpc) else np.nan
        out.append(res)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------- rendering


@dataclasses.dataclass(frozen=True)
class _Style:
    pm: str
    pct: str
    escape: Callable[[str], str]


_MD = _Style(" ± ", "%", lambda s: s)
_TEX = _Style(
    r" $\pm$ ", r"\%", lambda s: s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
)
_CSV = _Style(" ± ", "%", lambda s: s)


def _fmt_value(mean: float, std: float, style: _Style) -> str:
    if math.isnan(mean):
        return "-"
    text = f"{100 * mean:.2f}"
    if not math.isnan(std):
        text += f"{style.pm}{100 * std:.2f}"
    return text


def _fmt_rel(value: float, style: _Style, baseline: float = math.inf) -> str:
    if not math.isnan(baseline) and baseline < REL_FLOOR:
        return "n/a (below 1 point)"
    return "n/a" if math.isnan(value) else f"{value:.2f}{style.pct}"


def _fmt_p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def _table3_frames(
    frame: pd.DataFrame, style: _Style, loss_order: Sequence[str] = ()
) -> list[tuple[str, pd.DataFrame]]:
    """Display tables (strings) per detector and eta, in Table 3's layout."""
    summary = summarize(frame)
    rel = relative_improvements(frame)
    order = {b: i for i, b in enumerate(dict.fromkeys(_base_variant(n) for n in loss_order))}
    out = []
    for (det, bb, eta), rows in summary.groupby(["detector", "backbone", "eta"], sort=True):
        rows = rows.assign(_k=[_order_key(r, order) for _, r in rows.iterrows()]).sort_values("_k")
        lines = []
        for _, row in rows.iterrows():
            label = style.escape(row["label"])
            if row["n_collapsed"] == row["n"]:
                cells = ["collapsed"] * len(TABLE_METRICS)
                label += f" [collapsed: {row['n_collapsed']}/{row['n']} seeds]"
            else:
                cells = [
                    _fmt_value(row[f"{m}_mean"], row[f"{m}_std"], style) for m in TABLE_METRICS
                ]
                if row["n_collapsed"]:
                    label += f" [{row['n_collapsed']}/{row['n']} seeds collapsed, excluded]"
            lines.append([label, str(row["n"] - row["n_collapsed"]), *cells])
            match = rel[
                (rel["detector"] == det)
                & (rel["backbone"] == bb)
                & (rel["eta"] == eta)
                & (rel["label"] == row["label"])
            ]
            if len(match):
                r = match.iloc[0]
                head = f"rela. improv. (vs {style.escape(r['baseline_label'])})"
                if r["n_pairs"] == 0:
                    rcells = ["n/a (collapsed)"] * len(TABLE_METRICS)
                else:
                    rcells = [
                        _fmt_rel(r[f"{m}_rel"], style, r[f"{m}_baseline"]) for m in TABLE_METRICS
                    ]
                lines.append([head, str(r["n_pairs"]), *rcells])
                if r["n_pairs"] >= 2:
                    pcells = [
                        f"{100 * r[f'{m}_diff']:+.2f}{style.pm}{100 * r[f'{m}_diff_std']:.2f}"
                        + ("*" if r[f"{m}_beyond_spread"] else "")
                        for m in TABLE_METRICS
                    ]
                    lines.append(["paired diff. (points)", str(r["n_pairs"]), *pcells])
                    acells = [f"{r[f'{m}_ahead']}/{r['n_pairs']}" for m in TABLE_METRICS]
                    lines.append(["seeds ahead", str(r["n_pairs"]), *acells])
                    ccells = [
                        f"[{100 * r[f'{m}_ci_low']:+.2f}, {100 * r[f'{m}_ci_high']:+.2f}]"
                        for m in TABLE_METRICS
                    ]
                    lines.append([style.escape("95% CI (points)"), str(r["n_pairs"]), *ccells])
                    tcells = [
                        f"{_fmt_p(r[f'{m}_wilcoxon_p'])} / {_fmt_p(r[f'{m}_sign_p'])}"
                        for m in TABLE_METRICS
                    ]
                    lines.append(["p (Wilcoxon / sign)", str(r["n_pairs"]), *tcells])
        table = pd.DataFrame(
            lines, columns=["Loss", "seeds", *(COLUMN_TITLES[m] for m in TABLE_METRICS)]
        )
        iou = rows["noise_mean_iou"].mean()
        noise = (
            "clean boxes" if eta == 0 else f"noisy boxes, mean IoU with the clean ones {iou:.3f}"
        )
        title = f"{det} ({bb}), eta = {eta:g} ({noise})"
        out.append((title, table))
    return out


VERDICT_METRICS = ("map", "map_75_95", "ap50")


def paired_verdicts(rel: pd.DataFrame, metrics: Sequence[str] = VERDICT_METRICS) -> list[str]:
    """One plain-language line per alpha variant, eta and metric of ``relative_improvements``.

    A difference counts as "higher" or "lower" when the 95 % confidence interval of the
    mean paired difference (t over seeds) excludes 0; otherwise the two losses "cannot be
    told apart" by this run. The exact Wilcoxon signed-rank and sign-test p-values and the
    seeds-ahead tally are given beside it (with n seeds neither test can go below
    ``2 / 2**n``, see :func:`~noisybox.benchmark.paired.min_rank_p`).
    """
    lines = []
    for _, r in rel.sort_values(["detector", "backbone", "eta"], kind="stable").iterrows():
        head = f"eta {r['eta']:g}, {r['detector']} ({r['backbone']}): {r['label']} vs {r['baseline_label']}"
        n = int(r["n_pairs"])
        if n < 2:
            lines.append(f"{head}: {n} seed pair(s), no spread to compare with")
            continue
        parts = []
        for m in metrics:
            diff = 100 * r[f"{m}_diff"]
            low, high = 100 * r[f"{m}_ci_low"], 100 * r[f"{m}_ci_high"]
            if low > 0 or high < 0:
                verdict = ("higher" if diff > 0 else "lower") + ", the 95% CI excludes 0"
            else:
                verdict = "the 95% CI includes 0: cannot be told apart"
            parts.append(
                f"{COLUMN_TITLES[m]} {diff:+.2f} points (95% CI {low:+.2f} to {high:+.2f}; "
                f"Wilcoxon p {_fmt_p(r[f'{m}_wilcoxon_p'])}, sign p {_fmt_p(r[f'{m}_sign_p'])}; "
                f"{r[f'{m}_ahead']}/{n} seeds ahead; {verdict})"
            )
        lines.append(f"{head}: " + "; ".join(parts))
    return lines


def _min_pairs(rel: pd.DataFrame) -> int:
    return int(rel["n_pairs"].min()) if len(rel) else 0


def _markdown_table(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(table.columns) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def _robustness_display(rob: pd.DataFrame, style: _Style) -> pd.DataFrame:
    lines = []
    for _, r in rob.iterrows():
        label = style.escape(r["label"])
        if r["collapsed"]:
            label += " [collapsed at some eta]"
        row = [f"{r['detector']} ({r['backbone']})", label, r["etas"] or "-"]
        for m in ("map", "map_75_95"):
            for k in ("clean", "mpc"):
                v = r[f"{k}_{m}"]
                row.append(
                    "collapsed"
                    if (k == "mpc" and r["collapsed"] and math.isnan(v))
                    else ("-" if math.isnan(v) else f"{100 * v:.2f}")
                )
            v = r[f"rpc_{m}"]
            row.append("-" if math.isnan(v) else f"{100 * v:.1f}{style.pct}")
        lines.append(row)
    cols = [
        "Detector",
        "Loss",
        "noisy etas",
        "mAP clean",
        "mAP mPC",
        "mAP rPC",
        "mAP75:95 clean",
        "mAP75:95 mPC",
        "mAP75:95 rPC",
    ]
    return pd.DataFrame(lines, columns=cols)


def _curve_section(
    table: pd.DataFrame, status: dict[str, Any], loss_order: Sequence[str] = ()
) -> list[str]:
    """Markdown of the learning-curve table and the convergence check."""
    order = {b: i for i, b in enumerate(dict.fromkeys(_base_variant(n) for n in loss_order))}

    def key(label: str) -> tuple[int, str, int, str]:
        loss = label.split("@")[0].split(" ")[0]
        base = _base_variant(loss)
        return (order.get(base, len(order)), base, int("@" in label), label)

    table = table.assign(_k=[key(label) for label in table["label"]])
    lines = []
    for _, r in table.sort_values(["detector", "backbone", "eta", "_k"], kind="stable").iterrows():
        row = [f"{r['eta']:g}", r["label"], str(r["n"]), str(r["points"])]
        for m in ("map", "map_75_95"):
            row += [
                _fmt_value(r[f"{m}_final_mean"], r[f"{m}_final_std"], _MD),
                _fmt_value(r[f"{m}_peak_mean"], r[f"{m}_peak_std"], _MD),
                f"{r[f'{m}_peak_epoch']:g}",
                _fmt_value(r[f"{m}_drop_mean"], r[f"{m}_drop_std"], _MD),
            ]
        lines.append(row)
    cols = ["eta", "Loss", "seeds", "evals"]
    for m in ("mAP", "mAP75:95"):
        cols += [f"{m} final", f"{m} peak", "peak epoch", "drop"]
    parts = [
        "",
        "## Learning curves",
        "",
        "Clean-test AP (%) during training, mean ± std over seeds. `final` is the value "
        "after the last epoch, the pre-registered result. `peak` (the best value on the "
        "curve, median epoch over seeds) and `drop` (peak minus final, per seed) are read off "
        "the test set: they show the dynamics (learning the shared signal, then fitting the "
        "noise) and are not a result to rank losses by.",
        "",
        _markdown_table(pd.DataFrame(lines, columns=cols)),
    ]
    checked = status["checked"]
    if checked or status["unknown"]:
        parts += ["", "## Convergence of clean training", ""]
    if checked:
        parts.append(
            f"{status['converged']} of {checked} clean-box (eta = 0) cells converged: their "
            "mean mAP over the last quarter of the epochs is within half a point of the final "
            "value."
            + (
                f" Not converged: {', '.join(f'`{c}`' for c in status['failed'])}."
                if status["failed"]
                else ""
            )
        )
    if status["unknown"]:
        parts.append(
            f"{status['unknown']} clean cell(s) have too few evaluations in their last quarter "
            "to check (set `eval_every` in the schedule)."
        )
    return parts


@dataclasses.dataclass
class Report:
    """A rendered report: the Markdown text and the files written (if any)."""

    markdown: str
    collapsed: list[dict[str, Any]]
    files: list[Path] = dataclasses.field(default_factory=list)


def build_report(
    records: Sequence[dict[str, Any]],
    *,
    thresholds: CollapseConfig | None = None,
    loss_order: Sequence[str] = (),
    title: str = "noisybox benchmark",
) -> tuple[Report, dict[str, Any]]:
    """Render the report of a set of records (collapse flags recomputed from all of them).

    Returns:
        The report, and the data behind it: ``frame`` (per record), ``summary``,
        ``relative``, ``differences`` (per seed pair), ``robustness`` (DataFrames) and
        ``latex`` (text).
    """
    if thresholds is not None:
        records = apply_collapse_flags(list(records), thresholds)
    frame = records_frame(records)
    parts = [f"# {title}", ""]
    if frame.empty:
        parts.append("No finished cells yet.")
        return Report("\n".join(parts) + "\n", []), {"frame": frame}
    parts.append(
        "AP on the clean test set, percent, mean ± std over seeds (`seeds` = seeds averaged). "
        "Collapsed cells are excluded from means and relative improvements. "
        "`paired diff.`: mean ± std over seeds of the per-seed difference to the baseline, "
        "in AP points; `*` marks a mean difference larger than that seed-to-seed spread. "
        "`95% CI`: t interval of the mean difference; `p`: exact two-sided Wilcoxon "
        "signed-rank / sign-test p-values. Relative improvements over a baseline below one "
        "AP point are not given as percentages."
    )
    status = convergence_status(records)
    if status["not_converged"]:
        parts += [
            "",
            f"**Warning: {status['not_converged']} of {status['checked']} clean-box (eta = 0) "
            "cells did not converge** (their mean mAP over the last quarter of the epochs is "
            "more than half a point from the final value): the detectors were still learning "
            "when training stopped, so this study measures the under-fit regime. See "
            "'Convergence of clean training' below.",
        ]
    latex = []
    for title3, table in _table3_frames(frame, _MD, loss_order):
        parts += ["", f"## {title3}", "", _markdown_table(table)]
    for title3, table in _table3_frames(frame, _TEX, loss_order):
        caption = _TEX.escape(title3)
        latex.append(
            table.to_latex(
                index=False,
                escape=False,
                caption=caption,
                column_format="l" + "r" * (len(table.columns) - 1),
            )
        )
    summary = summarize(frame)
    rob = robustness_frame(summary)
    parts += [
        "",
        "## Robustness to noisy boxes",
        "",
        "mPC: mean over the noisy levels (eta > 0) of the seed-mean AP; rPC: mPC / clean (eta = 0).",
        "",
        _markdown_table(_robustness_display(rob, _MD)),
    ]
    latex.append(
        _robustness_display(rob, _TEX).to_latex(
            index=False, escape=False, caption="Robustness to noisy boxes (mPC, rPC)"
        )
    )
    rel = relative_improvements(frame)
    verdicts = paired_verdicts(rel)
    if verdicts:
        parts += [
            "",
            "## Paired comparison over seeds",
            "",
            "Mean of the per-seed difference (alpha variant minus baseline, same noise, "
            "initialisation and data order) with its 95% confidence interval (t over seeds), "
            "exact two-sided Wilcoxon signed-rank and sign-test p-values, and the seeds ahead. "
            f"With {_min_pairs(rel)} seed pairs neither rank test can give p below "
            f"{min_rank_p(_min_pairs(rel)):.3f}.",
            "",
            *(f"- {line}" for line in verdicts),
        ]
    curves = curves_frame(records)
    curve_table = curve_summary(curves) if not curves.empty else pd.DataFrame()
    if not curve_table.empty and int(curve_table["points"].max()) >= 2:
        parts += _curve_section(curve_table, status, loss_order)
    collapsed = [r for r in records if r.get("collapsed")]
    if collapsed:
        parts += ["", f"## Collapsed cells ({len(collapsed)})", ""]
        parts += [
            f"- `{r['cell_id']}`: {'; '.join(r.get('collapse_reasons') or [])}" for r in collapsed
        ]
    return Report("\n".join(parts) + "\n", collapsed), {
        "frame": frame,
        "summary": summary,
        "relative": rel,
        "differences": paired_differences(frame),
        "robustness": rob,
        "curves": curves,
        "curve_summary": curve_table,
        "latex": "\n".join(latex),
    }


def write_report(
    out_dir: str | Path, *, plots: bool = True, records: Sequence[dict[str, Any]] | None = None
) -> Report:
    """Build the report of a results folder and write it to ``out_dir/report/``.

    Files: ``report.md``, ``table3.tex`` (all tables), ``records.csv`` (one row per cell),
    ``summary.csv`` (mean/std per row), ``relative_improvement.csv`` (with the paired
    comparison), ``paired_differences.csv`` (per seed), ``robustness.csv``, and the PNG
    plots of ``noisybox.benchmark.plots``.

    The files are written all or none (:func:`noisybox._fileio.staged`).

    Raises:
        NoisyboxError: ``out_dir`` is not a results folder, its ``benchmark.json`` or a
            record is unreadable, or the report folder is a link into the inputs.
    """
    folder = ResultsFolder(Path(out_dir))
    # the stored config is read as data (not re-validated) so a report needs no torch
    stored = folder.read_stored()["config"]
    try:
        thresholds = CollapseConfig(**stored.get("collapse", {}))
        loss_order = [spec["name"] for spec in stored.get("losses", [])]
    except (TypeError, KeyError, AttributeError) as exc:
        raise NoisyboxError(
            f"Expected the collapse and losses of a benchmark config in {folder.config_json} "
            f"but got {type(exc).__name__}: {exc}"
        ) from None
    if records is None:
        records = folder.load_records()
    check_outputs(
        {"the report folder": folder.report_dir},
        {"benchmark.json": folder.config_json, "records": folder.records_dir},
        folders=("the report folder",),
    )
    report, data = build_report(
        records,
        thresholds=thresholds,
        loss_order=loss_order,
        title=f"noisybox benchmark `{stored.get('name', folder.root.name)}`",
    )
    with staged():
        report.files = _write_report_files(folder.report_dir, report, data, plots)
    return report


def _write_report_files(out: Path, report: Report, data: dict[str, Any], plots: bool) -> list[Path]:
    files = [out / "report.md"]
    atomic_write_text(files[0], report.markdown)
    if "summary" in data:
        names = {
            "frame": "records.csv",
            "summary": "summary.csv",
            "relative": "relative_improvement.csv",
            "differences": "paired_differences.csv",
            "robustness": "robustness.csv",
            "curves": "learning_curves.csv",
            "curve_summary": "learning_curve_summary.csv",
        }
        for name, file_name in names.items():
            if name in ("curves", "curve_summary") and data[name].empty:
                continue
            path = out / file_name
            atomic_write_text(path, data[name].to_csv(index=False))
            files.append(path)
        path = out / "table3.tex"
        atomic_write_text(path, data["latex"])
        files.append(path)
        if plots:
            from noisybox.benchmark.plots import plot_all

            curves = data["curves"] if not data["curves"].empty else None
            files += plot_all(data["summary"], out / "plots", data["differences"], curves)
    return files
