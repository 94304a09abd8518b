"""Validation of a benchmark config: pydantic models, every problem found at once, each
naming its key.

:class:`StudyConfigModel` is the YAML's top level; its parts are in
:mod:`noisybox.study.schema_dataset` (``dataset``) and :mod:`noisybox.study.schema_rows`
(detectors, losses, noise). :func:`validate_config` validates parsed data with them and
gives the :class:`~noisybox.study.spec.BenchmarkConfig` the rest of noisybox uses, so that a
typo in the schedule and a missing dataset path are reported together, in one line, before
anything runs. Names are checked against the registries (detectors, backbones, losses, noise
models) and the schedule against the engine's own ``TrainConfig.validate``
(:func:`~noisybox.study.name_checks.installed_registries`); a stored config is read back
without them, and without torch (:data:`~noisybox.study.name_checks.STORED`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails

from noisybox._limits import MAX_IMAGE_SIZE, MAX_SEED
from noisybox.errors import NoisyboxError
from noisybox.settings import ETA
from noisybox.study.name_checks import Registries, installed_registries
from noisybox.study.schema_dataset import DatasetField, resolve_path
from noisybox.study.schema_rows import (
    DetectorModel,
    LossModel,
    NoiseField,
    NoiseModel,
    settable,
    unknown_keys,
)
from noisybox.study.schema_types import (
    NonEmptyStr,
    SchemaContext,
    StudyModel,
    bounded,
    choice,
    context_of,
    error_lines,
    expected,
    non_empty_str,
    number,
    problem,
    problems,
)
from noisybox.study.spec import (
    MODES,
    ULTRALYTICS_BACKBONE,
    BenchmarkConfig,
    CollapseConfig,
    ConfigError,
    LossSpec,
    ReportConfig,
    loss_label,
)

__all__ = ["CollapseModel", "ReportModel", "ScheduleModel", "StudyConfigModel", "validate_config"]

_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def _whole(low: int, high: float | None = None) -> PlainValidator:
    """A refused explicit ``null``, like any value outside ``[low, high]``."""
    return PlainValidator(number(integer=True, low=low, high=high))


class ScheduleModel(StudyModel):
    """``schedule``: the ``TrainConfig`` fields shared by every cell (``epochs`` required).

    The fields bounded here are checked here; every other key must be a field of the
    context's ``TrainConfig`` that the runner does not set per cell, and is judged by
    ``TrainConfig.validate`` itself (:func:`validate_config`).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    epochs: Annotated[int, _whole(1)]
    batch_size: Annotated[int | None, _whole(1)] = None
    workers: Annotated[int | None, _whole(0)] = None
    image_size: Annotated[int | None, _whole(16, MAX_IMAGE_SIZE)] = None
    lr: Annotated[float | None, PlainValidator(number(low=0.0, low_open=True))] = None
    _order: tuple[str, ...] = PrivateAttr(default=())

    @model_validator(mode="wrap")
    @classmethod
    def _known_keys(
        cls, data: Any, handler: ModelWrapValidatorHandler[ScheduleModel], info: ValidationInfo
    ) -> ScheduleModel:
        """Unknown keys refused first, then the values, all at once."""
        if not isinstance(data, dict):
            return handler(data)
        # val_format: the deprecated name of test_format, accepted (and overridden) as before
        fields = context_of(info).registries.train_fields
        allowed = settable(None if fields is None else fields | {"val_format"}, data)
        lines = [
            InitErrorDetails(type=problem(message), loc=loc, input=None)
            for loc, message in unknown_keys(data, allowed)
        ]
        try:
            model = handler(data)
        except ValidationError as exc:
            if not lines:
                raise
            lines += [_detail(e) for e in exc.errors(include_url=False)]
        if lines:
            raise ValidationError.from_exception_data("schedule", lines)
        model._order = tuple(data)
        return model

    def to_dict(self) -> dict[str, Any]:
        """The schedule in the YAML's key order, its bounded values as checked."""
        extra = self.model_extra or {}
        return {
            k: getattr(self, k) if k in type(self).model_fields else extra[k] for k in self._order
        }


def _detail(error: Any) -> InitErrorDetails:
    """A pydantic error raised again (the schedule's values, after its unknown keys)."""
    ctx = error.get("ctx") or {}
    kind = problem(ctx["message"]) if error["type"] == "noisybox" else error["type"]
    detail = InitErrorDetails(type=kind, loc=tuple(error["loc"]), input=error.get("input"))
    if error["type"] != "noisybox" and ctx:
        detail["ctx"] = ctx
    return detail


