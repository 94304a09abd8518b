"""``noisybox run-benchmark``, ``noisybox report`` and ``noisybox list-presets``."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from noisybox.benchmark.config import list_presets as _presets
from noisybox.cli._options import debug_option, run_command

__all__ = ["list_presets", "report", "run_benchmark"]


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
    "--extend", is_flag=True, help="Add this config's cells to a folder made from another grid."
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
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Train N cells at once (local launcher), each with 1/N of the CPU threads.",
)
@click.option("--slurm-partition", default=None, help="Slurm partition (with --launcher slurm).")
@click.option(
    "--slurm-timeout",
    type=click.IntRange(min=1),
    default=24 * 60,
    show_default=True,
    help="Slurm time limit per cell, minutes.",
)
@click.option("--quiet", is_flag=True, help="No progress bars.")
@debug_option
def run_benchmark(
    config: str | None,
    preset: str | None,
    out_dir: str | None,
    extend: bool,
    shard: str | None,
    gpus: int,
    launcher: str,
    jobs: int,
    slurm_partition: str | None,
    slurm_timeout: int,
    quiet: bool,
    debug: bool,
) -> None:
    """Run the noisy-box robustness grid of CONFIG (a YAML file) or of a preset.

    Corrupts the training boxes once per (eta, seed), trains every cell (detector x loss x
    alpha x eta x seed), evaluates it on the clean test set, writes one record per cell to
    OUT/records/ and prints the tables (also in OUT/report/). Re-running the same command
    skips finished cells and resumes an interrupted one from its last checkpoint.
    """
    from noisybox.benchmark.config import load_config
    from noisybox.benchmark.report import write_report
    from noisybox.benchmark.runner import parse_shard
    from noisybox.benchmark.runner import run_benchmark as _run

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
            jobs=jobs,
            progress=not quiet,
            slurm_parameters=params if launcher == "slurm" else None,
        )
        return summary, write_report(out), out

    summary, rep, out = run_command(debug, run)
    click.echo(rep.markdown)
    err = sys.stderr
    click.echo(
        f"{len(summary.trained)} cells trained, {len(summary.skipped)} already done, "
        f"{len(summary.failures)} failed, in {summary.wall_time_s:.0f} s; report in {out / 'report'}",
        file=err,
    )
    for path in rep.files:
        if path.name.startswith("learning_curves_") and path.suffix == ".png":
            click.echo(f"learning curves: {path}", file=err)
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
@debug_option
def report(out_dir: str, no_plots: bool, debug: bool) -> None:
    """Print the tables of the results folder OUT_DIR and write them (CSV, LaTeX, PNG)."""
    from noisybox.benchmark.report import write_report

    rep = run_command(debug, lambda: write_report(out_dir, plots=not no_plots))
    click.echo(rep.markdown)
    if rep.collapsed:
        click.echo(
            f"WARNING: {len(rep.collapsed)} collapsed cell(s), see the report.", file=sys.stderr
        )
    click.echo(f"written: {', '.join(str(p) for p in rep.files)}", file=sys.stderr)


@click.command("list-presets")
def list_presets() -> None:
    """List the shipped benchmark presets with their description."""
    import yaml

    from noisybox.benchmark.config import list_presets as _list
    from noisybox.benchmark.config import preset_path

    for name in _list():
        data = yaml.safe_load(preset_path(name).read_text(encoding="utf-8"))
        desc = " ".join(str(data.get("description", "")).split())
        click.echo(f"{name}\t{desc}")
