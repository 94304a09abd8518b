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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from noisybox._fileio import atomic_write_text, check_outputs, staged
from noisybox.benchmark.collapse import apply_collapse_flags
from noisybox.benchmark.config import CollapseConfig, loss_label
from noisybox.benchmark.curves import convergence_status, curve_summary, curves_frame
from noisybox.benchmark.paired import min_rank_p
from noisybox.benchmark.results import ResultsFolder
from noisybox.benchmark.summary import (
    COLUMN_TITLES,
    REL_FLOOR,
    TABLE_METRICS,
    paired_differences,
    records_frame,
    relative_improvements,
    robustness_frame,
    summarize,
)
from noisybox.benchmark.tables import (
    MD,
    TEX,
    curve_section,
    markdown_table,
    min_pairs,
    paired_verdicts,
    retention_section,
    robustness_display,
    table3_frames,
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
    for title3, table in table3_frames(frame, MD, loss_order):
        parts += ["", f"## {title3}", "", markdown_table(table)]
    for title3, table in table3_frames(frame, TEX, loss_order):
        caption = TEX.escape(title3)
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
        markdown_table(robustness_display(rob, MD)),
        *retention_section(rob),
    ]
    latex.append(
        robustness_display(rob, TEX).to_latex(
            index=False, escape=False, caption="Robustness to noisy boxes (mPC, rPC)"
        )
    )
    rel = relative_improvements(frame)
    parts += _verdict_section(rel)
    curves = curves_frame(records)
    curve_table = curve_summary(curves) if not curves.empty else pd.DataFrame()
    if not curve_table.empty and int(curve_table["points"].max()) >= 2:
        parts += curve_section(curve_table, status, loss_order)
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


def _published_noise(records: Sequence[dict[str, Any]]) -> bool:
    """Whether the records' noise model has published retention to compare with."""
    from noisybox.benchmark.summary import RETENTION_MODELS

    return any((r.get("noise") or {}).get("model") in RETENTION_MODELS for r in records)


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
        f"With {min_pairs(rel)} seed pairs neither rank test can give p below "
        f"{min_rank_p(min_pairs(rel)):.3f}.",
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
