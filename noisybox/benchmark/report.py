"""Benchmark report: the paper's Table 3 per noise level, relative improvements, robustness.

The report renders (Markdown, LaTeX, CSV, plots) the numbers of
:mod:`noisybox.benchmark.summary`, computed from result records alone, so that a report
can be rebuilt from a committed ``records/`` folder and tested on hand-made records.

* **Table 3** (Alpha-IoU paper): per detector and eta, one row per loss with AP50, AP55,
  ..., AP95, mAP and mAP75:95 in percent (2 decimals), mean +- std over seeds, and after
  each alpha variant a ``rela. improv.`` row over its alpha = 1 baseline (the same IoU
  variant: ``alpha-iou@3`` over ``iou``; the rule is
  :func:`noisybox.benchmark.collapse.baseline_of`), computed on the seeds where neither
  collapsed.
* **Collapsed cells** (see :func:`~noisybox.benchmark.collapse.detect_collapse`) are
  excluded from means and relative improvements; a row whose seeds all collapsed shows ``collapsed`` in every column, a row
  with some collapsed seeds says how many in its label.
* **Robustness** in the convention of detection-robustness benchmarks (Michaelis et al.,
  2019): ``mPC`` = mean performance over the noisy levels eta > 0, ``rPC`` = mPC / clean
  performance (eta = 0), for mAP and mAP75:95; and, for studies under a noise model with
  published retention (``oamil``), the **retention** of AP50 and AP75 at each level (AP at
  eta / AP at 0) beside the published retention under OA-MIL's noise
  (:data:`~noisybox.benchmark.summary.PUBLISHED_RETENTION`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from noisybox._fileio import atomic_write_text, check_outputs, staged
from noisybox.benchmark.collapse import apply_collapse_flags, base_variant
from noisybox.benchmark.config import CollapseConfig, loss_label, parse_label
from noisybox.benchmark.curves import convergence_status, curve_summary, curves_frame
from noisybox.benchmark.paired import min_rank_p
from noisybox.benchmark.results import ResultsFolder
from noisybox.benchmark.summary import (
    COLUMN_TITLES,
    REL_FLOOR,
    TABLE_METRICS,
    none_if_nan,
    paired_differences,
    records_frame,
    relative_improvements,
    robustness_frame,
    summarize,
)
from noisybox.errors import NoisyboxError

# the numbers are computed in noisybox.benchmark.summary; re-exported as the report's API
__all__ = [
    "COLUMN_TITLES",
    "REL_FLOOR",
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


def _order_key(row: pd.Series, order: dict[str, int]) -> tuple[Any, ...]:
    base = base_variant(row["loss"])
    alpha = none_if_nan(row["alpha"])
    return (
        order.get(base, len(order)),
        base,
        0 if alpha in (None, 1.0) else 1,
        alpha or 0.0,
        row["loss"],
        none_if_nan(row["alpha_warmup"]) or -1.0,
    )


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
    order = {b: i for i, b in enumerate(dict.fromkeys(base_variant(n) for n in loss_order))}
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


def _published_noise(records: Sequence[dict[str, Any]]) -> bool:
    """Whether the records' noise model has published retention to compare with."""
    from noisybox.benchmark.summary import RETENTION_MODELS

    return any((r.get("noise") or {}).get("model") in RETENTION_MODELS for r in records)


def _retention_section(rob: pd.DataFrame) -> list[str]:
    """The retention sub-table: AP50 and AP75 at each eta over eta = 0, per detector and
    loss, and the published rows at the same levels."""
    from noisybox.benchmark.summary import PUBLISHED_RETENTION

    etas = sorted({float(c.split("@")[1]) for c in rob.columns if c.startswith("retention_ap50@")})
    if not etas:
        return []
    cols = ["Detector", "Loss"] + [f"{m} @{e:g}" for e in etas for m in ("AP50", "AP75")]
    rows = []
    for _, r in rob.iterrows():
        row = [f"{r['detector']} ({r['backbone']})", _MD.escape(r["label"])]
        for e in etas:
            for m in ("ap50", "ap75"):
                v = r.get(f"retention_{m}@{e:g}", float("nan"))
                row.append("-" if v is None or math.isnan(v) else f"{v:.2f}")
        rows.append(row)
    for name, values in PUBLISHED_RETENTION.items():
        metric = "AP75" if name.endswith("AP75") else "AP50"
        row = ["published (OA-MIL noise)", name]
        for e in etas:
            for m in ("AP50", "AP75"):
                v = values.get(round(e, 6)) if m == metric else None
                row.append("-" if v is None else f"{v:.2f}")
        rows.append(row)
    return [
        "",
        "### Retention per noise level",
        "",
        "AP at eta over AP at eta = 0 (seed means). The published rows are OA-MIL's noise at "
        "r = eta (model `oamil`) on VOC2007 and COCO with full-size detectors (the OA-MIL and "
        "SSD-Det tables): compare the shape, AP75 falling far faster than AP50, not the "
        "absolute numbers.",
        "",
        _markdown_table(pd.DataFrame(rows, columns=cols)),
    ]


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
    order = {b: i for i, b in enumerate(dict.fromkeys(base_variant(n) for n in loss_order))}

    def key(label: str) -> tuple[int, str, int, str]:
        base = base_variant(parse_label(label)[0])
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
    status = convergence_status(records)
    parts += _introduction(status)
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
    rob = robustness_frame(summary, retention=_published_noise(records))
    parts += [
        "",
        "## Robustness to noisy boxes",
        "",
        "mPC: mean over the noisy levels (eta > 0) of the seed-mean AP; rPC: mPC / clean (eta = 0).",
        "",
        _markdown_table(_robustness_display(rob, _MD)),
        *_retention_section(rob),
    ]
    latex.append(
        _robustness_display(rob, _TEX).to_latex(
            index=False, escape=False, caption="Robustness to noisy boxes (mPC, rPC)"
        )
    )
    rel = relative_improvements(frame)
    parts += _verdict_section(rel)
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


def _introduction(status: dict[str, Any]) -> list[str]:
    """How to read the tables, and a warning when clean cells did not converge."""
    parts = [
        "AP on the clean test set, percent, mean ± std over seeds (`seeds` = seeds averaged). "
        "Collapsed cells are excluded from means and relative improvements. "
        "`paired diff.`: mean ± std over seeds of the per-seed difference to the baseline, "
        "in AP points; `*` marks a mean difference larger than that seed-to-seed spread. "
        "`95% CI`: t interval of the mean difference; `p`: exact two-sided Wilcoxon "
        "signed-rank / sign-test p-values. Relative improvements over a baseline below one "
        "AP point are not given as percentages."
    ]
    if status["not_converged"]:
        parts += [
            "",
            f"**Warning: {status['not_converged']} of {status['checked']} clean-box (eta = 0) "
            "cells did not converge** (their mean mAP over the last quarter of the epochs is "
            "more than half a point from the final value): the detectors were still learning "
            "when training stopped, so this study measures the under-fit regime. See "
            "'Convergence of clean training' below.",
        ]
    return parts


def _verdict_section(rel: pd.DataFrame) -> list[str]:
    """Markdown of the paired comparison over seeds (nothing without alpha variants)."""
    verdicts = paired_verdicts(rel)
    if not verdicts:
        return []
    return [
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
