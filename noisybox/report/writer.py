"""Benchmark report: the paper's Table 3 per noise level, relative improvements, robustness.

The report renders (Markdown, LaTeX, CSV, plots) the numbers of
:mod:`noisybox.report.summary`, computed from result records alone, so that a report
can be rebuilt from a committed ``records/`` folder and tested on hand-made records.

* **Table 3** (Alpha-IoU paper): per detector and eta, one row per loss with AP50, AP55,
  ..., AP95, mAP and mAP75:95 in percent (2 decimals), mean +- std over seeds, and after
  each alpha variant a ``rela. improv.`` row over its alpha = 1 baseline (the same IoU
  variant: ``alpha-iou@3`` over ``iou``; the rule is
  :func:`noisybox.study.collapse_flags.baseline_of`), computed on the seeds where neither
  collapsed.
* **Collapsed cells** (see :func:`~noisybox.study.collapse_flags.detect_collapse`) are
  excluded from means and relative improvements; a row whose seeds all collapsed shows ``collapsed`` in every column, a row
  with some collapsed seeds says how many in its label.
* **Robustness** in the convention of detection-robustness benchmarks (Michaelis et al.,
  2019): ``mPC`` = mean performance over the noisy levels eta > 0, ``rPC`` = mPC / clean
  performance (eta = 0), for mAP and mAP75:95; and, for studies under a noise model with
  published retention (``oamil``), the **retention** of AP50 and AP75 at each level (AP at
  eta / AP at 0) beside the published retention under OA-MIL's noise
  (:data:`~noisybox.report.summary.PUBLISHED_RETENTION`).
* **Paired difference to a reference loss**, for studies whose config sets
  ``report: {reference: <loss>}``: every other loss row against the reference, seed by
  seed, with the statistics of the alpha-variant comparison (95 % t interval, Wilcoxon and
  sign-test p-values, seeds ahead) for mAP, AP50, AP75 and mAP75:95, and a compact table
  per loss: clean mAP, mAP and its retention at each noisy eta, mAP difference to the
  reference at each eta.
* **Robustness as retention, paired**: per noisy eta, each alpha variant against its
  baseline (and, with a reference, every loss against it), the paired difference of
  retention (AP at eta over the same seed's clean AP, for mAP and mAP75:95) with its 95 %
  interval and exact p-values, beside the paired difference of noisy mAP, and the reading
  the intervals support (:func:`~noisybox.report.tables.retention_reading`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from noisybox._fileio import atomic_write_text, check_outputs, staged
from noisybox.errors import NoisyboxError
from noisybox.report.learning_curves import (
    convergence_status,
    curve_summary,
    curves_frame,
    describe_gaps,
)
from noisybox.report.paired import intervals_excluding_zero, min_rank_p
from noisybox.report.summary import (
    COLUMN_TITLES,
    REL_FLOOR,
    TABLE_METRICS,
    paired_differences,
    records_frame,
    reference_summary,
    relative_improvements,
    retention_differences,
    robustness_frame,
    summarize,
)
from noisybox.report.tables import (
    MD,
    TEX,
    condition_overview,
    curve_section,
    markdown_table,
    min_pairs,
    paired_verdicts,
    reference_paired_frames,
    reference_summary_display,
    retention_paired_frames,
    retention_section,
    robustness_display,
    sort_by_loss_order,
    table3_frames,
)
from noisybox.study.collapse_flags import apply_collapse_flags
from noisybox.study.config import NO_BOX_NOISE, CollapseConfig, NoiseConfig, loss_label
from noisybox.study.protocol import protocol_section
from noisybox.study.provenance import UNKNOWN_CODE, code_versions, describe_code
from noisybox.study.results import ResultsFolder

# the numbers are computed in noisybox.report.summary; re-exported as the report's API
__all__ = [
    "COLUMN_TITLES",
    "REL_FLOOR",
    "TABLE_METRICS",
    "Report",
    "build_report",
    "loss_label",
    "paired_differences",
    "paired_verdicts",
    "record_conditions",
    "records_frame",
    "relative_improvements",
    "retention_differences",
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
    reference: str | None = None,
    conditions: Sequence[str] = (),
) -> tuple[Report, dict[str, Any]]:
    """Render the report of a set of records (collapse flags recomputed from all of them).

    Records of a study with several noise conditions (``cell.condition`` set) get one
    section per condition, each the report of that condition's records and the clean
    (eta = 0) records every condition shares, so that paired comparisons stay within a
    condition; see :func:`_condition_report`.

    Args:
        records: result records.
        thresholds: the collapse thresholds (``None``: the records' own flags).
        loss_order: the config's loss names, for the row order.
        title: the report's heading.
        reference: the label of the loss row every other one is compared with in a
            "Paired difference to <reference>" section (the config's ``report.reference``);
            ``None`` for no such section.
        conditions: the config's noise condition labels, for the order of their sections
            (conditions of the records not named here follow in record order).

    Returns:
        The report, and the data behind it: ``frame`` (per record), ``summary``,
        ``relative``, ``differences`` (per seed pair), ``robustness`` (DataFrames),
        ``latex`` (text) and, with ``reference``, ``reference_summary``,
        ``reference_paired`` and ``reference_differences`` (DataFrames). With several
        noise conditions the DataFrames have a first column ``condition`` (empty in
        ``frame`` for the shared clean cells) and ``by_condition`` holds each
        condition's own data.
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
    labels = record_conditions(records, conditions)
    if labels and (len(labels) > 1 or len(conditions) > 1):
        sections, data = _condition_report(records, labels, loss_order, reference)
    else:
        sections, data = _sections(records, frame, status, loss_order, reference)
    parts += sections
    collapsed = [r for r in records if r.get("collapsed")]
    if collapsed:
        parts += ["", f"## Collapsed cells ({len(collapsed)})", ""]
        parts += [
            f"- `{r['cell_id']}`: {'; '.join(r.get('collapse_reasons') or [])}" for r in collapsed
        ]
    return Report("\n".join(parts) + "\n", collapsed), data


def record_conditions(records: Sequence[dict[str, Any]], order: Sequence[str] = ()) -> list[str]:
    """The noise condition labels of the records (``cell.condition``), in ``order`` first.

    >>> cell = lambda c: {"cell": {"condition": c} if c else {}}
    >>> record_conditions([cell(None), cell("missing"), cell("uniform")], ["uniform", "extra"])
    ['uniform', 'missing']
    """
    found = {r["cell"].get("condition") for r in records} - {None}
    return [c for c in order if c in found] + sorted(found - set(order))


def _sections(
    records: Sequence[dict[str, Any]],
    frame: pd.DataFrame,
    status: dict[str, Any],
    loss_order: Sequence[str],
    reference: str | None,
) -> tuple[list[str], dict[str, Any]]:
    """The report's sections after its introduction, and its data (see :func:`build_report`)."""
    parts: list[str] = []
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
    rob = robustness_frame(summary, retention=("ap50", "ap75") if _published_noise(records) else ())
    rob = sort_by_loss_order(rob, loss_order)
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
    retention = retention_differences(frame)
    if len(rel):
        section, tex = _retention_section(
            retention, rel, "Retention: alpha variant minus baseline", "its baseline", loss_order
        )
        parts += section
        latex += tex
    extra: dict[str, Any] = {}
    if reference is not None:
        section, tex, extra = _reference_section(frame, summary, reference, loss_order)
        parts += section
        latex += tex
    curves = curves_frame(records)
    curve_table = curve_summary(curves) if not curves.empty else pd.DataFrame()
    if not curve_table.empty and int(curve_table["points"].max()) >= 2:
        parts += curve_section(curve_table, status, loss_order)
    return parts, {
        "frame": frame,
        "summary": summary,
        "relative": rel,
        "differences": paired_differences(frame),
        "robustness": rob,
        "retention": retention,
        "curves": curves,
        "curve_summary": curve_table,
        "latex": "\n".join(latex),
        **extra,
    }


def _condition_report(
    records: Sequence[dict[str, Any]],
    labels: Sequence[str],
    loss_order: Sequence[str],
    reference: str | None,
) -> tuple[list[str], dict[str, Any]]:
    """One section per noise condition: the report of its records and of the clean cells
    (eta = 0, no condition) all conditions share, its headings one level down."""
    parts = [
        "",
        f"Noise conditions: {', '.join(f'`{c}`' for c in labels)}. Each has its own "
        "section below. The clean cells (eta = 0) are trained once and are every "
        "condition's clean reference, so they appear in each section.",
    ]
    by_condition: dict[str, dict[str, Any]] = {}
    latex = []
    for label in labels:
        mine = [r for r in records if r["cell"].get("condition") in (None, label)]
        sub_frame = records_frame(mine)
        sections, data = _sections(mine, sub_frame, convergence_status(mine), loss_order, reference)
        by_condition[label] = data
        parts += ["", f"## Noise condition `{label}`", "", _describe_condition(mine, label)]
        parts += [f"#{line}" if line.startswith("#") else line for line in sections]
        latex.append(f"% noise condition {label}\n{data['latex']}")
    frame = records_frame(records)
    frame.insert(0, "condition", [r["cell"].get("condition") or "" for r in records])
    out: dict[str, Any] = {"frame": frame, "latex": "\n".join(latex)}
    for key in by_condition[labels[0]]:
        if key in ("frame", "latex"):
            continue
        tables = [data[key].assign(condition=label) for label, data in by_condition.items()]
        # an empty table (no alpha variant, no curves) keeps its columns, as in one condition
        table = pd.concat([t for t in tables if not t.empty] or tables[:1], ignore_index=True)
        out[key] = table[["condition", *(c for c in table.columns if c != "condition")]]
    out["by_condition"] = by_condition
    overview = [
        "",
        "## Noise conditions side by side",
        "",
        "mAP (percent, mean ± std over seeds, collapsed cells left out) per loss and noise "
        "condition at each eta; eta = 0 is the shared clean cell.",
        *condition_overview(out["summary"], loss_order),
    ]
    return parts[:2] + overview + parts[2:], out


def _describe_condition(records: Sequence[dict[str, Any]], label: str) -> str:
    """One line: the condition's box noise and annotation-level noise (from its records)."""
    noise = next((r.get("noise") or {} for r in records if r["cell"].get("condition") == label), {})
    model = noise.get("model", "?")
    kinds = ", ".join(f"`{k}`" for k in noise.get("corruptions") or [])
    boundary = f" (boundary `{noise['boundary']}`)" if "boundary" in noise else ""
    if model == NO_BOX_NOISE:
        text = f"{kinds} at the rate eta, no box noise"
    elif kinds:
        text = f"box noise `{model}`{boundary} and {kinds} at the rate eta"
    else:
        text = f"box noise `{model}`{boundary} only"
    return f"Training boxes at each eta > 0: {text}."


def _published_noise(records: Sequence[dict[str, Any]]) -> bool:
    """Whether the records' noise model has published retention to compare with."""
    from noisybox.report.summary import RETENTION_MODELS

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
            "more than half a point from the final value). "
            + (f"{gaps} " if (gaps := describe_gaps(list(status["gaps"].values()))) else "")
            + "See 'Convergence of clean training' below.",
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
        + _rank_floor(min_pairs(rel)),
        "",
        *(f"- {line}" for line in verdicts),
    ]


def _rank_floor(pairs: int) -> str:
    """The smallest p-value the exact rank tests can give with ``pairs`` seed pairs.

    >>> _rank_floor(1)
    'With 1 seed pair neither rank test can give p below 1.000.'
    >>> _rank_floor(6)
    'With 6 seed pairs neither rank test can give p below 0.031.'
    """
    noun = "seed pair" if pairs == 1 else "seed pairs"
    return f"With {pairs} {noun} neither rank test can give p below {min_rank_p(pairs):.3f}."


def _reference_section(
    frame: pd.DataFrame, summary: pd.DataFrame, reference: str, loss_order: Sequence[str]
) -> tuple[list[str], list[str], dict[str, Any]]:
    """Markdown and LaTeX of the comparison of every loss row with ``reference``, and
    its frames (see :func:`build_report`)."""
    paired = relative_improvements(frame, reference)
    compact = reference_summary(summary, paired)
    n = min_pairs(paired[paired["n_pairs"] > 0])
    parts = [
        "",
        f"## Paired difference to {reference}",
        "",
        f"Every loss against `{reference}`, seed by seed (the same seed gives both cells the "
        "same initial weights, data order and noisy file), collapsed cells left out. First "
        "per loss: mAP (percent, mean ± std over seeds) at each eta, its retention (mAP at "
        f"eta over mAP at eta = 0, seed means) and the mean paired mAP difference to "
        f"`{reference}` in AP points with its 95% CI (t over seeds). Then per detector and "
        "eta: the mean paired difference in points [95% CI], the seeds ahead among the "
        "seed pairs, and the exact two-sided Wilcoxon signed-rank / sign-test p-values."
        + (" " + _rank_floor(n) if n else ""),
        "",
        markdown_table(reference_summary_display(compact, MD, reference, loss_order)),
        *_chance_line(paired, reference),
    ]
    if paired.empty:
        parts += ["", f"No finished cell of `{reference}` yet: nothing to pair with."]
    for title, table in reference_paired_frames(paired, MD, loss_order):
        parts += ["", f"### {title}", "", markdown_table(table)]
    latex = [
        reference_summary_display(compact, TEX, reference, loss_order).to_latex(
            index=False, escape=False, caption=TEX.escape(f"Paired difference to {reference}")
        )
    ]
    for title, table in reference_paired_frames(paired, TEX, loss_order):
        latex.append(
            table.to_latex(
                index=False,
                escape=False,
                caption=TEX.escape(title),
                column_format="l" + "r" * (len(table.columns) - 1),
            )
        )
    retention = retention_differences(frame, reference)
    if len(paired):
        section, tex = _retention_section(
            retention, paired, f"Retention difference to {reference}", f"`{reference}`", loss_order
        )
        parts += section
        latex += tex
    data = {
        "reference_summary": compact,
        "reference_paired": paired,
        "reference_differences": paired_differences(frame, reference),
        "reference_retention": retention,
    }
    return parts, latex, data


def _retention_section(
    retention: pd.DataFrame,
    paired: pd.DataFrame,
    heading: str,
    versus: str,
    loss_order: Sequence[str],
) -> tuple[list[str], list[str]]:
    """Markdown and LaTeX of the paired differences of retention (a ``###`` subsection;
    nothing when no comparison is under noise, one sentence when no clean cell pairs)."""
    if not (paired["eta"] > 0).any():
        return [], []
    parts = ["", f"### {heading}", ""]
    if retention.empty:
        parts.append(
            "Retention needs each seed's clean cell (eta = 0) of both losses; these records "
            "have none for the comparisons under noise, so no retention difference is given "
            "and nothing here says whether a loss is more or less robust."
        )
        return parts, []
    parts += [
        "Robustness is retention: per seed, a loss's AP at eta over its own clean AP "
        "(eta = 0) on the same seed, for mAP and mAP75:95. Per noisy eta: the mean of that "
        f"per-seed retention for the loss and for {versus}, and their mean paired difference "
        "(a fraction) with its 95% CI (t over seeds), the seeds ahead and the exact "
        "two-sided Wilcoxon signed-rank / sign-test p-values; beside it the paired "
        "difference of noisy mAP on the same seeds, in AP points. Only seeds where both "
        "losses have a clean and a noisy cell, none collapsed. Retention here is a mean of "
        "per-seed ratios, so it can differ in the last digit from the rPC above (a ratio of "
        'seed means). `reading`: "higher (lower) mAP under noise" only where the mAP '
        'interval excludes 0, "more (less) robust" only where the mAP retention interval '
        "excludes 0; otherwise they cannot be told apart at this scale.",
    ]
    latex = []
    for title, table in retention_paired_frames(retention, MD, loss_order):
        parts += ["", f"#### {title}", "", markdown_table(table)]
    for title, table in retention_paired_frames(retention, TEX, loss_order):
        latex.append(
            table.to_latex(
                index=False,
                escape=False,
                caption=TEX.escape(f"{heading}, {title}"),
                column_format="ll" + "l" + "r" * (len(table.columns) - 4) + "l",
            )
        )
    return parts, latex


def _chance_line(paired: pd.DataFrame, reference: str) -> list[str]:
    """One paragraph: how many mAP intervals of the comparison exclude 0, against the
    number chance alone gives at the 5 % level (nothing without an interval)."""
    if paired.empty:
        return []
    count = intervals_excluding_zero(list(paired["map_ci_low"]), list(paired["map_ci_high"]))
    if not count["compared"]:
        return []
    return [
        "",
        f"mAP: {count['compared']} comparisons with `{reference}` have a 95% CI (every loss "
        f"at every eta with at least 2 seed pairs); in {count['above']} it lies wholly above "
        f"0, in {count['below']} wholly below. If no loss differed from `{reference}`, about "
        f"{count['by_chance']:.1f} would exclude 0 by chance at the 5% level; no correction "
        "for the number of comparisons is applied.",
    ]


def write_report(
    out_dir: str | Path,
    *,
    plots: bool = True,
    records: Sequence[dict[str, Any]] | None = None,
    reference: str | None = None,
) -> Report:
    """Build the report of a results folder and write it to ``out_dir/report/``.

    Files: ``report.md``, ``table3.tex`` (all tables), ``records.csv`` (one row per cell),
    ``summary.csv`` (mean/std per row), ``relative_improvement.csv`` (with the paired
    comparison), ``paired_differences.csv`` (per seed), ``robustness.csv``,
    ``retention_paired.csv`` (the paired difference of retention, alpha variants against
    their baselines; not written without one under noise with its clean cells), and the PNG
    plots of ``noisybox.report.plots``; when the stored config sets
    ``report.reference``, ``reference_summary.csv`` (the compact per-loss table),
    ``reference_paired.csv`` (the comparison with the reference, as
    ``relative_improvement.csv``), ``reference_differences.csv`` (per seed) and
    ``reference_retention.csv`` (the paired difference of retention to the reference).

    ``reference`` (a loss row's label, e.g. ``iou`` or ``alpha-iou@3 (warm-up 0.3)``) compares
    every loss row with that one instead of the stored ``report.reference`` (or where the
    config set none).

    The files are written all or none (:func:`noisybox._fileio.staged`).

    Raises:
        NoisyboxError: ``out_dir`` is not a results folder, its ``benchmark.json`` or a
            record is unreadable, the report folder is a link into the inputs, or
            ``reference`` names no loss row of the records.
    """
    folder = ResultsFolder(Path(out_dir))
    # the stored config is read as data (not re-validated) so a report needs no torch
    stored = folder.read_stored()["config"]
    try:
        thresholds = CollapseConfig(**stored.get("collapse", {}))
        loss_order = [spec["name"] for spec in stored.get("losses", [])]
        stored_reference = (stored.get("report") or {}).get("reference")
        noise = stored.get("noise")
        conditions = [_condition_label(n) for n in noise] if isinstance(noise, list) else []
        if not isinstance(stored_reference, (str, type(None))):
            raise TypeError(f"report.reference is {stored_reference!r}, not a loss label")
    except (TypeError, KeyError, AttributeError) as exc:
        raise NoisyboxError(
            f"Expected the collapse, losses and report of a benchmark config in "
            f"{folder.config_json} but got {type(exc).__name__}: {exc}"
        ) from None
    if records is None:
        from noisybox.study.validate import load_checked_records

        records = load_checked_records(folder)
    if reference is not None and records:
        labels = sorted(
            {
                loss_label(r["cell"]["loss"], r["cell"].get("alpha"), r["cell"].get("alpha_warmup"))
                for r in records
            }
        )
        if reference not in labels:
            raise NoisyboxError(
                f"Expected a reference among the loss rows of {folder.root} "
                f"({', '.join(labels)}) but got {reference!r}"
            )
    reference = reference if reference is not None else stored_reference
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
        reference=reference,
        conditions=conditions,
    )
    report.markdown += _study_notes(folder.read_stored(), records)
    with staged():
        report.files = _write_report_files(folder.report_dir, report, data, plots, loss_order)
    return report


