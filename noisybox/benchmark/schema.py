"""Validation of a benchmark config: every problem found at once, each naming its key.

:func:`validate_config` walks the parsed YAML with a collector of errors, so that a typo in
the schedule and a missing dataset path are reported together before anything runs. Names
are checked against the registries (detectors, backbones, losses, noise models) and the
schedule against the engine's own ``TrainConfig.validate``.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from noisybox._limits import MAX_DATASET_IMAGES, MAX_IMAGE_SIZE, MAX_SEED
from noisybox.benchmark._checker import Checker
from noisybox.benchmark.config import (
    BUILTIN_DATASETS,
    DATASET_FORMATS,
    MODES,
    NO_BOX_NOISE,
    RESERVED_OPTIONS,
    ULTRALYTICS_BACKBONE,
    BenchmarkConfig,
    CollapseConfig,
    ConfigError,
    DatasetConfig,
    DetectorSpec,
    LossSpec,
    NoiseConfig,
    ReportConfig,
    is_ultralytics_detector,
    loss_label,
)
from noisybox.errors import NoisyboxError

__all__ = ["validate_config"]

# TrainConfig fields the runner fills per cell; a schedule may not set them.
_CELL_FIELDS = frozenset(
    {
        "train_annotations",
        "train_images",
        "test_annotations",
        "test_images",
        "val_annotations",  # deprecated names of the two above
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
_TOP_KEYS = (
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
    "report",
    "protocol",
    "mode",
)
_SHAPES_OPTIONS = ("num_train", "num_val", "num_calib", "image_size", "seed")
_SPLIT_ROLES = ("train", "val", "test", "calibration_train")
_VOC_DEFAULT_SETS = {
    "train": "trainval",
    "val": "val",
    "test": "test",
    "calibration_train": "train",
}
# upper bounds of the built-in dataset's options (see noisybox._limits)
_HIGH = {
    "num_train": MAX_DATASET_IMAGES,
    "num_val": MAX_DATASET_IMAGES,
    "num_calib": MAX_DATASET_IMAGES,
    "image_size": MAX_IMAGE_SIZE,
    "seed": MAX_SEED,
}
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _registry(loader: Callable[[], list[str]]) -> list[str]:
    return sorted(loader())


def _loss_names() -> list[str]:
    from noisybox.losses import list_detector_losses

    return list_detector_losses()


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
    from noisybox.losses import STOCK_LOSS, get_loss

    if name == STOCK_LOSS:
        return None
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

    One validation per top-level key in a flat sequence, kept in one function so that the
    order of the checks is the order of the error lines.

    Args:
        raw: the parsed YAML document.
        source: the file name used in the error message.
        base_dir: folder relative dataset paths are resolved against.
        check_paths: check that dataset paths exist.
        default_name: ``name`` when the config does not set one.

    Raises:
        ConfigError: one line per problem, each naming its key.
    """
    c = Checker()
    top = c.mapping("config", raw, _TOP_KEYS)
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

    train_fields = _train_config_fields()
    detectors = (
        _validate_detectors(c, top.get("detectors"), train_fields, check_paths)
        if "detectors" in top
        else []
    )

    losses = _validate_losses(c, top.get("losses")) if "losses" in top else []

    etas = [float(v) for v in _axis(c, top, "etas", low=0.0, high=1.0, high_open=True)]
    seeds = [int(v) for v in _axis(c, top, "seeds", integer=True, low=0, high=MAX_SEED)]

    conditions = _validate_conditions(c, top["noise"]) if "noise" in top else [NoiseConfig()]

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

    collapse = _validate_collapse(c, top["collapse"]) if "collapse" in top else CollapseConfig()
    report = _validate_report(c, top["report"], losses) if "report" in top else ReportConfig()
    protocol = top.get("protocol")
    if protocol is not None:
        protocol = c.string("protocol", protocol)
        if protocol is not None and check_paths and not _resolve(base, protocol).is_file():
            c.error(
                "protocol",
                f"an existing protocol file (resolved to {_resolve(base, protocol)}; write one "
                "with `noisybox protocol CONFIG`)",
                protocol,
            )
    mode = top.get("mode", "study")
    c.choice("mode", mode, MODES)

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
        noise=conditions[0],
        noise_conditions=tuple(conditions) if len(conditions) > 1 else (),
        device=str(device),
        collapse=collapse,
        report=report,
        protocol=protocol,
        mode=str(mode),
        description=str(description),
        source=source,
        base_dir=str(base),
    )


def _check_weights_file(c: Checker, key: str, weights: str, check_paths: bool) -> None:
    """A detector's ``weights`` must be a file (as the cell will open it: from the working
    folder), or the study would write its folder and then fail every cell of the row."""
    if check_paths and not Path(os.path.expanduser(weights)).is_file():
        c.error(key, f"an existing weights file (resolved to {Path(weights).resolve()})", weights)