_COLLAPSE = CollapseConfig()
Share = Annotated[float, PlainValidator(number(low=0.0, high=1.0))]


class CollapseModel(StudyModel):
    """``collapse``: the thresholds of :class:`~noisybox.study.spec.CollapseConfig`."""

    min_box_loss_drop: Share = _COLLAPSE.min_box_loss_drop
    min_fg_iou: Share = _COLLAPSE.min_fg_iou
    ap50_near_zero: Share = _COLLAPSE.ap50_near_zero

    def to_spec(self) -> CollapseConfig:
        return CollapseConfig(**{k: getattr(self, k) for k in type(self).model_fields})


class ReportModel(StudyModel):
    """``report``: ``reference``, one loss row of the grid (see :class:`ReportConfig`)."""

    reference: Annotated[str | None, PlainValidator(non_empty_str)] = None


def _device(value: Any) -> str:
    if not isinstance(value, str) or not _DEVICE_RE.match(value):
        raise problem(expected("auto, cpu, mps, cuda or cuda:N", value))
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise problem(expected("a string", value))
    return value


def _protocol(value: Any, info: ValidationInfo) -> str | None:
    """The pre-registered protocol file, which must exist before the first cell."""
    if value is None:
        return None
    protocol = non_empty_str(value)
    context = context_of(info)
    path = resolve_path(context.base_dir, protocol)
    if context.check_paths and not path.is_file():
        what = (
            f"an existing protocol file (resolved to {path}; "
            "write one with `noisybox protocol CONFIG`)"
        )
        raise problem(expected(what, protocol))
    return protocol


def _distinct(check: Any) -> Any:
    """A validator of a grid axis: a non-empty list of distinct values, each ``check``-ed."""

    def validate(value: Any) -> list[Any]:
        if not isinstance(value, (list, tuple)) or not value:
            raise problem(expected("a non-empty list", value))
        out, bad = [], []
        for i, item in enumerate(value):
            try:
                out.append(check(item))
            except ValueError as exc:
                bad.append(((i,), str(exc)))
        if bad:
            raise problems(bad)
        if len(set(out)) != len(out):
            raise problem(expected("distinct values", value))
        return out

    return validate


def loss_specs(losses: list[LossModel], registries: Registries) -> list[LossSpec]:
    """The loss rows of the grid, one per alpha of each ``losses`` entry."""
    return [spec for loss in losses for spec in loss.to_specs(registries)]


