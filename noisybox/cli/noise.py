"""``noisybox corrupt`` and ``noisybox iou``: thin commands over :mod:`noisybox.corrupt` and
:mod:`noisybox.stats`."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from noisybox.corrupt import DEFAULT_SEED, INVALID_POLICIES, corrupt_annotations
from noisybox.errors import NoisyboxError
from noisybox.formats import FORMATS, read_annotations
from noisybox.noise import BOUNDARIES, list_noise_models
from noisybox.stats import compare_annotations

__all__ = ["corrupt", "iou"]

_ETA = click.FloatRange(0.0, 1.0, max_open=True)


@click.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(exists=True))
@click.option(
    "-o",
    "--output",
    "output_path",
    required=True,
    type=click.Path(),
    help="Output file (COCO) or folder (VOC, YOLO).",
)
@click.option(
    "--eta",
    type=_ETA,
    default=0.2,
    show_default=True,
    help="Noise rate of both axes (paper's eta).",
)
@click.option("--eta-w", type=_ETA, default=None, help="Horizontal noise rate (overrides --eta).")
@click.option("--eta-h", type=_ETA, default=None, help="Vertical noise rate (overrides --eta).")
@click.option(
    "--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of all random draws."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Input format (detected by default).",
)
@click.option(
    "--model",
    type=click.Choice(list_noise_models()),
    default="uniform",
    show_default=True,
    help="Noise model.",
)
@click.option(
    "--boundary",
    type=click.Choice(BOUNDARIES),
    default="shift",
    show_default=True,
    help="shift: paper's eq. 5; truncate: clip corners (OA-MIL).",
)
@click.option(
    "--ratio",
    type=click.FloatRange(0.0, 1.0),
    default=1.0,
    show_default=True,
    help="Share of boxes perturbed.",
)
@click.option(
    "--min-size",
    type=click.FloatRange(0.0, min_open=True),
    default=1.0,
    show_default=True,
    help="Minimum noisy box side in pixels.",
)
@click.option(
    "--on-invalid",
    type=click.Choice(INVALID_POLICIES),
    default="error",
    show_default=True,
    help="Invalid clean boxes: stop, leave unchanged, or clip into the image.",
)
@click.option("--image-set", default=None, help="VOC: read only ImageSets/Main/<name>.txt.")
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
    help="Also write a PNG histogram of noisy-to-clean IoU.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def corrupt(
    input_path: str,
    output_path: str,
    eta: float,
    eta_w: float | None,
    eta_h: float | None,
    seed: int,
    fmt: str | None,
    model: str,
    boundary: str,
    ratio: float,
    min_size: float,
    on_invalid: str,
    image_set: str | None,
    image_root: str | None,
    plot_path: str | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Write a copy of INPUT with the Alpha-IoU paper's box noise and print how noisy it is.

    INPUT is a COCO json file, a VOC year folder or a YOLO dataset folder.

    Example: noisybox corrupt --eta 0.2 instances_train.json -o train_eta0.2.json
    """
    read_kwargs: dict[str, Any] = {}
    if image_set is not None:
        read_kwargs["image_set"] = image_set
    if image_root is not None:
        read_kwargs["image_root"] = image_root
    try:
        result = corrupt_annotations(
            input_path,
            output_path,
            eta=eta,
            eta_w=eta_w,
            eta_h=eta_h,
            model=model,
            boundary=boundary,
            ratio=ratio,
            seed=seed,
            format=fmt,
            on_invalid=on_invalid,
            min_size=min_size,
            progress=not quiet and sys.stderr.isatty(),
            **read_kwargs,
        )
    except NoisyboxError as exc:
        if debug:
            raise
        raise click.ClickException(str(exc)) from None
    if plot_path is not None:
        from noisybox.corrupt import find_invalid_boxes
        from noisybox.viz import describe_noise, iou_distribution, plot_iou_histogram, save_figure

        clean = read_annotations(input_path, fmt, **read_kwargs)
        valid = ~find_invalid_boxes(clean.boxes, clean.box_image_sizes())[0]
        label = f"{click.format_filename(output_path, shorten=True)}: {describe_noise(result.provenance)}"
        dist = iou_distribution(clean, result.annotations, label=label, include=valid)
        save_figure(plot_iou_histogram(dist, title=f"Noisy-to-clean IoU, {input_path}"), plot_path)
        click.echo(f"wrote {plot_path}", err=True)
    if as_json:
        click.echo(json.dumps({"output": str(result.output_path), **result.provenance}, indent=2))
        return
    p = result.provenance
    c = result.counts
    click.echo(
        f"wrote {result.output_path} ({p['format']}, model={p['model']}, eta_w={p['eta_w']}, "
        f"eta_h={p['eta_h']}, boundary={p['boundary']}, ratio={p['ratio']}, seed={p['seed']})"
    )
    click.echo(
        f"boxes: {c['boxes']}  perturbed: {c['perturbed']}  crowd untouched: {c['crowd_untouched']}  "
        f"invalid: {c['invalid']} (skipped {c['skipped']}, clipped {c['clipped']})"
    )
    click.echo(result.stats.format_text())


@click.command()
@click.argument("clean_path", metavar="CLEAN", type=click.Path(exists=True))
@click.argument("noisy_path", metavar="NOISY", type=click.Path(exists=True))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="Format of both sets (detected by default).",
)
@click.option("--image-set", default=None, help="VOC: read only ImageSets/Main/<name>.txt.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
def iou(
    clean_path: str,
    noisy_path: str,
    fmt: str | None,
    image_set: str | None,
    as_json: bool,
    debug: bool,
) -> None:
    """Measure the IoU of every box of NOISY against the same record of CLEAN.

    Boxes are matched by record id (COCO annotation id, VOC file#object, YOLO file:line).
    """
    kwargs: dict[str, Any] = {"image_set": image_set} if image_set is not None else {}
    try:
        clean = read_annotations(clean_path, fmt, **kwargs)
        noisy = read_annotations(noisy_path, fmt, **kwargs)
        stats = compare_annotations(clean, noisy)
    except NoisyboxError as exc:
        if debug:
            raise
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(stats.to_dict(), indent=2))
    else:
        click.echo(stats.format_text())
