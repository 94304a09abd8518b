"""``noisybox train`` and ``noisybox evaluate``: thin commands over :mod:`noisybox.engine`."""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from noisybox._fileio import check_outputs
from noisybox._limits import MAX_IMAGE_SIZE
from noisybox.cli._options import (
    ALIAS_GIVEN,
    ALPHA,
    ALPHA_WARMUP,
    SEED,
    USER_ERRORS,
    BoundedIntRange,
    FiniteFloatRange,
    common_options,
    deprecated_alias,
    echo_json,
    echo_warning,
    format_option,
    run_command,
)
from noisybox.detectors import list_backbones, list_detectors
from noisybox.engine.collapse import stopped_nonfinite
from noisybox.engine.config import AMP_MODES, OPTIMIZERS, TrainConfig, field_default
from noisybox.engine.evaluation import evaluate_checkpoint
from noisybox.errors import NoisyboxError
from noisybox.losses import list_detector_losses
from noisybox.noise import list_noise_models

__all__ = ["evaluate", "train"]

# the engine reports invalid settings (e.g. from a --config file) as ValueError too
_USER_ERRORS = (*USER_ERRORS, ValueError)

# CLI option name -> TrainConfig field (when they differ)
_FIELD = {"out": "out_dir"}
# options that are not TrainConfig fields (turned into fields by the command)
_NOT_FIELDS = {
    "config",
    "data",
    "quiet",
    "as_json",
    "debug",
    "noise_eta",
    "noise_model",
    "head_convs",
}


def _default(field: str) -> dict[str, Any]:
    """``default`` and ``show_default`` of an option: the ``TrainConfig`` field's default."""
    return {"default": field_default(field), "show_default": True}


def _is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


