"""What defines a training run: :class:`TrainConfig`, its defaults, choices and sources.

A config is built from a dict (:meth:`TrainConfig.from_dict`, what checkpoints and records
store) or from a JSON/YAML file with values on top (:meth:`TrainConfig.from_sources`, what
the command line and the torchrun entry point use), and checked as a whole by
:meth:`TrainConfig.validate`. Defaults and choices live here only: the command line reads
them from the dataclass and the registries.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from noisybox._deprecation import rename_keys, renamed_keywords, warn_renamed
from noisybox._json import parse_json, to_jsonable
from noisybox._limits import MAX_IMAGE_SIZE, MAX_SEED, check_limit
from noisybox.detectors import list_backbones, list_detectors
from noisybox.detectors.registry import check_detector_kwargs
from noisybox.errors import NoisyboxError
from noisybox.losses import STOCK_LOSS, list_detector_losses
from noisybox.settings import DEFAULT_ALPHA_WARMUP, LossSpec

__all__ = [
    "AMP_MODES",
    "DEFAULT_ALPHA_WARMUP",
    "OPTIMIZERS",
    "RESUME_FREE",
    "RENAMED_FIELDS",
    "TrainConfig",
    "field_default",
    "read_config_file",
    "upgrade_config",
]


#: The optimisers :func:`noisybox.engine.train` builds.
OPTIMIZERS: tuple[str, ...] = ("sgd", "adamw")
#: The mixed-precision modes.
AMP_MODES: tuple[str, ...] = ("auto", "off", "fp16", "bf16")
_DEFAULT_LR = {"sgd": 0.01, "adamw": 0.002}
#: Fields that may differ between a checkpoint and the config that resumes it.
RESUME_FREE = frozenset(
    {"out_dir", "device", "workers", "resume", "eval_batch_size", "stop_after_epoch"}
)
#: Deprecated field names (config keys and keywords) -> their current names: the clean
#: evaluation set is the *test* set, as the benchmark calls it. The old names still load,
#: with a ``FutureWarning``, until the next release.
RENAMED_FIELDS: dict[str, str] = {
    "val_annotations": "test_annotations",
    "val_images": "test_images",
    "val_format": "test_format",
}


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (JSON-able through :meth:`to_dict`).

    Attributes:
        train_annotations: training annotation file or folder (COCO json, VOC devkit,
            YOLO folder); may be a noisy file written by ``noisybox corrupt``.
        train_images: image root of the training files (``None``: the format's default).
        test_annotations: clean test annotations evaluated after the last epoch (optional;
            ``val_annotations`` is its deprecated alias, as for the two below).
        test_images: image root of the test files.
        out_dir: where ``last.pt`` and ``result.json`` go.
        detector: ``fcos``, ``retinanet`` or ``fasterrcnn``.
        backbone: ``resnet18``, ``resnet34``, ``resnet50`` or ``mobilenet_v3_large``.
        loss: a ``noisybox.losses`` name or ``STOCK_LOSS`` (the detector's stock loss); or a
            :class:`~noisybox.settings.LossSpec`, whose name, alpha, warm-up and parameters
            fill this field and the three below (then left unset). :attr:`loss_spec` reads
            the four back as one spec; they are stored flat, under these keys.
        alpha: the loss's alpha after warm-up (``None``: the loss's default).
        alpha_warmup: share of the steps over which alpha ramps linearly from 1.
        loss_kwargs: more arguments for ``noisybox.losses.get_loss``.
        epochs: passes over the training set.
        batch_size: images per step and process.
        lr: peak learning rate (``None``: 0.01 for SGD, 0.002 for AdamW).
        optimizer: ``adamw`` (default; it learns a random-init detector faster on the
            shapes data and cannot suffer the alpha > 1 collapse) or ``sgd`` (momentum 0.9).
        weight_decay: L2 (SGD) or decoupled (AdamW) weight decay.
        lr_warmup: share of the steps of linear learning-rate warm-up.
        grad_clip: maximum gradient norm (``0`` disables clipping).
        image_size: training letterbox side; the detector resizes test images to it.
        fpn_channels: FPN width.
        seed: seeds initialisation, data order and augmentation.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1`` or ``mps``.
        amp: ``auto`` (float16 on CUDA, off elsewhere), ``off``, ``fp16`` (CUDA) or
            ``bf16`` (CPU or CUDA autocast).
        workers: data loader processes.
        weights: local detector weights file to start from.
        weights_backbone: local classification weights file for the backbone body.
        noise: online box noise for training (``noisybox.noise.BoxNoise`` options).
        train_format: annotation format of the training files (default: detected).
        test_format: annotation format of the test files.
        detector_kwargs: more arguments for ``noisybox.detectors.build_detector``.
        resume: continue from ``out_dir/last.pt`` when it exists.
        eval_batch_size: images per inference batch.
        stop_after_epoch: end this call once this many epochs are done (the run stays
            resumable; for time-limited jobs). ``None`` trains to ``epochs``.
        eval_every: evaluate the clean test set after every ``eval_every`` epochs (and
            the last) and keep each result in the history: the learning curve. ``0``
            evaluates after the last epoch only.
        ema_decay: keep an exponential moving average of the weights (parameters and
            BatchNorm statistics) with this decay, ramped up over the first steps as
            YOLOv5/YOLOv8 do, and evaluate the average instead of the raw weights. ``0``
            turns it off.
        scale_range: ``[low, high]`` random zoom of each training image after the letterbox
            (see ``noisybox.data.build_transforms``); ``None`` keeps the scale.
    """

    train_annotations: str
    train_images: str | None = None
    test_annotations: str | None = None
    test_images: str | None = None
    out_dir: str = "runs/train"
    detector: str = "fcos"
    backbone: str = "resnet18"
    loss: str | LossSpec = STOCK_LOSS
    alpha: float | None = None
    alpha_warmup: float = DEFAULT_ALPHA_WARMUP
    loss_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 12
    batch_size: int = 8
    lr: float | None = None
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    lr_warmup: float = 0.05
    grad_clip: float = 10.0
    image_size: int = 512
    fpn_channels: int = 128
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    workers: int = 2
    weights: str | None = None
    weights_backbone: str | None = None
    noise: dict[str, Any] | None = None
    train_format: str | None = None
    test_format: str | None = None
    detector_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    resume: bool = True
    eval_batch_size: int = 8
    stop_after_epoch: int | None = None
    eval_every: int = 0
    ema_decay: float = 0.0
    scale_range: list[float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.amp, bool):  # accept amp=True/False
            self.amp = "auto" if self.amp else "off"
        if isinstance(self.loss, LossSpec):
            self._unpack_loss_spec(self.loss)

    def _unpack_loss_spec(self, spec: LossSpec) -> None:
        """``loss=LossSpec(...)``: the spec's settings into the flat fields, which it may
        not contradict (an alpha beside the spec's is a mistake, not an override)."""
        given = {
            "alpha": self.alpha is not None,
            "loss_kwargs": bool(self.loss_kwargs),
            "alpha_warmup": spec.alpha_warmup is not None
            and self.alpha_warmup not in (DEFAULT_ALPHA_WARMUP, spec.alpha_warmup),
        }
        for key, clash in given.items():
            if clash:
                raise NoisyboxError(
                    f"Expected {key} inside loss=LossSpec(...) but got {key}="
                    f"{getattr(self, key)!r} beside it"
                )
        self.loss = spec.name
        self.alpha = spec.alpha
        if spec.alpha_warmup is not None:
            self.alpha_warmup = spec.alpha_warmup
        self.loss_kwargs = spec.kwargs

    @property
    def loss_spec(self) -> LossSpec:
        """The loss as one value: ``loss``, ``alpha``, ``alpha_warmup`` and ``loss_kwargs``.

        Raises:
            SettingError: ``alpha`` or ``alpha_warmup`` outside its bound (the message of
                :data:`~noisybox.settings.ALPHA` or :data:`~noisybox.settings.ALPHA_WARMUP`).

        >>> TrainConfig("t.json", loss="alpha-iou", alpha=3).loss_spec
        LossSpec(name='alpha-iou', alpha=3.0, alpha_warmup=0.3, params=())
        >>> TrainConfig("t.json", loss=LossSpec("alpha-iou", 3.0, 0.5)).alpha_warmup
        0.5
        """
        return LossSpec.from_fields(
            {
                "loss": self.loss,
                "alpha": self.alpha,
                "alpha_warmup": self.alpha_warmup,
                "loss_kwargs": self.loss_kwargs,
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (paths as strings).

        >>> TrainConfig("train.json", epochs=2).to_dict()["epochs"]
        2
        """
        return to_jsonable(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict such as :meth:`to_dict` wrote; unknown keys raise.

        Deprecated keys (:data:`RENAMED_FIELDS`, ``noise: {model: ...}``) are renamed with a
        ``FutureWarning``; pass stored dicts through :func:`upgrade_config` first to load
        them silently.

        Raises:
            NoisyboxError: an unknown key, a missing ``train_annotations``, or a key given
                under both its old and its new name.

        >>> TrainConfig.from_dict({"train_annotations": "a.json", "loss": "alpha-iou"}).loss
        'alpha-iou'
        """
        data = upgrade_config(data, warn=True)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise NoisyboxError(
                f"Expected training config keys among {sorted(names)} but got {unknown[0]!r}"
            )
        if not data.get("train_annotations"):
            raise NoisyboxError("Expected train_annotations in the training config but got none")
        values = dict(data)
        for key in ("loss_kwargs", "detector_kwargs"):
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**values)

    @classmethod
    def from_sources(
        cls, path: str | os.PathLike[str] | None = None, **overrides: Any
    ) -> TrainConfig:
        """The config of a JSON or YAML file of fields, with ``overrides`` on top.

        A field neither the file nor ``overrides`` sets keeps its default; the ``*_kwargs``
        mappings of the file and of ``overrides`` are merged key by key (``overrides`` win).
        What ``noisybox train --config FILE --seed 2`` and the torchrun entry point
        (``python -m noisybox.engine``) build.

        Args:
            path: a ``.json``, ``.yaml`` or ``.yml`` file holding a mapping of fields.
            **overrides: field values that replace the file's.

        Raises:
            NoisyboxError: an unreadable file, not a mapping, an unknown key or a missing
                ``train_annotations``.

        >>> TrainConfig.from_sources(train_annotations="a.json", epochs=3).epochs
        3
        """
        values: dict[str, Any] = read_config_file(path) if path is not None else {}
        for key, value in overrides.items():
            if key.endswith("_kwargs") and isinstance(values.get(key), Mapping):
                value = {**values[key], **(value or {})}
            values[key] = value
        return cls.from_dict(values)

    @property
    def resolved_lr(self) -> float:
        return float(self.lr) if self.lr is not None else _DEFAULT_LR[self.optimizer]

    def validate(self) -> None:
        """Check every value; raise :class:`~noisybox.errors.NoisyboxError` on the first bad one."""
        if self.loss not in list_detector_losses():
            raise NoisyboxError(f"Expected loss in {list_detector_losses()} but got {self.loss!r}")
        self.loss_spec  # noqa: B018 (the spec checks alpha and alpha_warmup)
        self._check_finite()
        checks: list[tuple[bool, str, Any]] = [
            (self.detector in list_detectors(), f"detector in {list_detectors()}", self.detector),
            (self.backbone in list_backbones(), f"backbone in {list_backbones()}", self.backbone),
            (self.optimizer in OPTIMIZERS, f"optimizer in {list(OPTIMIZERS)}", self.optimizer),
            (self.amp in AMP_MODES, f"amp in {list(AMP_MODES)}", self.amp),
            (int(self.epochs) == self.epochs and self.epochs >= 1, "epochs >= 1", self.epochs),
            (self.batch_size >= 1, "batch_size >= 1", self.batch_size),
            (0 <= self.lr_warmup < 1, "lr_warmup in [0, 1)", self.lr_warmup),
            (self.lr is None or self.lr > 0, "lr > 0", self.lr),
            (self.grad_clip >= 0, "grad_clip >= 0", self.grad_clip),
            (self.image_size >= 32, "image_size >= 32", self.image_size),
            (self.workers >= 0, "workers >= 0", self.workers),
            (self.eval_every >= 0, "eval_every >= 0", self.eval_every),
            (0 <= self.ema_decay < 1, "ema_decay in [0, 1)", self.ema_decay),
            (
                self.scale_range is None
                or (len(self.scale_range) == 2 and 0 < self.scale_range[0] <= self.scale_range[1]),
                "scale_range [low, high] with 0 < low <= high",
                self.scale_range,
            ),
        ]
        for ok, expected, got in checks:
            if not ok:
                raise NoisyboxError(f"Expected {expected} but got {got!r}")
        check_limit("image_size", self.image_size, MAX_IMAGE_SIZE)
        if not (isinstance(self.seed, numbers.Integral) and 0 <= self.seed <= MAX_SEED):
            raise NoisyboxError(
                f"Expected seed an integer in [0, {MAX_SEED}] (numpy and torch take 64-bit "
                f"seeds) but got {self.seed!r}"
            )

        if not isinstance(self.detector_kwargs, Mapping):
            raise NoisyboxError(
                f"Expected detector_kwargs a mapping but got {self.detector_kwargs!r}"
            )
        try:
            check_detector_kwargs(self.detector, self.detector_kwargs)
        except ValueError as exc:
            raise NoisyboxError(str(exc)) from None

    def _check_finite(self) -> None:
        """Every number of the schedule must be finite: a learning rate of ``inf`` trains
        every weight to NaN, and comparisons such as ``lr > 0`` let it through."""
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            values = value if isinstance(value, (list, tuple)) else [value]
            for v in values:
                if isinstance(v, float) and not math.isfinite(v):
                    raise NoisyboxError(f"Expected a finite {field.name} but got {value!r}")


def _deprecated_attribute(old: str, new: str) -> property:
    def get(self: TrainConfig) -> Any:
        warn_renamed(old, new, "TrainConfig")
        return getattr(self, new)

    def set_(self: TrainConfig, value: Any) -> None:
        warn_renamed(old, new, "TrainConfig")
        setattr(self, new, value)

    return property(get, set_, doc=f"Deprecated alias of ``{new}``.")


# the deprecated names as keywords (TrainConfig(val_images=...)) and attributes
# (cfg.val_images), with a warning; they are not fields, so never stored
TrainConfig.__init__ = renamed_keywords(**RENAMED_FIELDS)(TrainConfig.__init__)  # type: ignore[method-assign]
for _old, _new in RENAMED_FIELDS.items():
    setattr(TrainConfig, _old, _deprecated_attribute(_old, _new))


def upgrade_config(data: Mapping[str, Any], *, warn: bool = False) -> dict[str, Any]:
    """A config dict with deprecated keys under their current names.

    ``val_*`` become ``test_*`` (:data:`RENAMED_FIELDS`) and the ``model`` of an online
    ``noise`` mapping becomes ``noise_model``. Checkpoints and records written before the
    rename load through this (silently: the user did not write them).

    Args:
        data: a config mapping (a file's, a checkpoint's, a record's ``train_config``).
        warn: warn (``FutureWarning``) about every deprecated key, for what a user wrote.

    Raises:
        NoisyboxError: a key given under both its old and its new name.

    >>> upgrade_config({"train_annotations": "a.json", "val_images": "img",
    ...                 "noise": {"eta": 0.3, "model": "uniform"}})
    {'train_annotations': 'a.json', 'test_images': 'img', 'noise': {'eta': 0.3, 'noise_model': 'uniform'}}
    """
    try:
        out = rename_keys(data, RENAMED_FIELDS, "training config", warn=warn)
        if isinstance(out.get("noise"), Mapping):
            out["noise"] = rename_keys(
                out["noise"], {"model": "noise_model"}, "training config noise", warn=warn
            )
    except TypeError as exc:
        raise NoisyboxError(f"Expected each key once but got {exc}") from None
    return out


def field_default(name: str) -> Any:
    """The default of a :class:`TrainConfig` field (``None`` for the required one).

    >>> field_default("epochs"), field_default("optimizer")
    (12, 'adamw')
    """
    field = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The mapping of fields in a JSON or YAML (``.yaml``, ``.yml``) training config file.

    Raises:
        NoisyboxError: the file is unreadable, not JSON/YAML, or not a mapping.
    """
    path = Path(path)
    what = "a JSON/YAML training config"
    try:
        raw = path.read_bytes()
        if path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(raw.decode("utf-8"))
        else:
            data, _ = parse_json(raw, path, what=what)
    except NoisyboxError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, Exception) as exc:  # yaml.YAMLError too
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NoisyboxError(f"Expected {what} in {path} but got: {first}") from None
    if not isinstance(data, dict):
        raise NoisyboxError(
            f"Expected a mapping of TrainConfig fields in {path} but got {type(data).__name__}"
        )
    return data