class StudyConfigModel(StudyModel):
    """A study YAML's top level (see :mod:`noisybox.study.spec` for what each key means)."""

    name: NonEmptyStr
    description: Annotated[str, PlainValidator(_text)] = ""
    dataset: DatasetField
    detectors: Annotated[list[DetectorModel], Field(min_length=1)]
    losses: Annotated[list[LossModel], Field(min_length=1)]
    etas: Annotated[list[float], PlainValidator(_distinct(bounded(ETA)))]
    seeds: Annotated[
        list[int], PlainValidator(_distinct(number(integer=True, low=0, high=MAX_SEED)))
    ]
    noise: NoiseField = NoiseModel()
    schedule: ScheduleModel
    device: Annotated[str, PlainValidator(_device)] = "auto"
    collapse: CollapseModel = CollapseModel()
    report: ReportModel = ReportModel()
    protocol: Annotated[str | None, PlainValidator(_protocol)] = None
    mode: Annotated[str, PlainValidator(choice(MODES))] = "study"

    @model_validator(mode="before")
    @classmethod
    def _default_name(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and "name" not in data:
            return {"name": context_of(info).default_name, **data}
        return data

    @field_validator("detectors")
    @classmethod
    def _each_detector_once(cls, value: list[DetectorModel]) -> list[DetectorModel]:
        _each_once([d.to_spec().label for d in value], "each detector-backbone once")
        return value

    @field_validator("losses")
    @classmethod
    def _each_loss_once(cls, value: list[LossModel], info: ValidationInfo) -> list[LossModel]:
        registries = context_of(info).registries
        specs, unknown = [], []
        for i, loss in enumerate(value):
            try:
                specs += loss.to_specs(registries)
            except NoisyboxError as exc:  # a name the loss registry lacks (a stored config)
                unknown.append(((i, "name"), str(exc)))
        if unknown:
            raise problems(unknown)
        seen: set[tuple[str, float | None, float | None]] = set()
        twice = []
        for spec in specs:
            key = (spec.name, spec.alpha, spec.alpha_warmup)
            if key in seen:
                twice.append(
                    ((), f"Expected each loss/alpha/warm-up once but got {spec.label} twice")
                )
            seen.add(key)
        if twice:
            raise problems(twice)
        return value

    @field_validator("noise")
    @classmethod
    def _distinct_labels(
        cls, value: NoiseModel | list[NoiseModel]
    ) -> NoiseModel | list[NoiseModel]:
        """A list of conditions: distinct labels (a list of one is that condition)."""
        if not isinstance(value, list):
            return value
        if len(value) == 1:
            return value[0]
        _each_once(
            [n.to_spec().label for n in value], "a distinct label per noise condition (set name:)"
        )
        return value

    @field_validator("schedule")
    @classmethod
    def _engine_judges(cls, value: ScheduleModel, info: ValidationInfo) -> ScheduleModel:
        """Let the engine's ``TrainConfig.validate`` judge the values only it knows about."""
        check = context_of(info).registries.check_train_config
        detectors = info.data.get("detectors")
        if check is None or detectors is None:
            return value
        issues = []
        for i, det in enumerate(d.to_spec() for d in detectors):
            if det.backbone == ULTRALYTICS_BACKBONE:
                continue  # Ultralytics checks its own arguments when the cell trains
            values = {
                "train_annotations": "<train>",
                **value.to_dict(),
                **det.options,
                "detector": det.name,
                "backbone": det.backbone,
            }
            try:
                check(values)
            except (NoisyboxError, TypeError) as exc:
                at = ("detectors", i, "options") if det.options else ("schedule",)
                issues.append((at, str(exc)))
        if issues:
            raise problems(issues, absolute=True)
        return value

    @field_validator("report")
    @classmethod
    def _reference_row(cls, value: ReportModel, info: ValidationInfo) -> ReportModel:
        """``report.reference``: one loss row of the grid, stored under its full label.

        The row's label with its warm-up (``alpha-iou@3 (warm-up 0.3)``) or, when it names
        one row only, without (``alpha-iou@3``).
        """
        losses = info.data.get("losses")
        if value.reference is None or losses is None:  # bad losses have their own error
            return value
        specs = loss_specs(losses, context_of(info).registries)
        full = [loss_label(lo.name, lo.alpha, lo.alpha_warmup) for lo in specs]
        matches = [f for f in full if f == value.reference] or [
            f for lo, f in zip(specs, full, strict=True) if lo.label == value.reference
        ]
        if len(matches) != 1:
            what = f"one loss row of the grid ({', '.join(full)})"
            raise problems([(("reference",), expected(what, value.reference))])
        return ReportModel(reference=matches[0])

    def to_config(self, registries: Registries, *, source: str, base_dir: Path) -> BenchmarkConfig:
        """The :class:`BenchmarkConfig` the rest of noisybox uses."""
        noise = self.noise if isinstance(self.noise, list) else [self.noise]
        conditions = tuple(n.to_spec() for n in noise)
        return BenchmarkConfig(
            name=self.name,
            dataset=self.dataset.to_spec(),
            detectors=tuple(d.to_spec() for d in self.detectors),
            losses=tuple(loss_specs(self.losses, registries)),
            etas=tuple(self.etas),
            seeds=tuple(self.seeds),
            schedule=self.schedule.to_dict(),
            noise=conditions[0],
            noise_conditions=conditions if len(conditions) > 1 else (),
            device=self.device,
            collapse=self.collapse.to_spec(),
            report=ReportConfig(reference=self.report.reference),
            protocol=self.protocol,
            mode=self.mode,
            description=self.description,
            source=source,
            base_dir=str(base_dir),
        )


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
        ConfigError: one line per problem, each naming its key (``losses[1].alpha: ...``).
    """
    names = installed_registries() if registries is None else registries
    base = Path(base_dir)
    context = SchemaContext(base, check_paths, names, default_name)
    try:
        model = StudyConfigModel.model_validate(raw, context={"study": context})
    except ValidationError as exc:
        raise ConfigError(error_lines(exc, StudyConfigModel), source) from None
    return model.to_config(names, source=source, base_dir=base)


def _each_once(labels: list[str], what: str) -> None:
    """Refuse the labels given more than once, one problem each: ``Expected WHAT but got
    'x' twice``."""
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise problems([((), f"Expected {what} but got {label!r} twice") for label in twice])
