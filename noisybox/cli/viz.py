"""``noisybox preview`` and ``noisybox iou-hist``: thin commands over :mod:`noisybox.viz`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from noisybox._fileio import check_outputs
from noisybox._limits import MAX_BINS, MAX_TILE_SIZE
from noisybox.cli._options import (
    SEED,
    BoundedIntRange,
    boundary_option,
    common_options,
    echo_json,
    eta_h_option,
    eta_option,
    eta_w_option,
    format_option,
    noise_model_option,
    ratio_option,
    run_command,
    seed_option,
)
from noisybox.noise import NoiseSpec
from noisybox.viz import iou_histogram, preview_annotations

__all__ = ["iou_hist", "preview"]

_png_output = click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False),
    help="PNG file to write.",
)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _split(values: Sequence[str]) -> list[str]:
    """Values of a repeatable option, each possibly a comma-separated list."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


def _class_names(value: str | None) -> list[str] | None:
    """``--class-names``: a comma-separated list, or a file with one name per line."""
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.BadParameter(
                f"Expected a readable text file but got {path} ({exc})", param_hint="--class-names"
            ) from None
        return [line.strip() for line in lines if line.strip()]
    return _split([value])


@click.command()
@click.argument("clean_path", metavar="CLEAN", type=click.Path(exists=True))
@click.argument("noisy_path", metavar="[NOISY]", type=click.Path(exists=True), required=False)
@click.option(
    "--images",
    "images",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Images folder the annotations' file names are relative to "
    "(default: the json's folder for COCO, the devkit year folder for VOC, images/ for YOLO).",
)
@_png_output
@eta_option("Corrupt CLEAN on the fly at this noise rate.")
@eta_w_option("On-the-fly horizontal noise rate.")
@eta_h_option("On-the-fly vertical noise rate.")
@seed_option("Seed of the on-the-fly noise.")
@noise_model_option("On-the-fly noise model.")
@boundary_option("On-the-fly boundary handling (shift: paper's eq. 5).")
@ratio_option("Share of boxes perturbed on the fly.")
@click.option(
    "-n",
    "--num-images",
    type=click.IntRange(min=1),
    default=None,
    help="Images in a seeded random sample (default 6; images with boxes first).",
)
@click.option(
    "--image-ids",
    multiple=True,
    help="Images to show, by id or file name (repeat or comma-separate).",
)
@click.option(
    "--sample-seed", type=SEED, default=0, show_default=True, help="Seed of the image sample."
)
@click.option(
    "--class-names",
    default=None,
    help="Class names overriding the annotations': 'a,b,c' or a file with one per line "
    "(YOLO: name k is class k; COCO/VOC: in sorted category id order).",
)
@format_option("Format (detected by default).")
@click.option(
    "--columns", type=click.IntRange(min=1), default=3, show_default=True, help="Tiles per row."
)
@click.option(
    "--tile-size",
    type=BoundedIntRange(32, MAX_TILE_SIZE),
    default=360,
    show_default=True,
    help="Longest image side in the grid, in pixels.",
)
@click.option("--no-labels", is_flag=True, help="Do not tag boxes with class names and IoU.")
@common_options
def preview(
    clean_path: str,
    noisy_path: str | None,
    images: str | None,
    output: str,
    num_images: int | None,
    image_ids: tuple[str, ...],
    sample_seed: int,
    class_names: str | None,
    fmt: str | None,
    columns: int,
    tile_size: int,
    no_labels: bool,
    seed: int,
    as_json: bool,
    quiet: bool,
    debug: bool,
    **noise: Any,  # the on-the-fly noise options, named as NoiseSpec's fields
) -> None:
    """Draw a grid of dataset images with the clean boxes (solid green) and the noisy ones
    (dashed magenta, tagged with their IoU to the clean box).

    Give NOISY (a file written by 'noisybox corrupt'), or --eta to corrupt CLEAN on the fly
    and see what a noise rate looks like before writing any file (the parameters and seed go
    into the title). With neither, only the clean boxes are drawn.

    Example: noisybox preview instances_val.json --eta 0.2 -o preview.png
    """
    on_the_fly = any(noise[k] is not None for k in ("eta", "eta_w", "eta_h"))
    if noisy_path is not None and on_the_fly:
        raise click.UsageError("Give either NOISY or --eta/--eta-w/--eta-h, not both.")
    ids = _split(image_ids) if image_ids else None
    if image_ids and not ids:
        raise click.BadParameter(
            "Expected image ids or file names but got none", param_hint="--image-ids"
        )
    if ids is not None and num_images is not None:
        raise click.UsageError("Give either --num-images or --image-ids, not both.")
    names = _class_names(class_names)
    if on_the_fly and noise["eta"] is None:
        noise["eta"] = 0.2

    def run() -> Any:
        spec = NoiseSpec(**noise) if on_the_fly else None

        check_outputs(
            {"-o/--output": output},
            {
                "CLEAN": clean_path,
                "NOISY": noisy_path,
                "--images": images,
                "--class-names": class_names
                if class_names and Path(class_names).is_file()
                else None,
            },
        )

        return preview_annotations(
            clean_path,
            noisy_path,
            image_root=images,
            output=output,
            spec=spec,
            seed=seed,
            num_images=num_images if num_images is not None else 6,
            image_ids=ids,
            sample_seed=sample_seed,
            class_names=names,
            format=fmt,
            columns=columns,
            tile_size=tile_size,
            show_labels=not no_labels,
        )

    fig = run_command(debug, run)
    shown = sum(1 for ax in fig.axes if ax.images)
    if as_json:
        echo_json({"output": output, "num_images": shown, "title": fig.get_suptitle()})
        return
    click.echo(f"wrote {output} ({shown} images)")