@click.command()
@click.option(
    "--config",
    type=click.Path(exists=True, dir_okay=False),
    help="JSON or YAML file of TrainConfig fields; options given here override it.",
)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False),
    help="A COCO dataset folder with instances_train.json and instances_val.json (as written "
    "by make-dataset): the training and the clean test annotations.",
)
@click.option(
    "--train-annotations",
    type=click.Path(exists=True),
    help="Training annotations (COCO json, VOC devkit, YOLO folder); may be noisy.",
)
@click.option(
    "--train-images",
    type=click.Path(exists=True, file_okay=False),
    help="Image root of the training annotations.",
)
@click.option(
    "--test-annotations",
    type=click.Path(exists=True),
    help="Clean test annotations evaluated after training.",
)
@deprecated_alias(
    "--val-annotations", "--test-annotations", "test_annotations", type=click.Path(exists=True)
)
@click.option(
    "--test-images",
    type=click.Path(exists=True, file_okay=False),
    help="Image root of the test annotations.",
)
@deprecated_alias(
    "--val-images",
    "--test-images",
    "test_images",
    type=click.Path(exists=True, file_okay=False),
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    **_default("out_dir"),
    help="Output folder (last.pt, result.json).",
)
@click.option("--detector", type=click.Choice(list_detectors()), **_default("detector"))
@click.option("--backbone", type=click.Choice(list_backbones()), **_default("backbone"))
@click.option(
    "--loss",
    type=click.Choice(list_detector_losses()),
    **_default("loss"),
    help="Box-regression loss; torchvision = the detector's stock loss.",
)
@click.option(
    "--alpha",
    type=ALPHA,
    help="Alpha of the loss after warm-up (default: the loss's own).",
)
@click.option(
    "--alpha-warmup",
    type=ALPHA_WARMUP,
    **_default("alpha_warmup"),
    help="Share of the steps over which alpha ramps from 1 to its target.",
)
@click.option("--epochs", type=click.IntRange(min=1), **_default("epochs"))
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    **_default("batch_size"),
    help="Images per step and process.",
)
@click.option(
    "--lr",
    type=FiniteFloatRange(min=0, min_open=True),
    help="Peak learning rate [default: 0.002 AdamW, 0.01 SGD].",
)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), **_default("optimizer"))
@click.option("--weight-decay", type=FiniteFloatRange(min=0), **_default("weight_decay"))
@click.option(
    "--lr-warmup",
    type=click.FloatRange(0, 1, max_open=True),
    **_default("lr_warmup"),
    help="Share of the steps of linear learning-rate warm-up.",
)
@click.option(
    "--grad-clip",
    type=FiniteFloatRange(min=0),
    **_default("grad_clip"),
    help="Max gradient norm (0: off).",
)
@click.option("--image-size", type=BoundedIntRange(32, MAX_IMAGE_SIZE), **_default("image_size"))
@click.option("--fpn-channels", type=click.IntRange(min=1), **_default("fpn_channels"))
@click.option(
    "--head-convs",
    type=click.IntRange(min=1),
    help="FCOS: convolutions per head branch [default: torchvision's 4].",
)
@click.option("--seed", type=SEED, **_default("seed"))
@click.option("--device", **_default("device"), help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--amp",
    type=click.Choice(AMP_MODES),
    **_default("amp"),
    help="auto: float16 on CUDA, off elsewhere; bf16 also works on CPU.",
)
@click.option("--workers", type=click.IntRange(min=0), **_default("workers"))
@click.option(
    "--weights",
    type=click.Path(exists=True, dir_okay=False),
    help="Local detector weights to start from.",
)
@click.option(
    "--weights-backbone",
    type=click.Path(exists=True, dir_okay=False),
    help="Local classification weights for the backbone.",
)
@click.option(
    "--noise-eta",
    type=click.FloatRange(0, 1, max_open=True),
    help="Online box noise of this eta on the training boxes.",
)
@click.option(
    "--noise-model",
    type=click.Choice(list_noise_models()),
    default="uniform",
    show_default=True,
    help="Noise model for --noise-eta.",
)
@click.option(
    "--eval-every",
    type=click.IntRange(min=0),
    **_default("eval_every"),
    help="Evaluate the clean test set every N epochs (the learning curve); 0: at the end only.",
)
@click.option(
    "--ema-decay",
    type=click.FloatRange(0, 1, max_open=True),
    **_default("ema_decay"),
    help="Evaluate an exponential moving average of the weights with this decay (0: off).",
)
@click.option(
    "--scale-range",
    type=FiniteFloatRange(min=0, min_open=True),
    nargs=2,
    default=None,
    metavar="LOW HIGH",
    help="Random zoom of each training image, e.g. 0.5 1.5 [default: off].",
)
@click.option(
    "--resume/--restart",
    **_default("resume"),
    help="Continue from OUT/last.pt if present, or start over.",
)
@common_options
def train(**options: Any) -> None:
    """Train a detector with a chosen box loss and evaluate it on clean test boxes.

    \b
    Example:
      noisybox make-dataset shapes data/shapes
      noisybox train --data data/shapes --detector fcos --loss alpha-iou --alpha 3 \\
          --image-size 128 --fpn-channels 64 --epochs 8 --out runs/fcos-a3

    Works unchanged under torchrun --nproc_per_node N (DDP).
    """
    ctx = click.get_current_context()
    debug = options["debug"]

    def run() -> Any:
        given = {
            name
            for name in options
            if ctx.get_parameter_source(name)
            in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
        } | ctx.meta.get(ALIAS_GIVEN, set())
        # only what the command line sets: the file and TrainConfig's defaults fill the rest
        overrides: dict[str, Any] = {
            _FIELD.get(name, name): value
            for name, value in options.items()
            if name in given and name not in _NOT_FIELDS
        }
        if options["data"]:
            root = Path(options["data"])
            train_json, test_json = root / "instances_train.json", root / "instances_val.json"
            if not train_json.is_file():
                raise click.BadParameter(
                    f"Expected {train_json.name} in {root} but got no such file",
                    param_hint="--data",
                )
            overrides.setdefault("train_annotations", str(train_json))
            if test_json.is_file():
                overrides.setdefault("test_annotations", str(test_json))
        if options["head_convs"] is not None:
            overrides["detector_kwargs"] = {"num_convs": options["head_convs"]}
        if options.get("scale_range"):
            overrides["scale_range"] = list(options["scale_range"])
        if "noise_eta" in given:
            overrides["noise"] = {
                "eta": options["noise_eta"],
                "noise_model": options["noise_model"],
            }
        if not options["config"] and "train_annotations" not in overrides:
            raise click.UsageError(
                "Expected --data, --train-annotations or a --config with train_annotations"
            )
        cfg = _load_train_config(options["config"], overrides)
        out = Path(cfg.out_dir)
        check_outputs(
            {"--out (last.pt)": out / "last.pt", "--out (result.json)": out / "result.json"},
            {
                "--config": options["config"],
                "--train-annotations": cfg.train_annotations,
                "--test-annotations": cfg.test_annotations,
                "--weights": cfg.weights,
                "--weights-backbone": cfg.weights_backbone,
            },
        )
        _check_out_is_not_the_data(out, cfg)
        from noisybox.engine import train as run_training

        return run_training(cfg, progress=not options["quiet"])

    result = run_command(debug, run, _USER_ERRORS)
    if not _is_main_process():
        return
    if options["as_json"]:  # the collapse reasons are in the JSON ("collapsed")
        echo_json(result.to_dict())
    else:
        _echo_train_result(result)
    _fail_if_nonfinite(result)


