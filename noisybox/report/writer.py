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
  the intervals support (:func:`~noisybox.report.paired_tables.retention_reading`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from noisybox._fileio import atomic_write_text, check_outputs, staged
from noisybox.errors import NoisyboxError
from noisybox.report.learning_curves import (
    convergence_status,
)
from noisybox.report.sections import condition_sections, introduction, study_sections
from noisybox.report.summary import (
    COLUMN_TITLES,
    REL_FLOOR,
    TABLE_METRICS,
    paired_differences,
    records_frame,
    relative_improvements,
    retention_differences,
    robustness_frame,
    summarize,
)
from noisybox.report.tables import (
    LossOrder,
    paired_verdicts,
)
from noisybox.study.collapse_flags import apply_collapse_flags
from noisybox.study.protocol import protocol_section
from noisybox.study.provenance import UNKNOWN_CODE, code_versions, describe_code
from noisybox.study.results import ResultsFolder
from noisybox.study.spec import CollapseConfig, LossSpec, NoiseConfig, loss_label
from noisybox.study.validate import load_checked_records

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
    condition; see :func:`noisybox.report.sections.condition_sections`.

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
    loss_order = LossOrder.of(loss_order, records)
    frame = records_frame(records)
    parts = [f"# {title}", ""]
    if frame.empty:
        parts.append("No finished cells yet.")
        return Report("\n".join(parts) + "\n", []), {"frame": frame}
    status = convergence_status(records)
    calibration = all(r.get("evaluated_on") == "val" for r in records)
    parts += introduction(status, "validation" if calibration else "test")
    labels = record_conditions(records, conditions)
    if labels and (len(labels) > 1 or len(conditions) > 1):
        sections, data = condition_sections(records, labels, loss_order, reference)
    else:
        sections, data = study_sections(records, frame, status, loss_order, reference)
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
        records = load_checked_records(folder)
    loss_order = LossOrder.of(loss_order, records)
    if reference is not None and records:
        labels = sorted({LossSpec.from_cell(r["cell"]).row_label for r in records})
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
    report.markdown += _study_notes(folder.read_stored(), records, folder.root)
    with staged():
        report.files = _write_report_files(folder.report_dir, report, data, plots, loss_order)
    return report


def _study_notes(
    stored: dict[str, Any], records: Sequence[dict[str, Any]], root: Path | None = None
) -> str:
    """The report's closing sections: what it was evaluated on, the protocol (looked for in
    the results folder ``root`` first), the code."""
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
    lines += protocol_section(stored, root)
    lines += ["", "## Code", ""]
    versions = code_versions(records)
    if not versions:
        lines.append("No cell has finished yet.")
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
