"""``noisybox corrupt`` and ``noisybox iou``: thin commands over :mod:`noisybox.corrupt` and
:mod:`noisybox.stats`."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from noisybox import viz
from noisybox._fileio import check_outputs, staged
from noisybox.cli._options import (
    ALIAS_GIVEN,
    ETA,
    boundary_option,
    common_options,
    echo_info,
    echo_json,
    echo_warning,
    eta_h_option,
    eta_option,
    eta_w_option,
    format_option,
    min_size_option,
    noise_model_option,
    ratio_option,
    run_command,
    seed_option,
)
from noisybox.corrupt import DEFAULT_SEED, INVALID_POLICIES, corrupt_annotations
from noisybox.corrupt.oamil import REPRODUCIBLE
from noisybox.formats import read_annotations
from noisybox.formats.edits import dropped_records, relocated_records
from noisybox.noise import NoiseSpec
from noisybox.stats import IoUStats, compare_annotations

__all__ = ["corrupt", "iou"]


@click.command()
@click.argument(
    "input_paths", metavar="INPUT...", nargs=-1, required=True, type=click.Path(exists=True)
)
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    type=click.Path(),
    help="Output file (COCO) or folder (VOC, YOLO); with several inputs, a folder holding a copy of each.",
)
@eta_option("Noise rate of both axes (paper's eta).", default=0.2)
@eta_w_option("Horizontal noise rate (overrides --eta).")
@eta_h_option("Vertical noise rate (overrides --eta).")
@seed_option("Seed of all random draws.", default=DEFAULT_SEED)
@format_option("Input format (detected by default).")
@noise_model_option("Noise model.")
@boundary_option("shift: paper's eq. 5; truncate: clip corners (OA-MIL).")
@ratio_option("Share of boxes perturbed.")
@min_size_option("Minimum noisy box side in pixels.")
@click.option(
    "--on-invalid",
    type=click.Choice(INVALID_POLICIES),
    default="error",
    show_default=True,
    help="Invalid clean boxes: stop, leave unchanged, or clip into the image.",
)
@click.option(
    "--image-set", default=None, help="VOC: read only ImageSets/Main/<name>.txt (every VOC input)."
)
@click.option(
    "--image-root",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="YOLO: images folder if not the sibling 'images'.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a PNG histogram of noisy-to-clean IoU (both files or neither are written).",
)
@click.option(
    "--missing",
    type=ETA,
    default=0.0,
    help="Share of boxes dropped (annotation-level noise, UNA), in [0, 1).",
)
@click.option(
    "--class-flip",
    type=ETA,
    default=0.0,
    help="Share of boxes given another class, in [0, 1).",
)
@click.option(
    "--extra",
    type=ETA,
    default=0.0,
    help="Share of bogus boxes in the result (random box, class and image), in [0, 1).",
)
@click.option(
    "--relocate",
    type=ETA,
    default=0.0,
    help="Share of boxes given a new random box around their own (UNA's localization "
    "noise; id and class kept), in [0, 1).",
)
@click.option(
    "--reproduce",
    type=click.Choice(REPRODUCIBLE),
    default=None,
    help="Regenerate a published noisy set exactly: oamil = OA-MIL's VOC2007 files "
    "(--eta is its r; numpy's legacy generator seeded with 45; image set trainval), or "
    "its COCO files for a COCO input (its pickle is written beside -o).",
)
@common_options
def corrupt(
    input_paths: tuple[str, ...],
    output_path: str,
    seed: int,
    fmt: str | None,
    on_invalid: str,
    image_set: str | None,
    image_root: str | None,
    plot_path: str | None,
    reproduce: str | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
    **noise: Any,  # the noise options, named as NoiseSpec's fields
) -> None:
    """Write a copy of INPUT with the Alpha-IoU paper's box noise and print how noisy it is.

    INPUT is a COCO json file, a VOC year folder or a YOLO dataset folder. Several inputs
    are corrupted as one set with one seed and measured together; the output is then a
    folder holding each input's copy under its own name.

    \b
    Examples:
      noisybox corrupt --eta 0.2 instances_train.json -o train_eta0.2.json
      noisybox corrupt VOCdevkit/VOC2007 VOCdevkit/VOC2012 --image-set trainval --eta 0.3 -o trainval0712_eta0.3
    """
    if reproduce is not None:
        _refuse_unused_with_reproduce(reproduce)
    read_kwargs: dict[str, Any] = {}
    if image_set is not None:
        read_kwargs["image_set"] = image_set
    if image_root is not None:
        read_kwargs["image_root"] = image_root

    def run() -> Any:
        spec = NoiseSpec(**noise)
        several = len(input_paths) > 1
        check_outputs(
            {"-o/--output": output_path, "--plot": plot_path},
            {
                **(
                    {f"INPUT {k}": path for k, path in enumerate(input_paths, 1)}
                    if several
                    else {"INPUT": input_paths[0]}
                ),
                "--image-root": image_root,
            },
            folders=("-o/--output",) if several or Path(input_paths[0]).is_dir() else (),
        )
        with staged():  # a failing --plot leaves no -o file or folder behind
            result = corrupt_annotations(
                input_paths if several else input_paths[0],
                output_path,
                spec=spec,
                seed=seed,
                format=fmt,
                on_invalid=on_invalid,
                progress=not quiet and sys.stderr.isatty(),
                reproduce=reproduce,
                **read_kwargs,
            )
            if plot_path is not None:
                _plot(result, " + ".join(input_paths), output_path, plot_path)
        return result

    result = run_command(debug, run)
    for warning in result.warnings:
        echo_warning(warning)
    if plot_path is not None:
        echo_info(f"wrote {plot_path}")
    if as_json:
        plot = {"plot": plot_path} if plot_path is not None else {}
        sides = {"side_files": [str(p) for p in result.side_files]} if result.side_files else {}
        echo_json({"output": str(result.output_path), **result.provenance, **plot, **sides})
        return
    _print_result(result)


def _refuse_unused_with_reproduce(reproduce: str) -> None:
    """A published generator has its own model, boundary and box checks: an option that
    sets them is refused rather than silently ignored."""
    ctx = click.get_current_context()
    aliased = ctx.meta.get(ALIAS_GIVEN, set())
    given = [
        f"--{name.replace('_', '-')}"
        for name in ("noise_model", "boundary", "min_size", "on_invalid")
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE or name in aliased
    ]
    if given:
        raise click.UsageError(
            f"{', '.join(given)} cannot be used with --reproduce {reproduce}: the source "
            "generator fixes its own noise model, boundary and box checks."
        )


def _print_result(result: Any) -> None:
    """The text summary of a :class:`~noisybox.corrupt.CorruptionResult`."""
    p = result.provenance
    c = result.counts
    settings = (
        f"noise_model={p['model']}, eta_w={p['eta_w']}, eta_h={p['eta_h']}, "
        f"boundary={p['boundary']}, ratio={p['ratio']}, seed={p['seed']}"
        + (f", reproduce={p['reproduce']}" if "reproduce" in p else "")
    )
    if result.parts:
        inputs = ", ".join(
            f"{r.provenance['source']} ({r.provenance['format']})" for r in result.parts
        )
        click.echo(
            f"wrote {result.output_path}: {len(result.parts)} inputs drawn as one set ({inputs}); {settings}"
        )
    else:
        click.echo(f"wrote {result.output_path} ({p['format']}, {settings})")
    for side in result.side_files:
        click.echo(f"wrote {side} (beside {result.output_path})")
    click.echo(
        f"boxes: {c['boxes']}  perturbed: {c['perturbed']}  crowd untouched: {c['crowd_untouched']}  "
        f"invalid: {c['invalid']} (skipped {c['skipped']}, clipped {c['clipped']})"
        + (f"  ignored by the source: {c['ignored']}" if "ignored" in c else "")
        + (
            f"  dropped: {c['dropped']}  relabelled: {c['relabelled']}  added: {c['added']}"
            if "dropped" in c
            else ""
        )
        + (f"  relocated: {c['relocated']}" if "relocated" in c else "")
    )
    click.echo(result.stats.format_text())
    if result.parts:
        click.echo("per input: mean IoU per image, per box (boxes compared in images)")
        for r in result.parts:
            st = r.stats
            click.echo(
                f"  {r.provenance['source']}: {_fmt(st.mean_image_iou)}, {_fmt(st.mean_iou)} "
                f"({st.num_boxes} in {st.num_images})"
            )


def _fmt(x: float) -> str:
    return f"{x:.4f}" if math.isfinite(x) else "n/a"


def _plot(result: Any, inputs: str, output_path: str, plot_path: str) -> None:
    label = (
        f"{click.format_filename(output_path, shorten=True)}: "
        f"{viz.describe_noise(result.provenance)}"
    )
    include = result.eligible
    if result.edits is not None and result.edits.relocated is not None:
        include = include & ~result.edits.relocated  # the box noise's IoU, as the figures
    dist = viz.iou_distribution(result.clean, result.annotations, label=label, include=include)
    viz.save_figure(viz.plot_iou_histogram(dist, title=f"Noisy-to-clean IoU, {inputs}"), plot_path)


@click.command()
@click.argument("clean_path", metavar="CLEAN", type=click.Path(exists=True))
@click.argument("noisy_path", metavar="NOISY", type=click.Path(exists=True))
@format_option("Format of both sets (detected by default).")
@click.option("--image-set", default=None, help="VOC: read only ImageSets/Main/<name>.txt.")
@click.option(
    "--partial",
    is_flag=True,
    help="NOISY may drop, add and relabel records (--missing/--extra/--class-flip): "
    "IoU over the matched ones, and their counts. (Relocated records, --relocate, match "
    "by id and are reported apart with or without it.)",
)
@common_options
def iou(
    clean_path: str,
    noisy_path: str,
    fmt: str | None,
    image_set: str | None,
    partial: bool,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Measure the IoU of every box of NOISY against the same record of CLEAN.

    Boxes are matched by record id (COCO annotation id, VOC file#object, YOLO file:line);
    both sets must hold the same images (id and size) and records (each id once, on the same
    image and category). Invalid boxes (not finite, or no positive size) are counted apart.
    With --partial, records dropped, added or relabelled (annotation-level noise) are
    counted instead of refused. Records NOISY's provenance lists as relocated (corrupt
    --relocate) are measured apart.
    """
    kwargs: dict[str, Any] = {"image_set": image_set} if image_set is not None else {}

    def measure() -> IoUStats:
        clean = read_annotations(clean_path, fmt, **kwargs)
        noisy = read_annotations(noisy_path, fmt, **kwargs)
        dropped = dropped_records(noisy) if partial else None
        return compare_annotations(
            clean, noisy, partial=partial, dropped=dropped, relocated=relocated_records(noisy)
        )

    stats = run_command(debug, measure)
    if as_json:
        echo_json(stats.to_dict())
    else:
        click.echo(stats.format_text())