def _validate_detectors(
    c: Checker, value: Any, train_fields: dict[str, Any], check_paths: bool = True
) -> list[DetectorSpec]:
    detector_names = _detector_names()
    backbone_names = _backbone_names()
    detectors: list[DetectorSpec] = []
    for i, item in enumerate(c.items("detectors", value)):
        key = f"detectors[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        d = c.mapping(key, item, ("name", "backbone", "weights", "options"))
        if d is None:
            continue
        if isinstance(d.get("name"), str) and is_ultralytics_detector(d["name"]):
            spec = _validate_ultralytics_detector(c, key, d)
            if spec is not None:
                detectors.append(spec)
            continue
        det_name = c.choice(f"{key}.name", d.get("name"), detector_names)
        backbone = d.get("backbone", "resnet18")
        if c.choice(f"{key}.backbone", backbone, backbone_names) is None:
            backbone = None
        weights = d.get("weights")
        if weights is not None and c.string(f"{key}.weights", weights) is not None:
            _check_weights_file(c, f"{key}.weights", weights, check_paths)
        options = d.get("options", {})
        opts = c.mapping(f"{key}.options", options, sorted(set(train_fields) - _CELL_FIELDS))
        if det_name is not None and isinstance(backbone, str) and opts is not None:
            detectors.append(DetectorSpec(det_name, backbone, weights, dict(opts)))
    labels = [d.label for d in detectors]
    for label in sorted({x for x in labels if labels.count(x) > 1}):
        c.errors.append(f"detectors: Expected each detector-backbone once but got {label!r} twice")
    return detectors


def _validate_ultralytics_detector(c: Checker, key: str, d: dict[str, Any]) -> DetectorSpec | None:
    """An Ultralytics YOLO row: its own backbone label; options are Ultralytics' arguments."""
    backbone = d.get("backbone", ULTRALYTICS_BACKBONE)
    if backbone != ULTRALYTICS_BACKBONE:
        c.error(f"{key}.backbone", f"{ULTRALYTICS_BACKBONE!r} (or none) for {d['name']}", backbone)
        return None
    weights = d.get("weights")
    if weights is not None and c.string(f"{key}.weights", weights) is None:
        return None
    options = d.get("options", {})
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        c.error(f"{key}.options", "a mapping of Ultralytics train arguments", options)
        return None
    reserved = sorted(set(options) & RESERVED_OPTIONS)
    if reserved:
        c.error(f"{key}.options", "no argument the runner sets per cell", reserved)
        return None
    return DetectorSpec(d["name"], ULTRALYTICS_BACKBONE, weights, dict(options))


def _axis(c: Checker, top: dict[str, Any], key: str, **bounds: Any) -> list[float | int]:
    """The distinct numbers of a grid axis (``etas``, ``seeds``)."""
    values: list[float | int] = []
    for i, item in enumerate(c.items(key, top.get(key)) if key in top else []):
        value = c.number(f"{key}[{i}]", item, **bounds)
        if value is not None:
            values.append(value)
    if len(set(values)) != len(values):
        c.error(key, "distinct values", top.get(key))
    return values


def _validate_conditions(c: Checker, value: Any) -> list[NoiseConfig]:
    """``noise``: one mapping, or a list of them (the noise conditions, distinct labels).

    A list of one mapping is that mapping: a grid axis needs two conditions.
    """
    if not isinstance(value, list):
        return [_validate_noise(c, "noise", value) or NoiseConfig()]
    items = c.items("noise", value)
    checked = [_validate_noise(c, f"noise[{i}]", item) for i, item in enumerate(items)]
    conditions = [n for n in checked if n is not None]
    labels = [n.label for n in conditions]
    for label in sorted({x for x in labels if labels.count(x) > 1}):
        c.errors.append(
            f"noise: Expected a distinct label per noise condition (set name:) but got "
            f"{label!r} twice"
        )
    return conditions or [NoiseConfig()]


_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _validate_noise(c: Checker, key: str, value: Any) -> NoiseConfig | None:
    """One noise condition at ``key`` (``noise`` or ``noise[i]``); ``None`` if invalid."""
    allowed = ("model", "boundary", "ratio", "corruptions", "name")
    n = c.mapping(key, value, allowed)
    if n is None:
        return None
    model = c.choice(f"{key}.model", n.get("model", "uniform"), [*_noise_models(), NO_BOX_NOISE])
    boundary = c.choice(f"{key}.boundary", n.get("boundary", "shift"), _boundaries())
    ratio = c.number(f"{key}.ratio", n.get("ratio", 1.0), low=0.0, low_open=True, high=1.0)
    corruptions = _validate_corruptions(c, f"{key}.corruptions", n.get("corruptions", []))
    name = n.get("name")
    if name is not None and (not isinstance(name, str) or not _LABEL_RE.match(name)):
        c.error(f"{key}.name", "a label of letters, digits and _.+- (a file name)", name)
        return None
    if model == NO_BOX_NOISE and corruptions == ():
        c.error(
            f"{key}.corruptions",
            f"at least one corruption with model {NO_BOX_NOISE!r} (no noise at all)",
            n.get("corruptions", []),
        )
        return None
    if model and boundary and ratio is not None and corruptions is not None:
        return NoiseConfig(model, boundary, float(ratio), corruptions, name)
    return None


