"""``noisybox run-benchmark``, ``noisybox report`` and ``noisybox list-presets``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from noisybox.cli._options import common_options, echo_info, echo_json, run_command
from noisybox.study.grid import expand_grid, parse_shard
from noisybox.study.loading import list_presets as _presets
from noisybox.study.loading import load_config, preset_path
from noisybox.study.results import ResultsFolder
from noisybox.study.runner import run_benchmark as _run
from noisybox.study.status import study_status

__all__ = ["list_presets", "report", "run_benchmark", "status"]


def _jobs_option(help: str) -> Any:
    """``-j/--jobs N|auto`` (env ``NOISYBOX_JOBS``), read by :func:`resolve_jobs`."""
    return click.option(
        "-j",
        "--jobs",
        default="auto",
        show_default=True,
        envvar="NOISYBOX_JOBS",
        metavar="N|auto",
        help=help,
    )


@click.command("run-benchmark")
@click.argument("config", required=False)
@click.option(
    "--preset",
    type=click.Choice(_presets()),
    default=None,
    help="A shipped preset (see list-presets); default: quick.",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Results folder (default: ./benchmark-<name>). Re-running resumes it.",
)
@click.option(
    "--extend",
    is_flag=True,
    help="Add this config's cells to a folder made from another grid (other detectors, "
    "losses, etas, seeds or noise conditions; the same dataset and schedule).",
)
@click.option(
    "--shard",
    default=None,
    metavar="i/n",
    help="Run only cells i, i+n, ... of the grid (0 <= i < n).",
)
@click.option(
    "--gpus",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Train each cell with torchrun DDP on N processes (0: in-process).",
)
@click.option(
    "--launcher",
    type=click.Choice(["local", "slurm"]),
    default="local",
    show_default=True,
    help="local: cells one after the other; slurm: a submitit job array.",
)
@_jobs_option(
    "Train N cells at once (local launcher), each with 1/N of the CPU threads. auto: one "
    "per CPU core (at most 4) when training on a CPU, 1 on CUDA or another launcher "
    "[env: NOISYBOX_JOBS]."
)
@click.option(
    "--allow-code-change",
    is_flag=True,
    help="Train cells of a study whose finished cells other code trained (refused by "
    "default; the change is recorded in benchmark.json and the report).",
)
@click.option("--slurm-partition", default=None, help="Slurm partition (with --launcher slurm).")
@click.option(
    "--slurm-timeout",
    type=click.IntRange(min=1),
    default=24 * 60,
    show_default=True,
    help="Slurm time limit per cell, minutes.",
)
@common_options
def run_benchmark(
    config: str | None,
    preset: str | None,
    out_dir: str | None,
    extend: bool,
    shard: str | None,
    gpus: int,
    launcher: str,
    jobs: str,
    allow_code_change: bool,
    slurm_partition: str | None,
    slurm_timeout: int,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Run the noisy-box robustness grid of CONFIG (a YAML file) or of a preset.

    Corrupts the training boxes once per (eta, seed), trains every cell (detector x loss x
    alpha x eta x seed), evaluates it on the clean test set, writes one record per cell to
    OUT/records/ and prints the tables (also in OUT/report/). Re-running the same command
    skips finished cells and resumes an interrupted one from its last checkpoint.

    Progress goes to stderr: live bars on a terminal, otherwise one line per finished cell
    (and per epoch of the cell in training, with --jobs 1). --json prints the outcome
    (folder, cells trained, skipped, failed and collapsed, report files) instead of the
    tables; a failed cell still ends with exit code 1.
    """
    from noisybox.report.writer import write_report

    if config is not None and preset is not None:
        raise click.UsageError("Give either CONFIG or --preset, not both.")

    def run() -> tuple[Any, Any, Path]:
        cfg = load_config(config if config is not None else (preset or "quick"))
        shard_spec = parse_shard(shard)
        out = Path(out_dir) if out_dir is not None else Path(f"benchmark-{cfg.name}")
        params: dict[str, object] = {"timeout_min": slurm_timeout}
        if slurm_partition:
            params["slurm_partition"] = slurm_partition
        summary = _run(
            cfg,
            out,
            extend=extend,
            shard=shard_spec,
            gpus=gpus,
            launcher=launcher,
            jobs=resolve_jobs(jobs, cfg, launcher=launcher, gpus=gpus),
            progress=not quiet,
            slurm_parameters=params if launcher == "slurm" else None,
            allow_code_change=allow_code_change,
        )
        return summary, write_report(out), out

    summary, rep, out = run_command(debug, run)
    if as_json:
        echo_json(_run_payload(summary, rep, out))
    else:
        click.echo(rep.markdown)
    echo_info(
        f"{len(summary.trained)} cells trained, {len(summary.skipped)} already done, "
        f"{len(summary.failures)} failed, in {summary.wall_time_s:.0f} s; report in {out / 'report'}"
    )
    for path in rep.files:
        if path.name.startswith("learning_curves_") and path.suffix == ".png":
            echo_info(f"learning curves: {path}")
    err = sys.stderr
    if summary.collapsed:
        click.echo(
            f"WARNING: {len(summary.collapsed)} collapsed cell(s) (box regression did not train; "
            "not comparable as numbers):",
            file=err,
        )
        for rec in summary.collapsed:
            click.echo(f"  {rec['cell_id']}: {'; '.join(rec['collapse_reasons'])}", file=err)
    if summary.failures:
        raise click.ClickException(
            f"{len(summary.failures)} cell(s) failed (re-run to retry): "
            f"{_group_failures(summary.failures)}"
        )


