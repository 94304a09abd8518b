"""``noisybox calibrate`` and ``noisybox protocol``: what a study does before its first cell.

Calibration chooses a study's schedule on the validation split (never the test split);
the protocol skeleton is the pre-registration ``run-benchmark`` stamps before the first cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import yaml

from noisybox._fileio import atomic_write_text
from noisybox.cli._options import common_options, echo_info, echo_json, run_command
from noisybox.cli.benchmark import _group_failures, _jobs_option, _run_payload, resolve_jobs
from noisybox.errors import NoisyboxError
from noisybox.study.loading import load_config
from noisybox.study.protocol import protocol_skeleton
from noisybox.study.runner import calibration_config
from noisybox.study.runner import run_benchmark as _run

__all__ = ["calibrate", "protocol"]


def _schedule_values(items: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs, each value read as YAML (``epochs=40``, ``scale_range=[0.5, 1.5]``).

    >>> _schedule_values(["epochs=40", "amp=bf16", "scale_range=[0.75, 1.25]"])
    {'epochs': 40, 'amp': 'bf16', 'scale_range': [0.75, 1.25]}
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"Expected KEY=VALUE but got {item!r}", param_hint="--set")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise click.BadParameter(
                f"Expected a YAML value after = but got {value!r}", param_hint="--set"
            ) from None
    return out


@click.command("calibrate")
@click.argument("config")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    required=True,
    help="Folder of the calibration's records (apart from the study's). Re-running resumes.",
)
@click.option(
    "--loss",
    "losses",
    multiple=True,
    help="Calibrate only this loss (name or label; repeat). Default: every loss of the study.",
)
@click.option(
    "--seed", "seeds", type=click.IntRange(min=0), multiple=True, help="Seeds (default: the first)."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="A schedule value of this candidate (repeat): --set epochs=40 --set image_size=384.",
)
@_jobs_option("Train N cells at once (as run-benchmark's --jobs) [env: NOISYBOX_JOBS].")
@common_options
def calibrate(
    config: str,
    out_dir: str,
    losses: tuple[str, ...],
    seeds: tuple[int, ...],
    overrides: tuple[str, ...],
    jobs: str,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Calibrate the study CONFIG on the validation split; the test split is never read.

    Trains every loss of the study (or --loss) on the calibration training split with clean
    boxes, evaluates it on the validation split every schedule.eval_every epochs and writes
    the records, the report and the learning curves to OUT, a folder of its own. Compare
    candidates with --set (one OUT each) and put the table in the study's protocol.

    \b
    Example:
        noisybox calibrate study.yaml --out calib/e40 --set epochs=40 --set eval_every=5
    """
    from noisybox.report.writer import write_report

    def run() -> tuple[Any, Any]:
        study = load_config(config)
        cfg = calibration_config(
            study,
            losses=list(losses) or None,
            seeds=list(seeds) or None,
            schedule=_schedule_values(overrides),
        )
        summary = _run(
            cfg,
            Path(out_dir),
            jobs=resolve_jobs(jobs, cfg, launcher="local", gpus=0),
            progress=not quiet,
        )
        return summary, write_report(out_dir)

    summary, rep = run_command(debug, run)
    if as_json:
        echo_json(_run_payload(summary, rep, Path(out_dir)))
    else:
        click.echo(rep.markdown)
    echo_info(
        f"{len(summary.trained)} calibration cells trained, {len(summary.skipped)} already "
        f"done, {len(summary.failures)} failed; evaluated on the validation split; report in "
        f"{Path(out_dir) / 'report'}"
    )
    if summary.failures:
        raise click.ClickException(
            f"{len(summary.failures)} cell(s) failed: {_group_failures(summary.failures)}"
        )


@click.command("protocol")
@click.argument("config")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the skeleton here (never over an existing file); default: stdout.",
)
@common_options
def protocol(config: str, output: Path | None, as_json: bool, quiet: bool, debug: bool) -> None:
    """Write a pre-registration PROTOCOL.md skeleton for the study CONFIG.

    The grid, the decision rule and the number of comparisons come from the config; the
    question and the calibration table are left as TODO. Name the file in the config
    (protocol: PROTOCOL.md) and commit it: run-benchmark then refuses to start without it
    and stamps its sha256 before the first cell.
    """

    def run() -> str:
        text = protocol_skeleton(load_config(config, check_paths=False).to_dict())
        if output is not None:
            if output.exists():
                raise NoisyboxError(
                    f"Expected a new file for the protocol but {output} exists; it is kept"
                )
            atomic_write_text(output, text)
        return text

    text = run_command(debug, run)
    if as_json:
        echo_json({"protocol": str(output) if output else None, "text": text})
    elif output is None:
        click.echo(text, nl=False)
    else:
        echo_info(f"written: {output}")