@click.command("iou-hist")
@click.argument("clean_path", metavar="CLEAN", type=click.Path(exists=True))
@click.argument("noisy_paths", metavar="[NOISY]...", type=click.Path(exists=True), nargs=-1)
@_png_output
@eta_option("Also corrupt CLEAN on the fly at this rate (repeatable).", multiple=True, dest="etas")
@seed_option("Seed of the on-the-fly noise.")
@noise_model_option("On-the-fly noise model.")
@boundary_option("On-the-fly boundary handling.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    help="Legend text, one per NOISY file then per --eta (default: from provenance).",
)
@click.option(
    "--bins",
    type=BoundedIntRange(1, MAX_BINS),
    default=40,
    show_default=True,
    help="Histogram bins.",
)
@format_option("Format (detected by default).")
@common_options
def iou_hist(
    clean_path: str,
    noisy_paths: tuple[str, ...],
    output: str,
    etas: tuple[float, ...],
    seed: int,
    noise_model: str,
    boundary: str,
    labels: tuple[str, ...],
    bins: int,
    fmt: str | None,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Plot the distribution of noisy-to-clean IoU, with the mean per box (solid line) and
    per image (dashed) marked; several NOISY files and --eta levels are overlaid.

    Example: noisybox iou-hist instances_train.json train_eta0.1.json train_eta0.3.json -o hist.png
    """
    if not noisy_paths and not etas:
        raise click.UsageError("Give at least one NOISY file or --eta.")

    def run() -> Any:
        many = len(noisy_paths) > 1
        check_outputs(
            {"-o/--output": output},
            {
                "CLEAN": clean_path,
                **{f"NOISY{f' #{k + 1}' if many else ''}": p for k, p in enumerate(noisy_paths)},
            },
        )

        return iou_histogram(
            clean_path,
            list(noisy_paths),
            etas=list(etas),
            noise_model=noise_model,
            boundary=boundary,
            seed=seed,
            labels=list(labels) if labels else None,
            bins=bins,
            output=output,
            format=fmt,
        )

    _, dists = run_command(debug, run)
    rows = [
        {
            "label": d.label,
            "num_boxes": int(d.ious.size),
            "mean_iou": d.mean_iou if math.isfinite(d.mean_iou) else None,
            "mean_image_iou": d.mean_image_iou if math.isfinite(d.mean_image_iou) else None,
        }
        for d in dists
    ]
    if as_json:
        echo_json({"output": output, "distributions": rows})
        return
    click.echo(f"wrote {output}")
    for r in rows:
        click.echo(
            f"{r['label']}: {r['num_boxes']} boxes, mean IoU per box {_fmt(r['mean_iou'])}, "
            f"per image {_fmt(r['mean_image_iou'])}"
        )
