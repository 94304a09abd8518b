"""``noisybox noise-sweep``: a thin command over :mod:`noisybox.sweep`."""

from __future__ import annotations

import json
from typing import Any

import click

from noisybox._fileio import check_outputs, save_figure, staged
from noisybox.cli._options import common_options, format_option, run_command, seed_option
from noisybox.corrupt import DEFAULT_SEED
from noisybox.noise import BOUNDARIES, list_noise_models
from noisybox.sweep import noise_sweep as sweep
from noisybox.sweep import plot_sweep

__all__ = ["noise_sweep"]


def _levels(ctx: click.Context, param: click.Parameter, value: str) -> list[float]:
    try:
        items = value.split(",")
        if any(not x.strip() for x in items):
            raise ValueError("an empty item")
        levels = [float(x) for x in items]
    except ValueError:
        raise click.BadParameter(
            f"Expected numbers separated by commas but got {value!r}"
        ) from None
    bad = [x for x in levels if not (0.0 <= x < 1.0)]
    if not levels or bad:
        raise click.BadParameter(f"Expected levels in [0, 1) but got {value!r}")
    return levels


@click.command("noise-sweep")
@click.argument(
    "input_paths", metavar="INPUT...", nargs=-1, required=True, type=click.Path(exists=True)
)
@click.option(
    "--levels",
    default="0.05,0.1,0.2,0.3,0.4",
    show_default=True,
    callback=_levels,
    help="Noise levels (each model's own eta), separated by commas.",
)
@click.option(
    "--noise-model",
    "--model",
    "models",
    multiple=True,
    type=click.Choice(list_noise_models()),
    help="A noise model (repeatable; default all registered; --model is the short spelling).",
)
@click.option(
    "--boundary",
    type=click.Choice(BOUNDARIES),
    default=None,
    help="For every model (default: each model's source, e.g. truncate for oamil).",
)
@click.option(
    "--statistic",
    type=click.Choice(["image", "box"]),
    default="image",
    show_default=True,
    help="Table of the mean IoU per image (the paper's statistic) or per box.",
)
@seed_option("Seed of every draw.", default=DEFAULT_SEED)
@format_option("Input format (detected by default).")
@click.option("--image-set", default=None, help="VOC: read only ImageSets/Main/<name>.txt.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write a PNG plot of mean IoU against level, one line per model.",
)
@common_options
def noise_sweep(
    input_paths: tuple[str, ...],
    levels: list[float],
    models: tuple[str, ...],
    boundary: str | None,
    statistic: str,
    seed: int,
    fmt: str | None,
    image_set: str | None,
    plot_path: str | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Print the mean IoU of noisy to clean boxes of INPUT for every noise model at each
    level, so that models can be set to the same mean IoU. Nothing is written but --plot.

    \b
    Examples:
      noisybox noise-sweep instances_train.json --plot sweep.png
      noisybox noise-sweep VOCdevkit/VOC2007 VOCdevkit/VOC2012 --image-set trainval --json
    """
    key = "mean_image_iou" if statistic == "image" else "mean_iou"

    def run() -> Any:
        if plot_path is not None:
            check_outputs(
                {"--plot": plot_path}, {f"INPUT {k}": p for k, p in enumerate(input_paths, 1)}
            )
        if not quiet:
            click.echo(
                f"sweeping {len(models) or len(list_noise_models())} models x {len(levels)} levels",
                err=True,
            )
        result = sweep(
            list(input_paths),
            levels,
            models=list(models) or None,
            boundary=boundary,
            seed=seed,
            format=fmt,
            image_set=image_set,
        )
        if plot_path is not None:
            with staged():
                save_figure(plot_sweep(result, key), plot_path, dpi=120)
        return result

    result = run_command(debug, run)
    if plot_path is not None and not quiet:
        click.echo(f"wrote {plot_path}", err=True)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    label = "per image (the paper's statistic)" if statistic == "image" else "per box"
    click.echo(
        f"mean IoU {label}, noisy vs clean: {result.source} ({result.num_boxes} boxes, seed {seed})"
    )
    click.echo(result.format_text(key))