def _run_payload(summary: Any, rep: Any, out: Path) -> dict[str, Any]:
    """What ``run-benchmark --json`` prints: the folder, the cells by outcome, the report."""
    return {
        "out": str(out),
        "name": summary.config.name,
        "cells": {
            "total": len(summary.cells),
            "trained": len(summary.trained),
            "skipped": len(summary.skipped),
            "failed": len(summary.failures),
            "collapsed": len(summary.collapsed),
        },
        "trained": list(summary.trained),
        "skipped": list(summary.skipped),
        "failed": [{"cell_id": f.cell_id, "error": str(f.error)} for f in summary.failures],
        "collapsed": [
            {"cell_id": r["cell_id"], "reasons": list(r.get("collapse_reasons", []))}
            for r in summary.collapsed
        ],
        "wall_time_s": round(float(summary.wall_time_s), 3),
        "report": str(out / "report"),
        "files": [str(p) for p in rep.files],
    }


def _group_failures(failures: Sequence[Any]) -> str:
    """One line: each distinct error once, with the number of cells and the first cell.

    >>> from types import SimpleNamespace as F
    >>> _group_failures([F(cell_id="a", error="E: x"), F(cell_id="b", error="E: x"),
    ...                  F(cell_id="c", error="E: y")])
    'E: x (2 cells: a, b); E: y (1 cell: c)'
    """
    groups: dict[str, list[str]] = {}
    for failure in failures:
        error = " ".join(str(failure.error).split())  # one line, whatever the error held
        groups.setdefault(error, []).append(failure.cell_id)
    parts = []
    for error, cells in groups.items():
        shown = ", ".join(cells[:2]) + (f", ... {cells[-1]}" if len(cells) > 2 else "")
        parts.append(f"{error} ({len(cells)} cell{'s' if len(cells) != 1 else ''}: {shown})")
    return "; ".join(parts)


