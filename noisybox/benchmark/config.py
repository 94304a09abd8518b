"""Benchmark configuration: the YAML schema, its validation and the shipped presets.

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
    detectors:                      # a name, or {name, backbone?, weights?, options?}
      - retinanet
    losses:                         # a name, or {name, alpha?, alpha_warmup?}
      - iou                         # alpha may be a list: one grid row per value
      - {name: alpha-iou, alpha: 3, alpha_warmup: 0.3}
    etas: [0.0, 0.1, 0.2, 0.3]      # noise rate of eq. 5; 0 = the clean file
    noise: {model: uniform, boundary: shift, ratio: 1.0}          ?
    seeds: [0]                      # seeds the noise draw and the training
    schedule: {epochs, batch_size, lr, optimizer, image_size, workers, ...}
    device: auto                    ? [auto]
    collapse: {min_box_loss_drop, min_fg_iou, ap50_near_zero}      ?
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from noisybox.errors import NoisyboxError

__all__ = [
    "BUILTIN_DATASETS",
    "BenchmarkConfig",
    "CollapseConfig",
    "ConfigError",
    "DatasetConfig",
    "DetectorSpec",
    "LossSpec",
    "NoiseConfig",
    "RUNTIME_KEYS",
    "config_diff",
    "list_presets",
    "loss_label",
    "load_config",
    "preset_path",
    "validate_config",
]

BUILTIN_DATASETS = ("shapes",)
DATASET_FORMATS = ("coco", "voc", "yolo")
# Keys that may change between sessions on the same results folder without changing what
# is measured (a resumed grid may run on another device or with more loader workers).
RUNTIME_KEYS = ("name", "description", "device", "schedule.workers", "schedule.eval_batch_size")
# TrainConfig fields the runner fills per cell; a schedule may not set them.
_CELL_FIELDS = frozenset(
    {
        "train_annotations",
        "train_images",
        "val_annotations",
        "val_images",
        "out_dir",
        "detector",
        "backbone",
        "loss",
        "alpha",
        "alpha_warmup",
        "seed",
        "device",
        "weights",
    }
)
_SHAPES_OPTIONS = ("num_train", "num_val", "image_size", "seed")
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


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
    demand, with ``builtin_options`` passed to its generator) or the four paths are set.
    """

    builtin: str | None = None
    builtin_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    train_annotations: str | None = None
    train_images: str | None = None
    test_annotations: str | None = None
    test_images: str | None = None
    format: str | None = None


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


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """One loss row of the grid: a registered loss name, its alpha and alpha warm-up."""

    name: str
    alpha: float | None = None
    alpha_warmup: float | None = None

    @property
    def label(self) -> str:
        """``alpha-iou@3``, ``iou`` (alpha 1 is implied by plain names), ``iou@2``."""
        return loss_label(self.name, self.alpha)


def loss_label(loss: str, alpha: float | None, alpha_warmup: float | None = None) -> str:
    """A loss row's display name: alpha shown for ``alpha-*`` losses and non-default alphas.

    >>> loss_label("alpha-iou", 3.0, 0.3), loss_label("iou", 1.0), loss_label("torchvision", None)
    ('alpha-iou@3 (warm-up 0.3)', 'iou', 'torchvision')
    """
    text = loss
    if alpha is not None and (alpha != 1.0 or loss.startswith("alpha-")):
        text = f"{loss}@{alpha:g}"
    if alpha_warmup is not None:
        text += f" (warm-up {alpha_warmup:g})"
    return text


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """Options of ``noisybox.corrupt.corrupt_annotations`` shared by every cell."""

    model: str = "uniform"
    boundary: str = "shift"
    ratio: float = 1.0


