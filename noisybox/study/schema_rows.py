"""The rows and conditions of a study config as pydantic models: detectors, losses, noise.

A detector or a loss may be written as its name alone (``- fcos``); a loss's ``alpha`` may
be a list, one grid row per value. Names are checked against the context's registries
(:class:`~noisybox.study.name_checks.Registries`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Discriminator, Field, PlainValidator, Tag, ValidationInfo, model_validator

from noisybox.noise import BOUNDARIES, list_noise_models
from noisybox.noise.annotation_noise import ANNOTATION_CORRUPTIONS
from noisybox.settings import ALPHA, ALPHA_WARMUP
from noisybox.study.name_checks import Registries
from noisybox.study.schema_types import (
    StudyModel,
    bounded,
    check_choice,
    context_of,
    expected,
    non_empty_str,
    number,
    optional,
    problem,
    problems,
)
from noisybox.study.spec import (
    NO_BOX_NOISE,
    RESERVED_OPTIONS,
    ULTRALYTICS_BACKBONE,
    DetectorSpec,
    LossSpec,
    NoiseConfig,
    is_ultralytics_detector,
)

__all__ = ["CELL_FIELDS", "DetectorModel", "LossModel", "NoiseField", "NoiseModel", "settable"]

# TrainConfig fields the runner fills per cell; a schedule may not set them.
CELL_FIELDS = frozenset(
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


def settable(fields: frozenset[str] | None, value: Any) -> list[str]:
    """The keys a schedule or a detector's options may set: ``TrainConfig``'s fields but
    those the runner sets per cell (with ``fields`` unknown, every key given but those)."""
    given = set(value) if isinstance(value, dict) else set()
    return sorted((given if fields is None else set(fields)) - CELL_FIELDS)


def unknown_keys(value: dict[str, Any], allowed: list[str]) -> list[tuple[tuple[str], str]]:
    """A refusal per key of ``value`` not in ``allowed``, under that key."""
    return [
        ((k,), f"Expected one of the keys {', '.join(allowed)} but got unknown key {k!r}")
        for k in value
        if k not in allowed
    ]


def registered(value: Any, names: tuple[str, ...] | None) -> str:
    """A registered name (any non-empty string when ``names`` is ``None``)."""
    return non_empty_str(value) if names is None else check_choice(value, names)


def _name_alone(data: Any) -> Any:
    return {"name": data} if isinstance(data, str) else data


# --------------------------------------------------------------------------- detectors


def _ultralytics(info: ValidationInfo) -> str | None:
    """The row's Ultralytics model name, or ``None`` for a torchvision detector."""
    name = info.data.get("name")
    return name if isinstance(name, str) and is_ultralytics_detector(name) else None


def _detector_name(value: Any, info: ValidationInfo) -> str:
    if isinstance(value, str) and is_ultralytics_detector(value):
        return value
    return registered(value, context_of(info).registries.detectors)


def _backbone(value: Any, info: ValidationInfo) -> str:
    model = _ultralytics(info)
    if model is not None:
        if value != ULTRALYTICS_BACKBONE:
            raise problem(expected(f"{ULTRALYTICS_BACKBONE!r} (or none) for {model}", value))
        return value
    return registered(value, context_of(info).registries.backbones)


def _weights(value: Any, info: ValidationInfo) -> str | None:
    """A weights file; a torchvision row's must exist (as the cell opens it, from the
    working folder), or the study would write its folder and then fail every cell."""
    if value is None:
        return None
    weights = non_empty_str(value)
    checked = _ultralytics(info) is None and context_of(info).check_paths
    if checked and not Path(os.path.expanduser(weights)).is_file():
        resolved = Path(weights).resolve()
        raise problem(expected(f"an existing weights file (resolved to {resolved})", weights))
    return weights


def _options(value: Any, info: ValidationInfo) -> dict[str, Any]:
    """Extra ``TrainConfig`` fields of a torchvision row, Ultralytics' train arguments of
    an Ultralytics row."""
    if _ultralytics(info) is not None:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise problem(expected("a mapping of Ultralytics train arguments", value))
        reserved = sorted(set(value) & RESERVED_OPTIONS)
        if reserved:
            raise problem(expected("no argument the runner sets per cell", reserved))
        return dict(value)
    if not isinstance(value, dict):
        raise problem(expected("a mapping", value))
    bad = unknown_keys(value, settable(context_of(info).registries.train_fields, value))
    if bad:
        raise problems(bad)
    return dict(value)


class DetectorModel(StudyModel):
    """A detector row: ``name``, ``backbone`` (``resnet18``; ``ultralytics`` for a YOLO
    model), ``weights`` and ``options`` (extra ``TrainConfig`` fields, or Ultralytics')."""

    name: Annotated[str, PlainValidator(_detector_name)]
    backbone: Annotated[str | None, PlainValidator(_backbone)] = None
    weights: Annotated[str | None, PlainValidator(_weights)] = None
    options: Annotated[dict[str, Any], PlainValidator(_options)] = Field(default_factory=dict)

    _name_alone = model_validator(mode="before")(_name_alone)

    def to_spec(self) -> DetectorSpec:
        if self.backbone is not None:
            backbone = self.backbone
        else:
            backbone = ULTRALYTICS_BACKBONE if is_ultralytics_detector(self.name) else "resnet18"
        return DetectorSpec(self.name, backbone, self.weights, dict(self.options))