def _study_notes(stored: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """The report's closing sections: what it was evaluated on, the protocol, the code."""
    lines: list[str] = []
    if stored["config"].get("mode") == "calibration":
        lines += [
            "",
            "## Calibration",
            "",
            "These cells trained on the calibration training split with clean boxes and were "
            "evaluated on the **validation** split: a calibration, not a study result. The "
            "test split was not read.",
        ]
    lines += protocol_section(stored)
    lines += ["", "## Code", ""]
    versions = code_versions(records)
    for key, entry in versions.items():
        cells = entry["cells"]
        shown = ", ".join(f"`{c}`" for c in cells[:6]) + (" ..." if len(cells) > 6 else "")
        lines.append(f"- {describe_code(entry['code'])}: {len(cells)} cell(s): {shown}")
        if key == UNKNOWN_CODE:
            lines.append(
                "  These records carry no provenance: which code trained them cannot be told."
            )
    for change in stored.get("code_changes", []):
        lines.append(
            f"- At {change.get('at')} the study was continued with other code "
            f"({', '.join(change.get('from', []))} -> {change.get('to')}), as allowed by "
            "--allow-code-change."
        )
    return "\n".join(lines) + "\n" if lines else ""


def _write_report_files(
    out: Path, report: Report, data: dict[str, Any], plots: bool, loss_order: Sequence[str]
) -> list[Path]:
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
            "reference_summary": "reference_summary.csv",
            "reference_paired": "reference_paired.csv",
            "reference_differences": "reference_differences.csv",
            "retention": "retention_paired.csv",
            "reference_retention": "reference_retention.csv",
        }
        for name, file_name in names.items():
            optional = ("curves", "curve_summary", "retention", "reference_retention")
            if name not in data or (name in optional and data[name].empty):
                continue
            path = out / file_name
            atomic_write_text(path, data[name].to_csv(index=False))
            files.append(path)
        path = out / "table3.tex"
        atomic_write_text(path, data["latex"])
        files.append(path)
        if plots:
            from noisybox.report.plots import plot_all

            groups = data.get("by_condition") or {"": data}
            for label, sub in groups.items():
                curves = sub["curves"] if not sub["curves"].empty else None
                folder = out / "plots" / label if label else out / "plots"
                reference = (
                    (sub["reference_paired"], sub["reference_differences"])
                    if "reference_paired" in sub
                    else None
                )
                files += plot_all(
                    sub["summary"], folder, sub["differences"], curves, reference, loss_order
                )
    return files


def _condition_label(noise: dict[str, Any]) -> str:
    """The label of a stored noise condition (a ``to_dict`` mapping)."""
    return NoiseConfig(
        model=noise["model"],
        corruptions=tuple(noise.get("corruptions", ())),
        name=noise.get("name"),
    ).label
