"""``noisybox make-dataset``: write the embedded synthetic detection dataset."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from noisybox._fileio import check_outputs
from noisybox._limits import MAX_DATASET_IMAGES, MAX_IMAGE_SIZE, MAX_OBJECTS
from noisybox.cli._options import (
    SEED,
    USER_ERRORS,
    BoundedIntRange,
    common_options,
    echo_info,
    echo_json,
    run_command,
)
from noisybox.data.synthetic import make_shapes_dataset
from noisybox.errors import NoisyboxError

__all__ = ["make_dataset"]

DATASET_KINDS = ("shapes",)


@click.command("make-dataset")
@click.argument("kind", type=click.Choice(DATASET_KINDS))
@click.argument("out", type=click.Path(file_okay=False, writable=True, path_type=Path))
@click.option(
    "--num-train",
    type=BoundedIntRange(1, MAX_DATASET_IMAGES),
    default=800,
    show_default=True,
    help="Training images.",
)
@click.option(
    "--num-val",
    type=BoundedIntRange(1, MAX_DATASET_IMAGES),
    default=200,
    show_default=True,
    help="Validation images.",
)
@click.option(
    "--image-size",
    type=BoundedIntRange(32, MAX_IMAGE_SIZE),
    default=128,
    show_default=True,
    help="Side of the square images in pixels.",
)
@click.option(
    "--max-objects",
    type=BoundedIntRange(1, MAX_OBJECTS),
    default=6,
    show_default=True,
    help="Objects per image are drawn from 1..N.",
)
@click.option("--seed", type=SEED, default=0, show_default=True, help="Dataset seed.")
@click.option(
    "--num-calib",
    type=BoundedIntRange(0, MAX_DATASET_IMAGES),
    default=200,
    show_default=True,
    help="Images of the validation split 'calib' that `noisybox calibrate` evaluates on.",
)
@click.option("--overwrite", is_flag=True, help="Replace a dataset already in OUT.")
@common_options
def make_dataset(
    kind: str,
    out: Path,
    num_train: int,
    num_val: int,
    num_calib: int,
    image_size: int,
    max_objects: int,
    seed: int,
    overwrite: bool,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Write a synthetic COCO detection dataset to OUT (KIND: shapes).

    OUT gets images/{train,val,calib}/*.png and instances_{train,val,calib}.json; COCO
    file_name entries are relative to OUT. The benchmark trains on train and tests on val
    (its historical name); calib is the validation split calibration evaluates on. The
    same seed and sizes give byte-identical files.

    \b
    Example:
        noisybox make-dataset shapes data/shapes
        noisybox corrupt data/shapes/instances_train.json -o noisy.json --eta 0.3
    """
    start = time.perf_counter()

    def run() -> Any:
        check_outputs({"OUT": out}, {}, folders=("OUT",))
        try:
            return make_shapes_dataset(
                out,
                num_train=num_train,
                num_val=num_val,
                num_calib=num_calib,
                image_size=image_size,
                max_objects=max_objects,
                seed=seed,
                overwrite=overwrite,
            )
        except FileExistsError as exc:  # name the option, not the keyword
            raise NoisyboxError(str(exc).replace("overwrite=True", "--overwrite")) from None

    dataset = run_command(debug, run, (*USER_ERRORS, ValueError))
    seconds = time.perf_counter() - start
    summary = {
        "kind": kind,
        "root": str(dataset.root),
        "image_root": str(dataset.image_root),
        "train_annotations": str(dataset.train_annotations),
        "val_annotations": str(dataset.val_annotations),
        "categories": list(dataset.categories),
        "num_train": dataset.num_train,
        "num_val": dataset.num_val,
        "calib_annotations": None
        if dataset.calib_annotations is None
        else str(dataset.calib_annotations),
        "num_calib": dataset.num_calib,
        "image_size": dataset.image_size,
        "seed": seed,
        "seconds": round(seconds, 3),
    }
    if as_json:
        echo_json(summary)
        return
    click.echo(f"train: {dataset.train_annotations} ({dataset.num_train} images)")
    click.echo(f"val:   {dataset.val_annotations} ({dataset.num_val} images; the test split)")
    if dataset.calib_annotations is not None:
        click.echo(f"calib: {dataset.calib_annotations} ({dataset.num_calib} images; validation)")
    click.echo(f"image root: {dataset.image_root}")
    click.echo(f"classes: {', '.join(dataset.categories)}")
    echo_info(f"written in {seconds:.1f} s")