@dataclasses.dataclass(frozen=True)
class CollapseConfig:
    """Thresholds of the collapse detector (see ``noisybox.benchmark.runner.detect_collapse``).

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
class BenchmarkConfig:
    """A validated benchmark: the grid axes and the protocol shared by every cell."""

    name: str
    dataset: DatasetConfig
    detectors: tuple[DetectorSpec, ...]
    losses: tuple[LossSpec, ...]
    etas: tuple[float, ...]
    seeds: tuple[int, ...]
    schedule: dict[str, Any]
    noise: NoiseConfig = NoiseConfig()
    device: str = "auto"
    collapse: CollapseConfig = CollapseConfig()
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
        ds = data["dataset"]
        builtin_options = ds.pop("builtin_options")
        if ds["builtin"] is not None:
            data["dataset"] = {"builtin": ds["builtin"], **builtin_options}
        else:
            data["dataset"] = {k: v for k, v in ds.items() if k != "builtin" and v is not None}
        data["etas"] = list(self.etas)
        data["seeds"] = list(self.seeds)
        data["detectors"] = [
            {k: v for k, v in d.items() if v is not None and v != {}} for d in data["detectors"]
        ]
        data["losses"] = [{k: v for k, v in lo.items() if v is not None} for lo in data["losses"]]
        return data

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


# --------------------------------------------------------------------------- presets


def list_presets() -> list[str]:
    """Names of the presets shipped in ``noisybox/benchmark/presets/``.

    >>> "quick" in list_presets()
    True
    """
    folder = resources.files("noisybox.benchmark") / "presets"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_path(name: str) -> Path:
    """The YAML file of a shipped preset.

    Raises:
        ConfigError: ``name`` is not a shipped preset (the message lists them).
    """
    if name not in list_presets():
        raise ConfigError(
            [f"preset: Expected one of {', '.join(list_presets())} but got {name!r}"], "<preset>"
        )
    return Path(str(resources.files("noisybox.benchmark") / "presets" / f"{name}.yaml"))


# --------------------------------------------------------------------------- loading


def load_config(
    source: str | os.PathLike[str] | dict[str, Any],
    *,
    base_dir: str | os.PathLike[str] | None = None,
    check_paths: bool = True,
) -> BenchmarkConfig:
    """Load and validate a benchmark config from a preset name, a YAML file or a dict.

    Args:
        source: a preset name (``"quick"``), a path to a YAML file, or already-parsed data.
        base_dir: folder relative dataset paths are resolved against. Defaults to the YAML
            file's folder, and to the current folder for presets and dicts.
        check_paths: check that dataset paths exist (turned off to inspect a config).

    Returns:
        The validated ``BenchmarkConfig``.

    Raises:
        ConfigError: listing every problem found, each naming its key.
    """
    name_default = "benchmark"
    if isinstance(source, dict):
        raw: Any = source
        label = "<dict>"
        base = Path(base_dir) if base_dir is not None else Path.cwd()
    else:
        text = str(source)
        is_preset = (
            not text.endswith((".yaml", ".yml", ".json"))
            and os.sep not in text
            and not Path(text).exists()
        )
        path = preset_path(text) if is_preset else Path(text)
        label = str(path)
        name_default = path.stem
        if not path.is_file():
            raise ConfigError([f"config: Expected an existing YAML file but got {text!r}"], text)
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            raise ConfigError(
                [f"config: Expected valid YAML{where} but got: {exc}"], label
            ) from None
        if base_dir is not None:
            base = Path(base_dir)
        else:
            base = Path.cwd() if is_preset else path.resolve().parent
    return validate_config(
        raw, source=label, base_dir=base, check_paths=check_paths, default_name=name_default
    )


# --------------------------------------------------------------------------- validation


class _Checker:
    """Collects errors while walking the raw config."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, key: str, expected: str, got: Any) -> None:
        self.errors.append(f"{key}: Expected {expected} but got {got!r}")

    def mapping(self, key: str, value: Any, allowed: Iterable[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(key, "a mapping", value)
            return None
        allowed = list(allowed)
        for k in value:
            if k not in allowed:
                self.errors.append(
                    f"{key}.{k}: Expected one of the keys {', '.join(allowed)} but got unknown key {k!r}"
                )
        return value

    def number(
        self,
        key: str,
        value: Any,
        *,
        integer: bool = False,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
    ) -> float | int | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if integer:
            ok = ok and float(value).is_integer()
        if ok and not math.isfinite(float(value)):
            ok = False
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            kind = "an integer" if integer else "a number"
            bounds = ""
            if low is not None or high is not None:
                lo = "(" if low_open else "["
                hi = ")" if high_open else "]"
                bounds = f" in {lo}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{hi}"
            self.error(key, kind + bounds, value)
            return None
        return int(value) if integer else float(value)

    def choice(self, key: str, value: Any, choices: Iterable[str]) -> str | None:
        choices = list(choices)
        if value not in choices:
            self.error(key, f"one of {', '.join(choices)}", value)
            return None
        return str(value)

    def string(self, key: str, value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            self.error(key, "a non-empty string", value)
            return None
        return value

    def items(self, key: str, value: Any) -> list[Any]:
        if isinstance(value, (list, tuple)) and value:
            return list(value)
        self.error(key, "a non-empty list", value)
        return []


def _registry(loader: Callable[[], list[str]]) -> list[str]:
    return sorted(loader())


def _loss_names() -> list[str]:
    from noisybox.losses import list_losses

    return ["torchvision", *_registry(list_losses)]


def _detector_names() -> list[str]:
    from noisybox.detectors import list_detectors

    return _registry(list_detectors)


def _backbone_names() -> list[str]:
    from noisybox.detectors import list_backbones

    return _registry(list_backbones)


def _noise_models() -> list[str]:
    from noisybox.noise import list_noise_models

    return _registry(list_noise_models)


def _boundaries() -> list[str]:
    from noisybox.noise import BOUNDARIES

    return list(BOUNDARIES)


def _train_config_fields() -> dict[str, Any]:
    from noisybox.engine import TrainConfig

    return {f.name: f for f in dataclasses.fields(TrainConfig)}


def _default_alpha(name: str) -> float | None:
    if name == "torchvision":
        return None
    from noisybox.losses import get_loss

    alpha = getattr(get_loss(name), "alpha", None)
    return None if alpha is None else float(alpha)


def validate_config(
    raw: Any,
    *,
    source: str = "<config>",
    base_dir: str | os.PathLike[str] = ".",
    check_paths: bool = True,
    default_name: str = "benchmark",
) -> BenchmarkConfig:
    """Validate parsed config data into a ``BenchmarkConfig``, reporting all problems at once.

    Args:
        raw: the parsed YAML document.
        source: the file name used in the error message.
        base_dir: folder relative dataset paths are resolved against.
        check_paths: check that dataset paths exist.
        default_name: ``name`` when the config does not set one.

    Raises:
        ConfigError: one line per problem, each naming its key.
    """
    c = _Checker()
    top_keys = [
        "name",
        "description",
        "dataset",
        "detectors",
        "losses",
        "etas",
        "noise",
        "seeds",
        "schedule",
        "device",
        "collapse",
    ]
    top = c.mapping("config", raw, top_keys)
    if top is None:
        raise ConfigError(c.errors, source)
    for required in ("dataset", "detectors", "losses", "etas", "seeds", "schedule"):
        if required not in top:
            c.errors.append(f"{required}: Expected this key but it is missing")
    base = Path(base_dir)

    name = top.get("name", default_name)
    c.string("name", name)
    description = top.get("description", "")
    if not isinstance(description, str):
        c.error("description", "a string", description)

    dataset = (
        _validate_dataset(c, top.get("dataset"), base, check_paths) if "dataset" in top else None
    )

    detector_names = _detector_names()
    backbone_names = _backbone_names()
    detectors: list[DetectorSpec] = []
    train_fields = _train_config_fields()
    for i, item in enumerate(
        c.items("detectors", top.get("detectors")) if "detectors" in top else []
    ):
        key = f"detectors[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        d = c.mapping(key, item, ("name", "backbone", "weights", "options"))
        if d is None:
            continue
        det_name = c.choice(f"{key}.name", d.get("name"), detector_names)
        backbone = d.get("backbone", "resnet18")
        if c.choice(f"{key}.backbone", backbone, backbone_names) is None:
            backbone = None
        weights = d.get("weights")
        if weights is not None:
            c.string(f"{key}.weights", weights)
        options = d.get("options", {})
        opts = c.mapping(f"{key}.options", options, sorted(set(train_fields) - _CELL_FIELDS))
        if det_name is not None and isinstance(backbone, str) and opts is not None:
            detectors.append(DetectorSpec(det_name, backbone, weights, dict(opts)))
    labels = [d.label for d in detectors]
    for label in sorted({x for x in labels if labels.count(x) > 1}):
        c.errors.append(f"detectors: Expected each detector-backbone once but got {label!r} twice")

    losses = _validate_losses(c, top.get("losses")) if "losses" in top else []

    etas: list[float] = []
    for i, eta in enumerate(c.items("etas", top.get("etas")) if "etas" in top else []):
        value = c.number(f"etas[{i}]", eta, low=0.0, high=1.0, high_open=True)
        if value is not None:
            etas.append(value)
    if len(set(etas)) != len(etas):
        c.error("etas", "distinct values", top.get("etas"))

    seeds: list[int] = []
    for i, seed in enumerate(c.items("seeds", top.get("seeds")) if "seeds" in top else []):
        value = c.number(f"seeds[{i}]", seed, integer=True, low=0)
        if value is not None:
            seeds.append(int(value))
    if len(set(seeds)) != len(seeds):
        c.error("seeds", "distinct values", top.get("seeds"))

    noise = NoiseConfig()
    if "noise" in top:
        n = c.mapping("noise", top["noise"], ("model", "boundary", "ratio"))
        if n is not None:
            model = c.choice("noise.model", n.get("model", "uniform"), _noise_models())
            boundary = c.choice("noise.boundary", n.get("boundary", "shift"), _boundaries())
            ratio = c.number("noise.ratio", n.get("ratio", 1.0), low=0.0, low_open=True)
            if model and boundary and ratio is not None:
                noise = NoiseConfig(model, boundary, float(ratio))

    schedule = _validate_schedule(c, top.get("schedule"), train_fields) if "schedule" in top else {}

    if (
        schedule
        and detectors
        and not any(e.startswith(("schedule", "detectors")) for e in c.errors)
    ):
        _check_train_configs(c, schedule, detectors)

    device = top.get("device", "auto")
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        c.error("device", "auto, cpu, mps, cuda or cuda:N", device)

    collapse = CollapseConfig()
    if "collapse" in top:
        col = c.mapping(
            "collapse", top["collapse"], [f.name for f in dataclasses.fields(CollapseConfig)]
        )
        if col is not None:
            values = {
                k: c.number(f"collapse.{k}", v, low=0.0, high=1.0)
                for k, v in col.items()
                if k in {f.name for f in dataclasses.fields(CollapseConfig)}
            }
            if all(v is not None for v in values.values()):
                collapse = CollapseConfig(**values)  # type: ignore[arg-type]

    if c.errors or dataset is None:
        raise ConfigError(c.errors, source)
    return BenchmarkConfig(
        name=str(name),
        dataset=dataset,
        detectors=tuple(detectors),
        losses=tuple(losses),
        etas=tuple(etas),
        seeds=tuple(seeds),
        schedule=schedule,
        noise=noise,
        device=str(device),
        collapse=collapse,
        description=str(description),
        source=source,
        base_dir=str(base),
    )


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expandvars(os.path.expanduser(value)))
    return path if path.is_absolute() else base / path


def _validate_dataset(
    c: _Checker, value: Any, base: Path, check_paths: bool
) -> DatasetConfig | None:
    path_keys = ("train_annotations", "train_images", "test_annotations", "test_images")
    if isinstance(value, dict) and "builtin" in value:
        d = c.mapping("dataset", value, ("builtin", *_SHAPES_OPTIONS))
        if d is None:
            return None
        builtin = c.choice("dataset.builtin", d["builtin"], BUILTIN_DATASETS)
        options: dict[str, Any] = {}
        for k in _SHAPES_OPTIONS:
            if k in d:
                low = 0 if k == "seed" else 1
                v = c.number(f"dataset.{k}", d[k], integer=True, low=low)
                if v is not None:
                    options[k] = int(v)
        return DatasetConfig(builtin=builtin, builtin_options=options) if builtin else None
    d = c.mapping("dataset", value, ("builtin", *path_keys, "format", *_SHAPES_OPTIONS))
    if d is None:
        return None
    fields: dict[str, Any] = {}
    for k in path_keys:
        if k not in d:
            c.errors.append(
                f"dataset.{k}: Expected this key (or dataset.builtin) but it is missing"
            )
            continue
        s = c.string(f"dataset.{k}", d[k])
        if s is None:
            continue
        path = _resolve(base, s)
        if check_paths and not path.exists():
            c.error(f"dataset.{k}", f"an existing path (resolved to {path})", s)
        fields[k] = str(path)
    fmt = d.get("format")
    if fmt is not None:
        c.choice("dataset.format", fmt, DATASET_FORMATS)
    for k in _SHAPES_OPTIONS:
        if k in d:
            c.errors.append(
                f"dataset.{k}: Expected this key only with dataset.builtin but got {d[k]!r}"
            )
    if len(fields) < len(path_keys):
        return None
    return DatasetConfig(format=fmt, **fields)


def _validate_losses(c: _Checker, value: Any) -> list[LossSpec]:
    names = _loss_names()
    out: list[LossSpec] = []
    for i, item in enumerate(c.items("losses", value)):
        key = f"losses[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        d = c.mapping(key, item, ("name", "alpha", "alpha_warmup"))
        if d is None:
            continue
        name = c.choice(f"{key}.name", d.get("name"), names)
        warmup = d.get("alpha_warmup")
        if warmup is not None:
            warmup = c.number(f"{key}.alpha_warmup", warmup, low=0.0, high=1.0, high_open=True)
            if warmup is None:
                continue
        raw_alpha = d.get("alpha")
        alphas: list[float | None] = []
        if raw_alpha is None:
            alphas = [None]
        else:
            items = raw_alpha if isinstance(raw_alpha, list) else [raw_alpha]
            if not items:
                c.error(f"{key}.alpha", "a number or a non-empty list of numbers", raw_alpha)
            for j, a in enumerate(items):
                sub = f"{key}.alpha" if not isinstance(raw_alpha, list) else f"{key}.alpha[{j}]"
                v = c.number(sub, a, low=0.0, low_open=True)
                if v is not None:
                    alphas.append(float(v))
        if name is None:
            continue
        if name == "torchvision" and (raw_alpha is not None or warmup is not None):
            c.error(f"{key}.alpha", "no alpha for the stock 'torchvision' loss", raw_alpha)
            continue
        for a in alphas:
            alpha = _default_alpha(name) if a is None else a
            out.append(LossSpec(name, alpha, None if warmup is None else float(warmup)))
    seen: set[tuple[str, float | None, float | None]] = set()
    for spec in out:
        k = (spec.name, spec.alpha, spec.alpha_warmup)
        if k in seen:
            c.errors.append(
                f"losses: Expected each loss/alpha/warm-up once but got {spec.label} twice"
            )
        seen.add(k)
    return out


def _validate_schedule(c: _Checker, value: Any, train_fields: dict[str, Any]) -> dict[str, Any]:
    allowed = sorted(set(train_fields) - _CELL_FIELDS)
    d = c.mapping("schedule", value, allowed)
    if d is None:
        return {}
    out = dict(d)
    checks: dict[str, dict[str, Any]] = {
        "epochs": {"integer": True, "low": 1},
        "batch_size": {"integer": True, "low": 1},
        "workers": {"integer": True, "low": 0},
        "image_size": {"integer": True, "low": 16},
        "lr": {"low": 0.0, "low_open": True},
    }
    for k, kw in checks.items():
        if k in d:
            v = c.number(f"schedule.{k}", d[k], **kw)
            if v is not None:
                out[k] = v
    if "epochs" not in d:
        c.errors.append("schedule.epochs: Expected this key but it is missing")
    return out


def _check_train_configs(
    c: _Checker, schedule: dict[str, Any], detectors: list[DetectorSpec]
) -> None:
    """Let the engine's ``TrainConfig.validate`` judge the values only it knows about."""
    from noisybox.engine import TrainConfig

    for i, det in enumerate(detectors):
        values = {
            "train_annotations": "<train>",
            **schedule,
            **det.options,
            "detector": det.name,
            "backbone": det.backbone,
        }
        try:
            TrainConfig.from_dict(values).validate()
        except (NoisyboxError, TypeError) as exc:
            where = f"detectors[{i}].options" if det.options else "schedule"
            c.errors.append(f"{where}: {exc}")