def _validate_corruptions(c: Checker, key: str, value: Any) -> tuple[str, ...] | None:
    """``noise.corruptions``: distinct names of annotation-level noise."""
    from noisybox.noise.annotation import ANNOTATION_CORRUPTIONS

    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        c.error(key, "a list of names", value)
        return None
    bad = [x for x in names if x not in ANNOTATION_CORRUPTIONS]
    if bad:
        c.error(key, f"names in {', '.join(ANNOTATION_CORRUPTIONS)}", bad[0])
        return None
    if len(set(names)) != len(names):
        c.error(key, "distinct names", value)
        return None
    return tuple(x for x in ANNOTATION_CORRUPTIONS if x in names)


def _validate_collapse(c: Checker, value: Any) -> CollapseConfig:
    names = [f.name for f in dataclasses.fields(CollapseConfig)]
    col = c.mapping("collapse", value, names)
    if col is not None:
        values = {
            k: c.number(f"collapse.{k}", v, low=0.0, high=1.0) for k, v in col.items() if k in names
        }
        if all(v is not None for v in values.values()):
            return CollapseConfig(**values)  # type: ignore[arg-type]
    return CollapseConfig()


def _validate_report(c: Checker, value: Any, losses: list[LossSpec]) -> ReportConfig:
    """``report.reference``: one loss row of the grid, stored under its full label.

    The row's label with its warm-up (``alpha-iou@3 (warm-up 0.3)``) or, when it names one
    row only, without (``alpha-iou@3``).
    """
    r = c.mapping("report", value, ("reference",))
    if r is None or "reference" not in r:
        return ReportConfig()
    reference = c.string("report.reference", r["reference"])
    if reference is None or not losses:  # a bad losses section has its own error
        return ReportConfig()
    full = [loss_label(lo.name, lo.alpha, lo.alpha_warmup) for lo in losses]
    matches = [f for f in full if f == reference] or [
        f for lo, f in zip(losses, full, strict=True) if lo.label == reference
    ]
    if len(matches) != 1:
        c.error("report.reference", f"one loss row of the grid ({', '.join(full)})", reference)
        return ReportConfig()
    return ReportConfig(reference=matches[0])


def _named_key(value: dict[str, Any]) -> bool:
    from noisybox.data.voc_splits import NAMED_DATASETS

    return any(k in value for k in NAMED_DATASETS)


def _resolve(base: Path, value: str) -> Path:
    path = Path(os.path.expandvars(os.path.expanduser(value)))
    return path if path.is_absolute() else base / path


def _validate_voc_sets(
    c: Checker, value: dict[str, Any], base: Path, check_paths: bool
) -> DatasetConfig | None:
    """``{voc: PATH, train: SET, ...}``, ``{bccd: PATH}`` or ``{name: bccd, root: PATH}``."""
    from noisybox.data.voc_splits import NAMED_DATASETS

    named = next((k for k in NAMED_DATASETS if k in value), None)
    if named is not None:  # the shorthand {bccd: PATH}; PATH null: the environment variable
        rest = {k: v for k, v in value.items() if k != named}
        value = {"name": named, "root": value[named], **rest}
    d = c.mapping("dataset", value, ("voc", "name", "root", *_SPLIT_ROLES))
    if d is None:
        return None
    name = d.get("name")
    sets = dict(_VOC_DEFAULT_SETS)
    if name is not None:
        if c.choice("dataset.name", name, NAMED_DATASETS) is None:
            return None
        sets = dict(NAMED_DATASETS[name].splits)
        if "voc" in d:
            c.errors.append("dataset.voc: Expected root (or the dataset's name as key) with name")
        raw_root = d.get("root")
        if raw_root is None:
            raw_root = os.environ.get(NAMED_DATASETS[name].env)
            if not raw_root:
                c.errors.append(
                    f"dataset.root: Expected the folder of {name} (or ${NAMED_DATASETS[name].env}) "
                    f"but got none; get it with {NAMED_DATASETS[name].source}"
                )
                return None
    else:
        raw_root = d.get("voc")
        if "root" in d:
            c.errors.append("dataset.root: Expected voc: PATH (root goes with a dataset name)")
    key = "dataset.root" if name else "dataset.voc"
    several = bool(isinstance(raw_root, list) and not name and raw_root)
    items: list[Any] = list(raw_root) if isinstance(raw_root, list) and several else [raw_root]
    given = [c.string(f"{key}[{k}]" if several else key, v) for k, v in enumerate(items)]
    for role in _SPLIT_ROLES:
        if role in d:
            v = c.string(f"dataset.{role}", d[role])
            if v is not None:
                sets[role] = v
    paths = [g for g in given if g is not None]
    if len(paths) < len(given):
        return None
    roots = [_resolve(base, r) for r in paths]
    if check_paths:
        from noisybox.data.voc_splits import check_disjoint, check_named_dataset
        from noisybox.errors import NoisyboxError

        try:
            if name is not None:
                roots = [check_named_dataset(name, roots[0])]
            for root in roots:
                if not (root / "Annotations").is_dir():
                    raise NoisyboxError(
                        f"Expected a VOC folder with Annotations/ (resolved to {root}) but got none"
                    )
            check_disjoint([str(r) for r in roots], sets)
        except NoisyboxError as exc:
            c.errors.append(f"dataset: {exc}")
            return None
    voc: str | tuple[str, ...] = tuple(map(str, roots)) if several else str(roots[0])
    return DatasetConfig(format="voc", voc=voc, name=name, image_sets=sets)