@click.command("report")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--no-plots", is_flag=True, help="Tables only.")
@click.option(
    "--reference",
    metavar="LOSS",
    default=None,
    help="Compare every loss row with this one, seed by seed: a row label as the report "
    "prints it (iou, 'alpha-iou@3 (warm-up 0.3)'). Overrides the config's report.reference.",
)
@common_options
def report(
    out_dir: str,
    no_plots: bool,
    reference: str | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Print the tables of the results folder OUT_DIR and write them (CSV, LaTeX, PNG).

    --json prints the folder, the files written and the collapsed cells instead of the tables.
    """
    from noisybox.report.writer import write_report

    rep = run_command(debug, lambda: write_report(out_dir, plots=not no_plots, reference=reference))
    if rep.collapsed:
        click.echo(
            f"WARNING: {len(rep.collapsed)} collapsed cell(s), see the report.", file=sys.stderr
        )
    if as_json:
        echo_json(
            {
                "out": out_dir,
                "report": str(Path(out_dir) / "report"),
                "files": [str(p) for p in rep.files],
                "collapsed": [r.get("cell_id") for r in rep.collapsed],
            }
        )
        return
    click.echo(rep.markdown)
    echo_info(f"written: {', '.join(str(p) for p in rep.files)}")


@click.command("status")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False))
@_jobs_option("Cells trained at once, for the time left (as run-benchmark's --jobs).")
@common_options
def status(out_dir: str, jobs: str, as_json: bool, quiet: bool, debug: bool) -> None:
    """Print how far the study in OUT_DIR has got: cells done, in training (their epoch) and
    not started, and the time left at the pace of the finished cells.

    Reads the folder only; safe while run-benchmark trains in it.
    """

    def read() -> tuple[Any, int]:
        found = study_status(out_dir)
        cfg = ResultsFolder(Path(out_dir)).load_config()
        return found, resolve_jobs(jobs, cfg, launcher="local", gpus=0)

    found, n_jobs = run_command(debug, read)
    if as_json:
        echo_json(found.to_dict(n_jobs))
        return
    click.echo(_status_text(found, n_jobs))


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"8.3 min"`` or ``"5.6 h"``.

    >>> _duration(42), _duration(498), _duration(20160)
    ('42 s', '8.3 min', '5.6 h')
    """
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _status_text(found: Any, jobs: int) -> str:
    lines = [
        f"{found.name} ({found.root}): {found.done} of {found.total} cells done"
        f" ({found.collapsed} collapsed), {len(found.in_progress)} in training or interrupted,"
        f" {found.not_started} not started"
    ]
    for cell in found.in_progress:
        lines.append(f"  {cell.cell_id}: epoch {cell.epochs_done} of {cell.epochs} saved")
    for code, count in found.codes.items():
        lines.append(f"code: {code}: {count} cell(s)")
    median = found.median_cell_s
    if median is not None:
        lines.append(
            f"cell time: median {_duration(median)} over {len(found.cell_times)} finished cells"
            " (as they ran)"
        )
    left = found.time_left_s(jobs)
    if left == 0:
        lines.append("nothing left to train")
    elif left is None:
        lines.append("time left: unknown until the first cell finishes")
    else:
        lines.append(
            f"time left: about {_duration(left)} with --jobs {jobs} "
            f"({found.cells_left:.1f} cells x {_duration(median or 0)} / {jobs})"
        )
    return "\n".join(lines)


@click.command("list-presets")
@common_options
def list_presets(as_json: bool, quiet: bool, debug: bool) -> None:
    """List the shipped benchmark presets with their description (--json: {name: description})."""

    def read() -> dict[str, str]:
        table = {}
        for name in _presets():
            data = yaml.safe_load(preset_path(name).read_text(encoding="utf-8"))
            table[name] = " ".join(str(data.get("description", "")).split())
        return table

    table = run_command(debug, read)
    if as_json:
        echo_json(table)
        return
    for name, desc in table.items():
        click.echo(f"{name}\t{desc}")


#: Upper bound of ``--jobs auto``: more single-threaded cells at once mostly add memory.
MAX_AUTO_JOBS = 4


def resolve_jobs(value: str, cfg: Any, *, launcher: str, gpus: int) -> int:
    """The number of cells to train at once for ``--jobs VALUE``.

    ``auto`` trains one cell per CPU core (at most :data:`MAX_AUTO_JOBS`, at most the number
    of cells) when the cells train on a CPU: small detectors use one core far better than
    two (on 2 cores two single-threaded cells train 1.4x the images/s of one two-threaded
    cell, ``benchmarks/bench_cpu_config.py``), and the records are the same either way.
    On CUDA, with ``--gpus`` or another launcher, ``auto`` is 1.

    Raises:
        click.BadParameter: ``value`` is neither ``auto`` nor an integer >= 1.
    """
    if value != "auto":
        try:
            jobs = int(value)
        except ValueError:
            jobs = 0
        if jobs < 1:
            raise click.BadParameter(
                f"Expected an integer >= 1 or 'auto' but got {value!r}", param_hint="'--jobs'"
            )
        return jobs
    if launcher != "local" or gpus > 0:
        return 1
    device = str(getattr(cfg, "device", "auto"))
    if device.startswith("cuda") or device == "mps":
        return 1
    if device == "auto":
        import torch

        if torch.cuda.is_available():
            return 1

    return max(1, min(MAX_AUTO_JOBS, os.cpu_count() or 1, len(expand_grid(cfg))))