# --------------------------------------------------------------------------- losses


def _loss_name(value: Any, info: ValidationInfo) -> str:
    return registered(value, context_of(info).registries.losses)


def _alphas(value: Any) -> float | tuple[float, ...] | None:
    """``alpha``: a number, or a non-empty list of them (one grid row each)."""
    if value is None or not isinstance(value, list):
        return None if value is None else bounded(ALPHA)(value)
    if not value:
        raise problem(expected("a number or a non-empty list of numbers", value))
    out, bad = [], []
    for j, item in enumerate(value):
        try:
            out.append(bounded(ALPHA)(item))
        except ValueError as exc:
            bad.append(((j,), str(exc)))
    if bad:
        raise problems(bad)
    return tuple(out)


class LossModel(StudyModel):
    """A loss row: a registered ``name``, its ``alpha`` (or a list: a row each; the
    registry's when unset) and ``alpha_warmup``."""

    name: Annotated[str, PlainValidator(_loss_name)]
    alpha: Annotated[float | tuple[float, ...] | None, PlainValidator(_alphas)] = None
    alpha_warmup: Annotated[float | None, PlainValidator(optional(bounded(ALPHA_WARMUP)))] = None

    _name_alone = model_validator(mode="before")(_name_alone)

    @model_validator(mode="after")
    def _stock_takes_no_alpha(self, info: ValidationInfo) -> LossModel:
        stock = context_of(info).registries.stock_loss
        if self.name == stock and (self.alpha is not None or self.alpha_warmup is not None):
            raw = list(self.alpha) if isinstance(self.alpha, tuple) else self.alpha
            what = f"no alpha for the stock {self.name!r} loss"
            raise problems([(("alpha",), expected(what, raw))])
        return self

    def to_specs(self, registries: Registries) -> list[LossSpec]:
        """One :class:`LossSpec` per alpha (the registry's alpha when none is given)."""
        alphas = self.alpha if isinstance(self.alpha, tuple) else (self.alpha,)
        return [
            LossSpec(
                self.name,
                registries.default_alpha(self.name) if alpha is None else alpha,
                self.alpha_warmup,
            )
            for alpha in alphas
        ]


# --------------------------------------------------------------------------- noise

_LABEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def _noise_model(value: Any) -> str:
    return check_choice(value, [*sorted(list_noise_models()), NO_BOX_NOISE])


def _boundary(value: Any) -> str:
    return check_choice(value, BOUNDARIES)


def _corruptions(value: Any) -> tuple[str, ...]:
    """``corruptions``: distinct names of annotation-level noise, in their canonical order."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(x, str) for x in names):
        raise problem(expected("a list of names", value))
    bad = [x for x in names if x not in ANNOTATION_CORRUPTIONS]
    if bad:
        raise problem(expected(f"names in {', '.join(ANNOTATION_CORRUPTIONS)}", bad[0]))
    if len(set(names)) != len(names):
        raise problem(expected("distinct names", value))
    return tuple(x for x in ANNOTATION_CORRUPTIONS if x in names)


def _label(value: Any) -> str:
    if not isinstance(value, str) or not _LABEL_RE.match(value):
        raise problem(expected("a label of letters, digits and _.+- (a file name)", value))
    return value


_DEFAULT_NOISE = NoiseConfig()


class NoiseModel(StudyModel):
    """One noise condition (see :class:`~noisybox.study.spec.NoiseConfig`)."""

    model: Annotated[str, PlainValidator(_noise_model)] = _DEFAULT_NOISE.model
    boundary: Annotated[str, PlainValidator(_boundary)] = _DEFAULT_NOISE.boundary
    ratio: Annotated[float, PlainValidator(number(low=0.0, low_open=True, high=1.0))] = (
        _DEFAULT_NOISE.ratio
    )
    corruptions: Annotated[tuple[str, ...], PlainValidator(_corruptions)] = ()
    name: Annotated[str | None, PlainValidator(optional(_label))] = None

    @model_validator(mode="after")
    def _some_noise(self) -> NoiseModel:
        if self.model == NO_BOX_NOISE and not self.corruptions:
            what = f"at least one corruption with model {NO_BOX_NOISE!r} (no noise at all)"
            raise problems([(("corruptions",), expected(what, list(self.corruptions)))])
        return self

    def to_spec(self) -> NoiseConfig:
        return NoiseConfig(self.model, self.boundary, self.ratio, self.corruptions, self.name)


def _noise_kind(value: Any) -> str:
    return "<list>" if isinstance(value, list) else "<one>"


#: ``noise``: one condition, or a non-empty list of them (a grid axis).
NoiseField = Annotated[
    Annotated[NoiseModel, Tag("<one>")]
    | Annotated[list[NoiseModel], Field(min_length=1), Tag("<list>")],
    Discriminator(_noise_kind),
]