def _check_out_is_not_the_data(out: Path, cfg: TrainConfig) -> None:
    """``--out`` must not be a dataset folder: last.pt and result.json would land among the
    user's images and annotation files."""
    folders = {
        "the training images": cfg.train_images,
        "the test images": cfg.test_images,
        "the training annotations": Path(cfg.train_annotations).parent,
        "the test annotations": (
            Path(cfg.test_annotations).parent if cfg.test_annotations else None
        ),
    }
    for what, folder in folders.items():
        if folder is None or not out.is_dir():
            continue
        with contextlib.suppress(OSError):
            if os.path.samefile(out, folder):
                raise NoisyboxError(
                    f"Expected --out to be a folder of its own but got {out}, the folder of "
                    f"{what}; noisybox never writes into a dataset"
                )


def _fail_if_nonfinite(result: Any) -> None:
    """Exit 1 when the weights became non-finite: the run is a failure, not a result."""
    epoch = stopped_nonfinite(getattr(result, "history", None) or [])
    if epoch is not None:
        raise click.ClickException(
            f"Expected finite weights but got non-finite ones after epoch {epoch}; training "
            f"stopped and {Path(result.checkpoint).parent / 'result.json'} records the run "
            "as collapsed (lower --lr or set --grad-clip)"
        )


def _load_train_config(config: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """``TrainConfig.from_sources``, the deprecated keys of ``--config`` warned about in one
    line each on stderr (other warnings pass through)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        cfg = TrainConfig.from_sources(config, **overrides)
    for warning in caught:
        if issubclass(warning.category, FutureWarning):
            echo_warning(f"{config}: {warning.message}")
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return cfg


def _echo_train_result(result: Any) -> None:
    """The summary ``train`` prints without ``--json``: checkpoint, timing, last epoch,
    metrics, and the collapse warnings on stderr."""
    last = result.history[-1] if result.history else {}
    click.echo(f"checkpoint  {result.checkpoint}")
    click.echo(
        f"epochs      {len(result.history)}  wall time {result.wall_time_s:.1f} s  device {result.device} x{result.world_size}"
    )
    if last:
        click.echo(
            f"last epoch  loss {last['loss']:.4f}  box_loss {last['box_loss']:.4f}  images/s {last['images_per_s']:.1f}"
        )
    if result.metrics:
        _echo_metrics(result.metrics)
    for reason in result.collapsed:
        click.echo(f"WARNING collapsed: {reason}", err=True)


def _echo_metrics(metrics: dict[str, float]) -> None:
    for name, value in metrics.items():
        click.echo(f"{name:<11} {value:.4f}")


@click.command()
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--annotations",
    required=True,
    type=click.Path(exists=True),
    help="Clean test annotations (COCO json, VOC devkit, YOLO folder).",
)
@click.option(
    "--images",
    type=click.Path(exists=True, file_okay=False),
    help="Image root of the annotations (default: the format's).",
)
@format_option("Annotation format (default: detected).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@common_options
def evaluate(
    checkpoint: str,
    annotations: str,
    images: str | None,
    fmt: str | None,
    device: str,
    batch_size: int,
    as_json: bool,
    quiet: bool,
    debug: bool,
) -> None:
    """Evaluate a training CHECKPOINT on clean test annotations (COCO AP50 ... AP95, mAP)."""
    metrics = run_command(
        debug,
        lambda: evaluate_checkpoint(
            checkpoint, annotations, images, device=device, batch_size=batch_size, format=fmt
        ),
        _USER_ERRORS,
    )
    if as_json:
        echo_json(metrics)
    else:
        _echo_metrics(metrics)