def _validate_dataset(
    c: Checker, value: Any, base: Path, check_paths: bool
) -> DatasetConfig | None:
    path_keys = ("train_annotations", "train_images", "test_annotations", "test_images")
    if isinstance(value, dict) and ("voc" in value or "name" in value or _named_key(value)):
        return _validate_voc_sets(c, value, base, check_paths)
    if isinstance(value, dict) and "builtin" in value:
        d = c.mapping("dataset", value, ("builtin", *_SHAPES_OPTIONS))
        if d is None:
            return None
        builtin = c.choice("dataset.builtin", d["builtin"], BUILTIN_DATASETS)
        options: dict[str, Any] = {}
        for k in _SHAPES_OPTIONS:
            if k in d:
                low = 0 if k == "seed" else 1
                v = c.number(f"dataset.{k}", d[k], integer=True, low=low, high=_HIGH[k])
                if v is not None:
                    options[k] = int(v)
        return DatasetConfig(builtin=builtin, builtin_options=options) if builtin else None
    val_keys = ("val_annotations", "val_images")
    d = c.mapping("dataset", value, ("builtin", *path_keys, *val_keys, "format", *_SHAPES_OPTIONS))
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
    for k in ("val_annotations", "val_images"):
        if k in d:
            s = c.string(f"dataset.{k}", d[k])
            if s is None:
                continue
            path = _resolve(base, s)
            if check_paths and not path.exists():
                c.error(f"dataset.{k}", f"an existing path (resolved to {path})", s)
            fields[k] = str(path)
    if ("val_annotations" in fields) != ("val_images" in fields):
        c.errors.append("dataset: Expected val_annotations and val_images together")
    fmt = d.get("format")
    if fmt is not None:
        c.choice("dataset.format", fmt, DATASET_FORMATS)
    for k in _SHAPES_OPTIONS:
        if k in d:
            c.errors.append(
                f"dataset.{k}: Expected this key only with dataset.builtin but got {d[k]!r}"
            )
    if any(k not in fields for k in path_keys):
        return None
    return DatasetConfig(format=fmt, **fields)


def _validate_losses(c: Checker, value: Any) -> list[LossSpec]:
    from noisybox.losses import STOCK_LOSS

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
        if name == STOCK_LOSS and (raw_alpha is not None or warmup is not None):
            c.error(f"{key}.alpha", f"no alpha for the stock {STOCK_LOSS!r} loss", raw_alpha)
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


def _validate_schedule(c: Checker, value: Any, train_fields: dict[str, Any]) -> dict[str, Any]:
    # val_format: the deprecated name of test_format, accepted (and overridden) as before
    allowed = sorted((set(train_fields) | {"val_format"}) - _CELL_FIELDS)
    d = c.mapping("schedule", value, allowed)
    if d is None:
        return {}
    out = dict(d)
    checks: dict[str, dict[str, Any]] = {
        "epochs": {"integer": True, "low": 1},
        "batch_size": {"integer": True, "low": 1},
        "workers": {"integer": True, "low": 0},
        "image_size": {"integer": True, "low": 16, "high": MAX_IMAGE_SIZE},
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
    c: Checker, schedule: dict[str, Any], detectors: list[DetectorSpec]
) -> None:
    """Let the engine's ``TrainConfig.validate`` judge the values only it knows about."""
    from noisybox.engine import TrainConfig

    for i, det in enumerate(detectors):
        if det.backbone == ULTRALYTICS_BACKBONE:
            continue  # Ultralytics checks its own arguments when the cell trains
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
