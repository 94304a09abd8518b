"""The sections of a study's report: Table 3, robustness, paired comparisons, retention,
the reference loss, learning curves, and one section per noise condition.

Each function returns Markdown lines (and LaTeX tables) rendered from the numbers of
:mod:`noisybox.report.summary`; :func:`noisybox.report.writer.build_report` puts them
together.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from noisybox.report.learning_curves import (
    convergence_status,
    curve_summary,
    curves_frame,
    describe_gaps,
)
from noisybox.report.paired import intervals_excluding_zero, min_rank_p
from noisybox.report.paired_tables import (
    reference_paired_frames,
    reference_summary_display,
    retention_paired_frames,
)
from noisybox.report.summary import (
    RETENTION_MODELS,
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
    retention_section,
    robustness_display,
    sort_by_loss_order,
    table3_frames,
)
from noisybox.study.spec import NO_BOX_NOISE

__all__ = ["condition_sections", "introduction", "study_sections"]


def study_sections(
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


def condition_sections(
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
        sections, data = study_sections(
            mine, sub_frame, convergence_status(mine), loss_order, reference
        )
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
    return any((r.get("noise") or {}).get("model") in RETENTION_MODELS for r in records)


def introduction(status: dict[str, Any], split: str = "test") -> list[str]:
    """How to read the tables (AP on the clean ``split`` set: ``test``, or ``validation``
    for a calibration), and a warning when clean cells did not converge."""
    parts = [
        f"AP on the clean {split} set, percent, mean ± std over seeds (`seeds` = seeds "
        "averaged). "
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
