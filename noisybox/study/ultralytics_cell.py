"""Benchmark cells of Ultralytics YOLO detectors (the optional ``ultralytics`` extra).

A detector named like ``yolov8n``, ``yolov5nu``, ``yolov5su`` or ``yolo11n`` is built from
Ultralytics' own model YAML with random weights (or from the ``weights`` file the config
names) and trained by Ultralytics' trainer with the cell's box loss plugged in
(:func:`noisybox.detectors.ultralytics.plugged_trainer`; the stock name ``torchvision``
means the detector's own loss, Ultralytics' CIoU). It trains on the cell's noisy training
boxes, exported to YOLO format; the clean evaluation set (the dataset's test split unless
the caller names another, e.g. a validation split) is predicted by the last weights and
scored by noisybox's own pycocotools wrapper, so its record has the same metrics, noise
record, history keys (``box_loss``, ``alpha``, ``fg_iou``) and collapse check as a
torchvision cell's.

The learning curve: with the schedule's ``eval_every = k > 0`` the trainer's EMA weights
(what Ultralytics saves, in half precision, for the final evaluation) are scored the same
way after every k-th epoch, from Ultralytics' ``on_fit_epoch_end`` callback; as in a
torchvision cell the epoch's history entry gets ``metrics`` and ``eval_time_s``, and the
last epoch always carries the final evaluation, so the convergence check and the curve
plots read a YOLO cell like any other. Each evaluation prints one line to stderr (epoch,
AP50, mAP, mAP75:95), as a torchvision cell's does. Ultralytics' own log and progress bars (on
stdout, the bars redrawn with terminal escapes) show only when stdout and stderr are both
a terminal; otherwise the cell writes a plain line per epoch to stderr instead.

From the schedule an Ultralytics cell takes ``epochs``, ``batch_size`` (``batch``),
``image_size`` (``imgsz``), ``workers`` and ``eval_every``; every other Ultralytics
hyper-parameter keeps Ultralytics' default unless the detector's ``options`` set it
(Ultralytics' argument names, e.g. ``optimizer: SGD``). ``seed`` is the cell's seed with
``deterministic=True``. Ultralytics does not validate during training here (``val=False``:
the evaluation set must not choose the weights).

An interrupted cell continues where it stopped, as a torchvision cell does. After every
epoch (once Ultralytics has saved ``train/weights/last.pt``) the cell writes
``ultralytics_state.json`` beside it (:mod:`noisybox.study.ultralytics_state`): the history
so far, the box loss's state (Wise-IoU v3's running mean) and the cell's training
arguments. A re-run with the same arguments
resumes from that checkpoint with Ultralytics' own resume (its weights are the EMA's, its
optimiser state and epoch counter are restored; the data order after the restart is not
that of an uninterrupted run, so unlike a torchvision cell the result is not bit-identical)
and the history continues from the saved one (the first resumed epoch's entry says
``resumed_from``; an epoch whose evaluation was cut short keeps no ``metrics``). A cell
whose training had finished skips to the evaluation. Anything else (no state, other
arguments, a checkpoint that does not match the state) starts over.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from noisybox._fileio import atomic_write_json, to_jsonable
from noisybox._progress import evaluation_line, is_terminal
from noisybox.boxes import box_convert
from noisybox.engine.evaluation import coco_evaluate
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations
from noisybox.formats.yolo_export import export_yolo_dataset, yolo_class_ids
from noisybox.study.datasets import ResolvedDataset
from noisybox.study.grid import Cell
from noisybox.study.launchers import Trained
from noisybox.study.spec import (
    RESERVED_OPTIONS,
    ULTRALYTICS_BACKBONE,
    BenchmarkConfig,
    is_ultralytics_detector,
)
from noisybox.study.ultralytics_state import STATE_FILE, EpochRecorder, load_state

if TYPE_CHECKING:
    from noisybox.formats import Annotations

__all__ = [
    "RESERVED_OPTIONS",
    "ULTRALYTICS_BACKBONE",
    "is_ultralytics_detector",
    "train_ultralytics_cell",
    "ultralytics_train_args",
]

#: Schedule keys an Ultralytics cell reads, and the Ultralytics argument each one sets.
_SCHEDULE_KEYS = {
    "epochs": "epochs",
    "batch_size": "batch",
    "image_size": "imgsz",
    "workers": "workers",
}

#: Train arguments that are paths of this machine: a moved results folder still resumes.
_PATH_ARGS = frozenset({"data", "project"})


def _device(device: str, gpus: int) -> str | None:
    if device == "auto":
        return "0" if gpus >= 1 else None
    if device.startswith("cuda"):
        return device.split(":", 1)[1] if ":" in device else "0"
    return device


def ultralytics_train_args(
    cfg: BenchmarkConfig, cell: Cell, data_yaml: Path, out_dir: Path, gpus: int = 0
) -> dict[str, Any]:
    """The ``YOLO.train`` arguments of a cell (the record's ``train_config``).

    Raises:
        NoisyboxError: ``gpus > 1`` (Ultralytics' DDP, a child process that unpickles the
            trainer class and installs cloudpickle on first use, is not supported here).
    """
    if gpus > 1:
        raise NoisyboxError(
            f"Expected at most 1 GPU for the Ultralytics cell {cell.cell_id} but got {gpus}"
        )
    det = cell.detector
    args: dict[str, Any] = {
        "model": det.weights or f"{det.name}.yaml",
        "data": str(data_yaml),
        **{_SCHEDULE_KEYS[k]: v for k, v in cfg.schedule.items() if k in _SCHEDULE_KEYS},
        **det.options,
        "seed": cell.seed,
        "deterministic": True,
        "project": str(out_dir),
        "name": "train",
        "exist_ok": True,
        "val": False,
        "plots": det.options.get("plots", False),
        "verbose": False,
    }
    device = _device(cfg.device, gpus)
    if device is not None:
        args["device"] = device
    return args


@contextlib.contextmanager
def _ultralytics_quiet() -> Iterator[None]:
    """Ultralytics' log lines and progress bars off (its bars follow its logger's level)."""
    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def train_ultralytics_cell(
    cfg: BenchmarkConfig,
    cell: Cell,
    data: ResolvedDataset,
    train_annotations: Path,
    cell_dir: Path,
    config_dir: Path,
    *,
    gpus: int = 0,
    progress: bool = True,
    eval_annotations: Path | None = None,
    eval_images: Path | None = None,
) -> tuple[Trained, dict[str, Any]]:
    """Export, train, predict and score one Ultralytics cell.

    Args:
        cfg: the benchmark config.
        cell: the cell (an Ultralytics detector).
        data: the benchmark's dataset.
        train_annotations: the cell's (noisy) training annotations.
        cell_dir: the cell's working folder.
        config_dir: Ultralytics' config folder (see
            :func:`~noisybox.detectors.ultralytics_offline.configure_offline`).
        gpus: 0 (the config's device) or 1.
        progress: Ultralytics' own log and bars on a terminal (a plain line per epoch on
            stderr elsewhere); a line per evaluation goes to stderr either way.
        eval_annotations: the clean annotations the learning curve and the final metrics
            are scored on (``None``: the dataset's test split); also Ultralytics' ``val``
            split, so no other split is read.
        eval_images: their image folder (``None``: the dataset's test images).

    Returns:
        ``(trained, train_args)``.

    Raises:
        NoisyboxError: the extra is not installed, or training wrote no weights.
    """
    # Ultralytics writes its log and its bars, which redraw with terminal escapes, to stdout:
    # only where stdout and stderr are both a terminal (not a log, nor the results' stream)
    bars = progress and is_terminal(sys.stdout) and is_terminal(sys.stderr)
    YOLO, plugged_trainer = _import_ultralytics(cell, config_dir, quiet=not bars)
    start = time.perf_counter()
    eval_images = Path(data.test_images if eval_images is None else eval_images)
    test, class_ids, data_yaml = _export(
        data, train_annotations, eval_annotations, eval_images, cell_dir / "yolo"
    )
    args = ultralytics_train_args(cfg, cell, data_yaml, cell_dir, gpus)
    eval_every = int(cfg.schedule.get("eval_every", 0))

    evaluated = functools.partial(
        _scored, test=test, images=eval_images, class_ids=class_ids, args=args, cell_id=cell.cell_id
    )

    key = _resume_key(args, cell)
    state_path = cell_dir / STATE_FILE
    weights = cell_dir / "train" / "weights" / "last.pt"
    state = load_state(state_path, weights, key, train_dir=cell_dir / "train")
    history: list[dict[str, Any]] = list(state["history"])

    if not state["trained"]:
        resumed_from = len(history)
        trainer = plugged_trainer(cell.loss)
        if resumed_from:
            model = YOLO(str(weights))
            train_args: dict[str, Any] = {
                "data": args["data"],
                "resume": True,
                "save_dir": str(cell_dir / "train"),
                **{k: args[k] for k in ("device", "workers", "plots", "verbose") if k in args},
            }
        else:
            model = YOLO(args["model"])
            train_args = args
        recorder = EpochRecorder(
            state,
            history,
            state_path,
            cell.cell_id,
            plain=progress and not bars,
            eval_every=eval_every,
            evaluate=lambda run, epoch, epochs: evaluated(_EmaModel(run), epoch, epochs),
        )
        model.add_callback("on_train_epoch_start", recorder.on_epoch_start)
        model.add_callback("on_fit_epoch_end", recorder.on_epoch_end)
        with contextlib.nullcontext() if bars else _ultralytics_quiet():
            model.train(trainer=trainer, **train_args)
        if not weights.is_file():
            raise NoisyboxError(f"Expected Ultralytics to write {weights} but it did not")
        state["trained"] = True
        atomic_write_json(state_path, state)

    epochs = int(args["epochs"])
    metrics, eval_s = evaluated(YOLO(str(weights)), len(history) or epochs, epochs)
    if history:
        history[-1]["metrics"] = metrics
        history[-1]["eval_time_s"] = eval_s
    trained = Trained(history, metrics, time.perf_counter() - start)
    return trained, args


def _scored(
    model: Any,
    epoch: int,
    epochs: int,
    *,
    test: Annotations,
    images: Path,
    class_ids: list[int],
    args: dict[str, Any],
    cell_id: str,
) -> tuple[dict[str, float], float]:
    """``(metrics, seconds)`` of :func:`_evaluate` after ``epoch`` of ``epochs``, and its
    line on stderr."""
    eval_start = time.perf_counter()
    metrics = _evaluate(model, test, images, class_ids, args)
    seconds = time.perf_counter() - eval_start
    # as a torchvision cell's: every evaluation one line, also from --jobs N workers
    print(evaluation_line(epoch, epochs, metrics, seconds, cell_id), file=sys.stderr)
    return metrics, seconds


def _import_ultralytics(cell: Cell, config_dir: Path, *, quiet: bool) -> tuple[Any, Any]:
    """``(YOLO, plugged_trainer)``, Ultralytics configured offline in ``config_dir``.

    Raises:
        NoisyboxError: the ``ultralytics`` extra is not installed.
    """
    try:
        from noisybox.detectors.ultralytics_offline import configure_offline

        configure_offline(config_dir, quiet=quiet)
        from ultralytics import YOLO

        from noisybox.detectors.ultralytics import plugged_trainer
    except ImportError as exc:
        raise NoisyboxError(
            f"Expected the ultralytics extra for {cell.detector.name} but got: {exc}; "
            'install it with pip install "noisybox[ultralytics]"'
        ) from None
    return YOLO, plugged_trainer


def _export(
    data: ResolvedDataset,
    train_annotations: Path,
    eval_annotations: Path | None,
    eval_images: Path,
    out: Path,
) -> tuple[Annotations, list[int], Path]:
    """The cell's training set and its clean evaluation set as a YOLO dataset in ``out``.

    Returns:
        ``(test, class_ids, data_yaml)``: the evaluation ``Annotations``, the category ids
        in YOLO class-index order, and the dataset's YAML file.
    """
    train = read_annotations(train_annotations, data.format)
    test = read_annotations(
        data.test_annotations if eval_annotations is None else eval_annotations, data.format
    )
    class_ids = yolo_class_ids({"train": train, "test": test})
    data_yaml = export_yolo_dataset(
        {"train": (train, data.train_images), "val": (test, eval_images)},
        out,
        class_ids=class_ids,
    )
    return test, class_ids, data_yaml


class _EmaModel:
    """``YOLO.predict`` on a copy of a trainer's EMA weights, for :func:`_evaluate`.

    The copy is taken when built (prediction fuses the copy's convolutions and batch norms,
    and training goes on changing the EMA); predictions go through Ultralytics'
    ``DetectionPredictor`` with ``YOLO.predict``'s own defaults, as the final evaluation's
    ``YOLO(last.pt).predict`` does.
    """

    def __init__(self, trainer: Any) -> None:
        from ultralytics.utils.torch_utils import unwrap_model  # type: ignore[import-untyped]

        ema = getattr(trainer, "ema", None)
        source = trainer.model if ema is None else ema.ema
        self.module = copy.deepcopy(unwrap_model(source)).float().eval()
        self.predictor: Any = None

    def predict(self, source: list[str], **kwargs: Any) -> list[Any]:
        from ultralytics.models.yolo.detect import (  # type: ignore[import-untyped]
            DetectionPredictor,
        )

        if self.predictor is None:
            overrides = {"conf": 0.25, "batch": 1, "save": False, "mode": "predict", "rect": True}
            self.predictor = DetectionPredictor(overrides={**overrides, **kwargs})
            self.predictor.setup_model(model=self.module, verbose=False)
        return list(self.predictor(source=source, stream=False))


def _resume_key(args: dict[str, Any], cell: Cell) -> dict[str, Any]:
    """What must equal for a saved run to continue: the train arguments and the loss."""
    kept = {k: v for k, v in args.items() if k not in _PATH_ARGS}
    loss = {"name": cell.loss.name, "alpha": cell.loss.alpha, "warmup": cell.loss.alpha_warmup}
    return to_jsonable({"args": kept, "loss": loss})


def _evaluate(
    model: Any, test: Any, image_root: Path, class_ids: list[int], args: dict[str, Any]
) -> dict[str, float]:
    """Predict the clean test images and score them with noisybox's pycocotools wrapper.

    Ultralytics' validation settings (``conf=0.001``, NMS ``iou=0.7``) with COCO's 100
    detections per image, boxes in original-image pixels.
    """
    detections: list[dict[str, Any]] = []
    paths = [str(Path(image_root) / name) for name in test.file_names]
    for i in range(0, len(paths), 16):
        results = model.predict(
            paths[i : i + 16],
            imgsz=args.get("imgsz", 640),
            conf=0.001,
            iou=0.7,
            max_det=100,
            device=args.get("device"),
            verbose=False,
        )
        for image_id, result in zip(test.image_ids[i : i + 16], results, strict=True):
            boxes = result.boxes
            xywh = box_convert(boxes.xyxy.cpu().numpy(), "xyxy", "xywh")
            for box, k, score in zip(
                xywh, boxes.cls.cpu().numpy(), boxes.conf.cpu().numpy(), strict=True
            ):
                detections.append(
                    {
                        "image_id": int(image_id),
                        "category_id": class_ids[int(k)],
                        "bbox": [float(v) for v in box],
                        "score": float(score),
                    }
                )
    return coco_evaluate(test, detections)
