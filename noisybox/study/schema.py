"""Validation of a benchmark config: every problem found at once, each naming its key.

:func:`validate_config` walks the parsed YAML with a collector of errors, so that a typo in
the schedule and a missing dataset path are reported together before anything runs. Names
are checked against the registries (detectors, backbones, losses, noise models) and the
schedule against the engine's own ``TrainConfig.validate``
(:func:`~noisybox.study.name_checks.installed_registries`); a stored config is read back
without them, and without torch (:data:`~noisybox.study.name_checks.STORED`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from noisybox._limits import MAX_IMAGE_SIZE, MAX_SEED
from noisybox.errors import NoisyboxError
from noisybox.settings import ALPHA, ALPHA_WARMUP, ETA, Bound
from noisybox.study._checker import Checker
from noisybox.study.name_checks import Registries, installed_registries
from noisybox.study.schema_dataset import resolve_path, validate_dataset
from noisybox.study.spec import (
    MODES,
    NO_BOX_NOISE,
    RESERVED_OPTIONS,
    ULTRALYTICS_BACKBONE,
    BenchmarkConfig,
    CollapseConfig,
    ConfigError,
    DetectorSpec,
    LossSpec,
    NoiseConfig,
    ReportConfig,
    is_ultralytics_detector,
    loss_label,
)

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
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _settable(fields: frozenset[str] | None, value: Any) -> list[str]:
    """The keys a schedule or a detector's options may set: ``TrainConfig``'s fields but
    those the runner sets per cell (with ``fields`` unknown, every key given but those)."""
    given = set(value) if isinstance(value, dict) else set()
    return sorted((given if fields is None else set(fields)) - _CELL_FIELDS)


def _name(c: Checker, key: str, value: Any, names: tuple[str, ...] | None) -> str | None:
    """A registered name (any non-empty string when ``names`` is ``None``)."""
    return c.string(key, value) if names is None else c.choice(key, value, names)


def _noise_models() -> list[str]:
    from noisybox.noise import list_noise_models

    return sorted(list_noise_models())


def _boundaries() -> list[str]:
    from noisybox.noise import BOUNDARIES

    return list(BOUNDARIES)


def validate_config(
    raw: Any,
    *,
    source: str = "<config>",
    base_dir: str | os.PathLike[str] = ".",
    check_paths: bool = True,
    default_name: str = "benchmark",
    registries: Registries | None = None,
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
        registries: what names and the schedule are checked against (default:
            :func:`~noisybox.study.name_checks.installed_registries`;
            :data:`~noisybox.study.name_checks.STORED` reads a stored config without
            torch).

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
    names = installed_registries() if registries is None else registries

    name = top.get("name", default_name)
    c.string("name", name)
    description = top.get("description", "")
    if not isinstance(description, str):
        c.error("description", "a string", description)

    dataset = (
        validate_dataset(c, top.get("dataset"), base, check_paths) if "dataset" in top else None
    )

    detectors = (
        _validate_detectors(c, top.get("detectors"), names, check_paths)
        if "detectors" in top
        else []
    )

    losses = _validate_losses(c, top.get("losses"), names) if "losses" in top else []

    etas = [float(v) for v in _axis(c, top, "etas", bound=ETA)]
    seeds = [int(v) for v in _axis(c, top, "seeds", integer=True, low=0, high=MAX_SEED)]

    conditions = _validate_conditions(c, top["noise"]) if "noise" in top else [NoiseConfig()]

    schedule = (
        _validate_schedule(c, top.get("schedule"), names.train_fields) if "schedule" in top else {}
    )

    if (
        schedule
        and detectors
        and not any(e.startswith(("schedule", "detectors")) for e in c.errors)
    ):
        _check_train_configs(c, schedule, detectors, names)

    device = top.get("device", "auto")
    if not isinstance(device, str) or not _DEVICE_RE.match(device):
        c.error("device", "auto, cpu, mps, cuda or cuda:N", device)

    collapse = _validate_collapse(c, top["collapse"]) if "collapse" in top else CollapseConfig()
    report = _validate_report(c, top["report"], losses) if "report" in top else ReportConfig()
    protocol = top.get("protocol")
    if protocol is not None:
        protocol = c.string("protocol", protocol)
        if protocol is not None and check_paths and not resolve_path(base, protocol).is_file():
            c.error(
                "protocol",
                f"an existing protocol file (resolved to {resolve_path(base, protocol)}; write one "
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
    c: Checker, value: Any, names: Registries, check_paths: bool = True
) -> list[DetectorSpec]:
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
        det_name = _name(c, f"{key}.name", d.get("name"), names.detectors)
        backbone = d.get("backbone", "resnet18")
        if _name(c, f"{key}.backbone", backbone, names.backbones) is None:
            backbone = None
        weights = d.get("weights")
        if weights is not None and c.string(f"{key}.weights", weights) is not None:
            _check_weights_file(c, f"{key}.weights", weights, check_paths)
        options = d.get("options", {})
        opts = c.mapping(f"{key}.options", options, _settable(names.train_fields, options))
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


def _axis(
    c: Checker, top: dict[str, Any], key: str, bound: Bound | None = None, **bounds: Any
) -> list[float | int]:
    """The distinct numbers of a grid axis (``etas`` checked by ``bound``, ``seeds``)."""
    values: list[float | int] = []
    for i, item in enumerate(c.items(key, top.get(key)) if key in top else []):
        sub = f"{key}[{i}]"
        value = c.bounded(sub, item, bound) if bound else c.number(sub, item, **bounds)
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


def _validate_losses(c: Checker, value: Any, names: Registries) -> list[LossSpec]:
    out: list[LossSpec] = []
    for i, item in enumerate(c.items("losses", value)):
        key = f"losses[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        d = c.mapping(key, item, ("name", "alpha", "alpha_warmup"))
        if d is None:
            continue
        name = _name(c, f"{key}.name", d.get("name"), names.losses)
        warmup = d.get("alpha_warmup")
        if warmup is not None:
            warmup = c.bounded(f"{key}.alpha_warmup", warmup, ALPHA_WARMUP)
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
                v = c.bounded(sub, a, ALPHA)
                if v is not None:
                    alphas.append(float(v))
        if name is None:
            continue
        if name == names.stock_loss and (raw_alpha is not None or warmup is not None):
            c.error(f"{key}.alpha", f"no alpha for the stock {name!r} loss", raw_alpha)
            continue
        for a in alphas:
            alpha = names.default_alpha(name) if a is None else a
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


def _validate_schedule(
    c: Checker, value: Any, train_fields: frozenset[str] | None
) -> dict[str, Any]:
    # val_format: the deprecated name of test_format, accepted (and overridden) as before
    fields = None if train_fields is None else train_fields | {"val_format"}
    allowed = _settable(fields, value)
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
    c: Checker, schedule: dict[str, Any], detectors: list[DetectorSpec], names: Registries
) -> None:
    """Let the engine's ``TrainConfig.validate`` judge the values only it knows about."""
    if names.check_train_config is None:
        return
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
            names.check_train_config(values)
        except (NoisyboxError, TypeError) as exc:
            where = f"detectors[{i}].options" if det.options else "schedule"
            c.errors.append(f"{where}: {exc}")
