"""The study config as dataclasses: what a validated YAML file holds.

Validated by :func:`noisybox.study.schema.validate_config`; loaded from a preset, a file or
a dict by :func:`noisybox.study.loading.load_config`.

A loss row is a :class:`~noisybox.settings.LossSpec` (defined in :mod:`noisybox.settings`,
re-exported here with :func:`loss_label` and :func:`shows_alpha`).

A benchmark file states *what* to measure (dataset, detectors, losses with their alpha,
noise levels, seeds) and *how* to train every cell (one schedule for all). It is validated
as a whole before anything runs: every unknown key, bad value and missing dataset path is
collected and reported together, each naming its key, so that a two-hour grid never dies
at cell 17 on a typo.

Schema (``?`` marks optional keys; defaults in brackets)::

    name: str                       ? [file stem]
    description: str                ?
    dataset:
      builtin: shapes               # the embedded synthetic dataset, generated on demand
      num_train / num_val / image_size / seed   ? options of make_shapes_dataset
      # or a real dataset (relative paths: against the config file's folder,
      # or the current folder for packaged presets; ~ and $VARS are expanded):
      train_annotations: path       # the file that gets corrupted
      train_images: path
      test_annotations: path        # clean, never corrupted
      test_images: path
      format: coco | voc | yolo     ? [detected]
      val_annotations / val_images: path   ? the validation split calibration evaluates on
      # or a Pascal VOC folder and its image sets (ImageSets/Main/<set>.txt), by role:
      voc: path                       # or a list of year folders read as one (VOC07+12):
                                      # each set from every folder that lists it
      train: trainval                 ? [trainval] trained on (and corrupted)
      val: val                        ? [val] evaluated on by calibration
      test: test                      ? [test] the clean test set
      calibration_train: train        ? [train] trained on by calibration (no val image)
      # or a named real dataset (checked against its published copy):
      bccd: path                      # or null: $NOISYBOX_BCCD; the sets as for voc
    detectors:                      # a name, or {name, backbone?, weights?, options?}
      - retinanet
    losses:                         # a name, or {name, alpha?, alpha_warmup?}
      - iou                         # alpha may be a list: one grid row per value
      - {name: alpha-iou, alpha: 3, alpha_warmup: 0.3}
    etas: [0.0, 0.1, 0.2, 0.3]      # noise rate of eq. 5; 0 = the clean file
    noise: {model: uniform, boundary: shift, ratio: 1.0}          ?
      # corruptions: [missing, class_flip, extra, relocate] at the rate of each eta ?
      # model: none turns box noise off (then corruptions are needed);
      # or a list of such mappings, the noise conditions: one grid axis, each with a
      # label (name: or derived, e.g. uniform+missing); eta 0 is trained once for all
    seeds: [0]                      # seeds the noise draw and the training
    schedule: {epochs, batch_size, lr, optimizer, image_size, workers, ...}
    device: auto                    ? [auto]
    collapse: {min_box_loss_drop, min_fg_iou, ap50_near_zero}      ?
    report: {reference: iou}        ? paired differences of every loss to this one
    protocol: PROTOCOL.md           ? the pre-registered protocol: required before the first
                                      cell, its sha256 stamped into benchmark.json
    mode: study | calibration       ? [study] calibration: clean boxes, trained on the
                                      calibration training split, evaluated on val
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from typing import Any

from noisybox.errors import NoisyboxError
from noisybox.settings import LossSpec, loss_label, shows_alpha

__all__ = [
    "BUILTIN_DATASETS",
    "MODES",
    "BenchmarkConfig",
    "CollapseConfig",
    "ConfigError",
    "DatasetConfig",
    "DetectorSpec",
    "LossSpec",
    "NO_BOX_NOISE",
    "NoiseConfig",
    "RUNTIME_KEYS",
    "RESERVED_OPTIONS",
    "ReportConfig",
    "ULTRALYTICS_BACKBONE",
    "config_diff",
    "is_ultralytics_detector",
    "loss_label",
    "parse_label",
    "shows_alpha",
]

BUILTIN_DATASETS = ("shapes",)
#: What a config measures: a ``study`` tests on the test split; ``calibration`` trains on
#: the calibration training split with clean boxes and evaluates on the validation split.
MODES = ("study", "calibration")
#: ``noise.model`` of a noise condition without box noise: its corruptions alone.
NO_BOX_NOISE = "none"
DATASET_FORMATS = ("coco", "voc", "yolo")

_MODEL_RE = re.compile(r"^yolo(v\d+|\d+)[nsmlx]u?$")

#: The ``backbone`` of every Ultralytics detector row (the model YAML fixes the network).
ULTRALYTICS_BACKBONE = "ultralytics"

#: Ultralytics train arguments the runner sets per cell; a detector's options may not.
RESERVED_OPTIONS = frozenset(
    {"data", "model", "seed", "deterministic", "project", "name", "exist_ok", "resume"}
    | {"device", "val", "trainer", "pretrained", "epochs", "batch", "imgsz", "workers"}
    | {"save_dir"}
)

# Keys that may change between sessions on the same results folder without changing what
# is measured (a resumed grid may run on another device or with more loader workers; the
# report's options only change how the records are compared).
RUNTIME_KEYS = (
    "name",
    "description",
    "device",
    "schedule.workers",
    "schedule.eval_batch_size",
    "report",
    "protocol",
    "dataset.root",  # a named dataset is pinned by the digest of its files, not its path
)


class ConfigError(NoisyboxError):
    """A benchmark config failed validation; ``errors`` lists every problem found.

    Args:
        errors: one line per problem, each starting with the offending key.
        source: the file the config came from, named in the message.
    """

    def __init__(self, errors: list[str], source: str = "<config>") -> None:
        self.errors = list(errors)
        self.source = source
        # one line, like every noisybox error: the problems are separated by "; "
        super().__init__(
            f"Invalid benchmark config {source} ({len(self.errors)} "
            f"problem{'s' if len(self.errors) != 1 else ''}): {'; '.join(self.errors)}"
        )


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Where the benchmark's images and annotations come from.

    Either ``builtin`` names an embedded dataset (generated into the results folder on
    demand, with ``builtin_options`` passed to its generator), or the four paths are set
    (and optionally the two of a validation split), or ``voc`` is a Pascal VOC folder whose
    ``image_sets`` give the image set of each role (``train``, ``val``, ``test``,
    ``calibration_train``); ``name`` names a known real dataset (``bccd``).
    """

    builtin: str | None = None
    builtin_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    train_annotations: str | None = None
    train_images: str | None = None
    test_annotations: str | None = None
    test_images: str | None = None
    format: str | None = None
    val_annotations: str | None = None
    val_images: str | None = None
    voc: str | tuple[str, ...] | None = None
    name: str | None = None
    image_sets: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The ``dataset:`` mapping that loads back into this config (unset keys left out)."""
        if self.builtin is not None:
            return {"builtin": self.builtin, **self.builtin_options}
        if self.voc is not None:
            voc = list(self.voc) if isinstance(self.voc, tuple) else self.voc
            where = {"name": self.name, "root": voc} if self.name else {"voc": voc}
            return {**where, **self.image_sets}
        data = dataclasses.asdict(self)
        return {
            k: v
            for k, v in data.items()
            if k not in ("builtin", "builtin_options", "image_sets") and v is not None
        }


@dataclasses.dataclass(frozen=True)
class DetectorSpec:
    """A detector of the grid; ``options`` are extra ``TrainConfig`` fields for it."""

    name: str
    backbone: str = "resnet18"
    weights: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.name}-{self.backbone}"


def is_ultralytics_detector(name: str) -> bool:
    """Whether ``name`` names an Ultralytics YOLO model of the package's YAMLs.

    >>> [is_ultralytics_detector(n) for n in ("yolov8n", "yolov5su", "yolo11n", "fcos")]
    [True, True, True, False]
    """
    return bool(_MODEL_RE.match(name))


def parse_label(label: str) -> tuple[str, float | None]:
    """The loss name and alpha of a :func:`loss_label` (``None`` where the label shows none).

    Kept for callers outside noisybox; the report reads each row's loss from its records
    (:class:`LossSpec`, ``noisybox.report.tables.LossOrder``), never from its label.

    >>> parse_label("alpha-iou@3 (warm-up 0.3)"), parse_label("iou")
    (('alpha-iou', 3.0), ('iou', None))
    """
    loss, _, alpha = label.split(" ")[0].partition("@")
    return loss, float(alpha) if alpha else None


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """One noise condition: options of ``noisybox.corrupt.corrupt_annotations`` at each eta.

    ``corruptions`` names annotation-level noise (``missing``, ``class_flip``, ``extra``,
    ``relocate``) drawn at the rate of the cell's eta alongside the box noise, UNA's mixed
    setting (one rate for every kind of noise). ``model`` :data:`NO_BOX_NOISE` (``"none"``)
    turns the box noise off, so that the corruptions are alone (UNA's per-type rows).
    ``name`` is an explicit :attr:`label`.
    """

    model: str = "uniform"
    boundary: str = "shift"
    ratio: float = 1.0
    corruptions: tuple[str, ...] = ()
    name: str | None = None

    @property
    def box_noise(self) -> bool:
        """Whether the boxes get the noise model's noise at the cell's eta."""
        return self.model != NO_BOX_NOISE

    @property
    def label(self) -> str:
        """``name``, or the noise model and the corruptions joined by ``+``.

        >>> NoiseConfig().label, NoiseConfig("none", corruptions=("missing",)).label
        ('uniform', 'missing')
        >>> NoiseConfig("oamil", corruptions=("missing", "class_flip")).label
        'oamil+missing+class_flip'
        """
        if self.name is not None:
            return self.name
        return "+".join([self.model] * self.box_noise + list(self.corruptions))

    def to_dict(self) -> dict[str, Any]:
        """The condition as a ``noise:`` mapping; ``corruptions`` and ``name`` only when
        set, so that configs written before them keep their fingerprint."""
        data: dict[str, Any] = {"model": self.model, "boundary": self.boundary}
        data["ratio"] = self.ratio
        if self.corruptions:
            data["corruptions"] = list(self.corruptions)
        if self.name is not None:
            data["name"] = self.name
        return data


@dataclasses.dataclass(frozen=True)
class CollapseConfig:
    """Thresholds of the collapse detector (see ``noisybox.study.collapse_flags.detect_collapse``).

    Attributes:
        min_box_loss_drop: a cell whose matched boxes' IoU is not recorded (the stock
            torchvision losses) and whose alpha was constant collapsed if its box loss fell
            by less than this share over the run.
        min_fg_iou: a cell collapsed if its matched predicted boxes end with a mean IoU
            with their targets below this (alpha-free, so a warm-up does not fool it).
        ap50_near_zero: a cell collapsed if its AP50 (fraction) is below this while its
            alpha = 1 twin's is at least twice as high.
    """

    min_box_loss_drop: float = 0.05
    min_fg_iou: float = 0.2
    ap50_near_zero: float = 0.02


@dataclasses.dataclass(frozen=True)
class ReportConfig:
    """Options of the report that change no measurement.

    Attributes:
        reference: the label of a loss row of the grid (``iou``, ``alpha-iou@3 (warm-up
            0.3)``) every other loss row is compared with, seed by seed, in the report's
            "Paired difference to <reference>" section; ``None`` for no such section.
    """

    reference: str | None = None


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """A validated benchmark: the grid axes and the protocol shared by every cell.

    ``noise`` is the noise of a study with one ``noise:`` mapping. A study whose ``noise:``
    is a list of two or more mappings has them in ``noise_conditions``, a grid axis (and
    ``noise`` is the first of them); :attr:`conditions` gives either.
    """

    name: str
    dataset: DatasetConfig
    detectors: tuple[DetectorSpec, ...]
    losses: tuple[LossSpec, ...]
    etas: tuple[float, ...]
    seeds: tuple[int, ...]
    schedule: dict[str, Any]
    noise: NoiseConfig = NoiseConfig()
    noise_conditions: tuple[NoiseConfig, ...] = ()
    device: str = "auto"
    collapse: CollapseConfig = CollapseConfig()
    report: ReportConfig = ReportConfig()
    protocol: str | None = None
    mode: str = "study"
    description: str = ""
    source: str = "<config>"
    base_dir: str = "."

    def to_dict(self) -> dict[str, Any]:
        """The normalised config as plain JSON/YAML data (loss defaults resolved).

        ``load_config(cfg.to_dict(), base_dir=cfg.base_dir)`` gives back an equal config.
        """
        data = dataclasses.asdict(self)
        data.pop("source")
        data.pop("base_dir")
        data["dataset"] = self.dataset.to_dict()
        data["etas"] = list(self.etas)
        data["seeds"] = list(self.seeds)
        data["detectors"] = [
            {k: v for k, v in d.items() if v is not None and v != {}} for d in data["detectors"]
        ]
        # params (the loss's further arguments) only when set, so that configs written
        # before LossSpec had them keep their fingerprint
        data["losses"] = [
            {k: v for k, v in lo.items() if v is not None and v != ()} for lo in data["losses"]
        ]
        # corruptions and name absent when unset, so that configs written before them keep
        # their fingerprint; a list only for several noise conditions
        data.pop("noise_conditions")
        if self.noise_conditions:
            data["noise"] = [n.to_dict() for n in self.noise_conditions]
        else:
            data["noise"] = self.noise.to_dict()
        if self.report == ReportConfig():
            data.pop("report")  # likewise: a study that sets no report option reads as before
        for key, unset in (("protocol", None), ("mode", "study")):
            if data[key] == unset:
                data.pop(key)  # likewise
        return data

    @property
    def conditions(self) -> tuple[NoiseConfig, ...]:
        """The noise conditions of the grid: ``noise_conditions``, or ``(noise,)``."""
        return self.noise_conditions or (self.noise,)

    def fingerprint(self) -> str:
        """A short hash of everything but ``RUNTIME_KEYS``: same hash, same measurement."""
        data = _drop_runtime(self.to_dict())
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _drop_runtime(data: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(data)
    for key in RUNTIME_KEYS:
        node = data
        *parents, last = key.split(".")
        for p in parents:
            node = node.get(p, {})
        node.pop(last, None)
    return data


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict) and data:
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def config_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """The keys whose values differ between two ``to_dict()`` configs, ignoring runtime keys.

    Returns:
        Lines ``"key: old -> new"`` in key order; empty when both describe one measurement.

    >>> config_diff({"etas": [0.1], "device": "cpu"}, {"etas": [0.2], "device": "cuda"})
    ['etas: [0.1] -> [0.2]']
    """
    a, b = _flatten(_drop_runtime(old)), _flatten(_drop_runtime(new))
    missing = object()
    lines = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb:
            sa = "(unset)" if va is missing else json.dumps(va, default=str)
            sb = "(unset)" if vb is missing else json.dumps(vb, default=str)
            lines.append(f"{key}: {sa} -> {sb}")
    return lines
