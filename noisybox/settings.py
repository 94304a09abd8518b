"""The settings every surface takes, as value objects: their bounds, one message each, and
the loss spec with its alpha schedule.

``eta`` (and every other noise rate), ``alpha`` and ``alpha_warmup`` are checked here and
nowhere else: the CLI's click types (:mod:`noisybox.cli._options`), the Python API
(:func:`~noisybox.noise.perturb_boxes`, :class:`~noisybox.noise.BoxNoise`,
``corrupt_annotations``, the losses, ``TrainConfig``, the Ultralytics plug) and the study
YAML schema all call :meth:`Bound.check`, so that a value refused by one is refused by all
with the same words. Torch-free, so that the study schema and the report can import it.

Bounds:

- ``eta`` in ``[0, 1)``: the paper's eq. 5 draws offsets up to ``eta`` times the box size,
  so ``eta = 1`` can shrink a box to nothing.
- ``alpha >= 0``: ``alpha = 0`` is the ``-log(IoU)`` limit of the Alpha-IoU paper's eq. 2
  (the ``log-iou`` loss), which a study may ask for like any other power.
- ``alpha_warmup`` in ``[0, 1]``: the share of the training steps over which alpha ramps
  from 1 to its target; ``1`` ramps over the whole run.

The loss spec (:class:`LossSpec`: a loss name, its alpha, its alpha warm-up and further
loss parameters) is validated here once and passed whole: ``TrainConfig.loss_spec``, the
Ultralytics plug and the study grid's cells take it; the alpha schedule
(:func:`alpha_at_step`, :data:`DEFAULT_ALPHA_WARMUP`) lives beside it. Both are re-exported
by :mod:`noisybox.losses` (and ``noisybox.losses.alpha_schedule``, ``noisybox.engine``,
``noisybox.study.spec``).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from noisybox.errors import NoisyboxError

__all__ = [
    "ALPHA",
    "ALPHA_WARMUP",
    "DEFAULT_ALPHA_WARMUP",
    "ETA",
    "RATE",
    "Bound",
    "LossSpec",
    "SettingError",
    "alpha_at_step",
    "loss_label",
    "shows_alpha",
]


class SettingError(NoisyboxError):
    """A setting outside its bound (a :class:`ValueError`, like every noisybox input error)."""


@dataclasses.dataclass(frozen=True)
class Bound:
    """A number's allowed interval and the one message that refuses a value outside it.

    Attributes:
        name: the setting's name in the paper's words, used in the message.
        low: the smallest value allowed (included).
        high: the upper end (``math.inf`` for none; finite values only either way).
        high_open: whether ``high`` itself is refused.

    >>> ETA.check(0.3), ALPHA.check(0)
    (0.3, 0.0)
    >>> ETA.check(1)
    Traceback (most recent call last):
    ...
    noisybox.settings.SettingError: Expected eta in [0, 1) but got 1.0
    """

    name: str
    low: float
    high: float = math.inf
    high_open: bool = False

    @property
    def interval(self) -> str:
        """``in [0, 1)``, ``in [0, 1]`` or ``>= 0 and finite``."""
        if math.isinf(self.high):
            return f">= {self.low:g} and finite"
        return f"in [{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"

    def message(self, value: Any, name: str | None = None) -> str:
        """The one refusal: ``Expected eta in [0, 1) but got 1.0``."""
        try:
            shown = repr(float(value)) if not isinstance(value, bool) else repr(value)
        except (TypeError, ValueError):
            shown = repr(value)
        return f"Expected {name or self.name} {self.interval} but got {shown}"

    def contains(self, value: float) -> bool:
        """Whether a float lies inside the bound (``nan`` and ``inf`` never do)."""
        if not math.isfinite(value) or value < self.low or value > self.high:
            return False
        return not (self.high_open and value == self.high)

    def check(self, value: Any, name: str | None = None) -> float:
        """``value`` as a float inside the bound.

        Args:
            value: a number (``bool`` is refused; strings are converted as ``float`` does).
            name: the name in the message when the setting goes by another (``eta_w``,
                ``missing``); defaults to :attr:`name`.

        Raises:
            SettingError: ``value`` is not a number or lies outside the bound.
        """
        if isinstance(value, bool):
            raise SettingError(self.message(value, name))
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise SettingError(self.message(value, name)) from None
        if not self.contains(number):
            raise SettingError(self.message(number, name))
        return number


ETA = Bound("eta", 0.0, 1.0, high_open=True)
"""The noise rate of eq. 5 (and ``eta_w``, ``eta_h``): ``[0, 1)``."""

RATE = ETA
"""An annotation-level corruption rate (``missing``, ``class_flip``, ...): as ``eta``."""

ALPHA = Bound("alpha", 0.0)
"""The power of the IoU term: ``>= 0``, ``0`` being ``-log(IoU)``."""

ALPHA_WARMUP = Bound("alpha_warmup", 0.0, 1.0)
"""The share of the training steps over which alpha ramps from 1: ``[0, 1]``."""

#: Default share of the training steps over which alpha ramps from 1 to its target.
#: Measured (FCOS, ResNet-18 FPN-64, random init, 800 shapes images at 128 px, 3 epochs):
#: SGD with ``alpha = 3`` and no ramp collapses (mean matched IoU 0.001, AP50 0.000);
#: with a 0.3 ramp it trains (matched IoU 0.53, AP50 0.078). AdamW does not collapse
#: even without a ramp (its per-parameter step size undoes the small gradient scale).
DEFAULT_ALPHA_WARMUP = 0.3


def alpha_at_step(step: int, total_steps: int, target: float, warmup: float) -> float:
    """Alpha of the box loss at ``step``: linear from 1 to ``target`` over the warm-up.

    Args:
        step: optimiser steps taken so far (0-based).
        total_steps: steps of the whole run.
        target: the loss's alpha after warm-up.
        warmup: share of ``total_steps`` spent ramping (``0`` uses ``target`` from the
            first step).

    Returns:
        ``1 + (target - 1) * min(1, step / (warmup * total_steps))``.

    Reference:
        The warm-up avoids the vanishing gradient of ``1 - IoU^alpha`` near ``IoU = 0``
        (its gradient is ``alpha * IoU^(alpha - 1)`` times that of IoU, eq. 3).

    >>> [alpha_at_step(s, 100, 3.0, 0.2) for s in (0, 10, 20, 50)]
    [1.0, 2.0, 3.0, 3.0]
    >>> alpha_at_step(0, 100, 3.0, 0.0)
    3.0
    """
    ramp_steps = warmup * total_steps
    if ramp_steps <= 0:
        return float(target)
    return float(1.0 + (target - 1.0) * min(1.0, step / ramp_steps))


def loss_label(loss: str, alpha: float | None, alpha_warmup: float | None = None) -> str:
    """A loss row's display name: alpha shown for ``alpha-*`` losses and non-default alphas.

    >>> loss_label("alpha-iou", 3.0, 0.3), loss_label("iou", 1.0), loss_label("ciou", None)
    ('alpha-iou@3 (warm-up 0.3)', 'iou', 'ciou')
    """
    text = loss
    if alpha is not None and shows_alpha(loss, alpha):
        text = f"{loss}@{alpha:g}"
    if alpha_warmup is not None:
        text += f" (warm-up {alpha_warmup:g})"
    return text


def shows_alpha(loss: str, alpha: float | None) -> bool:
    """Whether :func:`loss_label` shows alpha: set, and not the plain names' implied 1.

    >>> shows_alpha("alpha-iou", 1.0), shows_alpha("iou", 1.0), shows_alpha("iou", 2.0)
    (True, False, True)
    """
    return alpha is not None and (alpha != 1.0 or loss.startswith("alpha-"))


# NAME[@ALPHA][~wWARMUP]: a name holds no "@", "~" or white space; the numbers are read by
# float() and then bounded by LossSpec itself
_NAME = r"[^@~\s]+"
_NAME_RE = re.compile(_NAME)
_SPEC_RE = re.compile(rf"(?P<name>{_NAME})(?:@(?P<alpha>{_NAME}))?(?:~w(?P<warmup>{_NAME}))?")
_SPEC_GRAMMAR = "NAME[@ALPHA][~wWARMUP] (e.g. alpha-iou@3~w0.3)"

Params = tuple[tuple[str, Any], ...]


@dataclasses.dataclass(frozen=True)
class LossSpec:
    """A box loss as one value: its registered name, alpha, alpha warm-up and parameters.

    The one home of these settings: the engine's ``TrainConfig`` (:attr:`TrainConfig.loss_spec
    <noisybox.engine.TrainConfig.loss_spec>`), the Ultralytics plug
    (``noisybox.detectors.ultralytics.plugged_trainer``) and the study grid's cells take it,
    and a record's ``cell`` reads back into it (:meth:`from_fields`). The bounds are checked
    once, here (:data:`ALPHA`, :data:`ALPHA_WARMUP`, with their messages); the name is
    checked against the loss registry where the loss is built (torch), so that the report
    can hold specs without torch.

    Attributes:
        name: a ``noisybox.losses`` name, or ``"torchvision"`` (the detector's stock loss).
        alpha: the loss's alpha after warm-up; ``None``: the loss's registered default
            (:meth:`resolve`).
        alpha_warmup: the share of the training steps over which alpha ramps from 1;
            ``None``: :data:`DEFAULT_ALPHA_WARMUP` (:attr:`resolved_warmup`). A study keeps
            ``None`` apart from an explicit value: it shows in the cell id and the record.
        params: further ``noisybox.losses.get_loss`` arguments (``loss_kwargs``); a mapping
            is accepted and kept as sorted ``(key, value)`` pairs, so that a spec is hashable.

    >>> spec = LossSpec("alpha-iou", 3, 0.3)
    >>> spec.alpha, spec.label, spec.id_label, spec.row_label
    (3.0, 'alpha-iou@3', 'alpha-iou@3~w0.3', 'alpha-iou@3 (warm-up 0.3)')
    >>> spec.alpha_at(0, 10), spec.alpha_at(3, 10)
    (1.0, 3.0)
    >>> LossSpec("giou", params={"eps": 1e-6}).params
    (('eps', 1e-06),)
    >>> LossSpec("iou", -1)
    Traceback (most recent call last):
    ...
    noisybox.settings.SettingError: Expected alpha >= 0 and finite but got -1.0
    """

    name: str
    alpha: float | None = None
    alpha_warmup: float | None = None
    params: Mapping[str, Any] | Params = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise SettingError(
                f"Expected a loss name (no '@', '~' or spaces) but got {self.name!r}"
            )
        if self.alpha is not None:
            object.__setattr__(self, "alpha", ALPHA.check(self.alpha))
        if self.alpha_warmup is not None:
            object.__setattr__(self, "alpha_warmup", ALPHA_WARMUP.check(self.alpha_warmup))
        object.__setattr__(self, "params", _frozen_params(self.params))

    @property
    def kwargs(self) -> dict[str, Any]:
        """:attr:`params` as keyword arguments (the ``loss_kwargs`` of a ``TrainConfig``)."""
        return dict(self.params)  # type: ignore[arg-type]

    @property
    def label(self) -> str:
        """``alpha-iou@3``, ``iou`` (alpha 1 is implied by plain names), ``iou@2``."""
        return loss_label(self.name, self.alpha)

    @property
    def id_label(self) -> str:
        """:attr:`label` and the warm-up when set, ``alpha-iou@3~w0.3``: the loss part of a
        study cell's id, and the text :meth:`parse` reads back."""
        if self.alpha_warmup is None:
            return self.label
        return f"{self.label}~w{self.alpha_warmup:g}"

    @property
    def row_label(self) -> str:
        """The label of the report's row: :attr:`label` and the warm-up, when set.

        >>> LossSpec("alpha-iou", 3.0, 0.3).row_label
        'alpha-iou@3 (warm-up 0.3)'
        """
        return loss_label(self.name, self.alpha, self.alpha_warmup)

    @property
    def shows_alpha(self) -> bool:
        """Whether the label shows alpha (``alpha-*`` losses and non-default alphas)."""
        return shows_alpha(self.name, self.alpha)

    @property
    def resolved_warmup(self) -> float:
        """:attr:`alpha_warmup`, or :data:`DEFAULT_ALPHA_WARMUP` when unset."""
        return DEFAULT_ALPHA_WARMUP if self.alpha_warmup is None else self.alpha_warmup

    def resolve(self, default_alpha: Callable[[str], float | None]) -> LossSpec:
        """This spec with :attr:`alpha` and :attr:`alpha_warmup` filled in, so that
        :meth:`alpha_at` looks nothing up per step: :attr:`alpha`, else an ``alpha`` of
        :attr:`params` (as the loss is built), else ``default_alpha(name)``, the loss
        registry's default (:func:`noisybox.losses.resolve_loss_spec` passes it; this module
        stays free of torch).

        >>> LossSpec("alpha-iou", params={"alpha": 2}).resolve(lambda name: 3.0).alpha
        2.0
        >>> LossSpec("alpha-iou").resolve(lambda name: 3.0)
        LossSpec(name='alpha-iou', alpha=3.0, alpha_warmup=0.3, params=())
        """
        alpha = self.alpha
        if alpha is None:
            given = self.kwargs.get("alpha")
            alpha = ALPHA.check(given) if given is not None else default_alpha(self.name)
        return dataclasses.replace(self, alpha=alpha, alpha_warmup=self.resolved_warmup)

    def alpha_at(self, step: int, total_steps: int) -> float | None:
        """The alpha of a resolved spec (:meth:`resolve`) at ``step`` of ``total_steps``:
        :func:`alpha_at_step` from 1 to :attr:`alpha` over :attr:`resolved_warmup`; ``None``
        for a loss without alpha (the stock loss).

        >>> LossSpec("alpha-iou", 3.0, 0.5).alpha_at(0, 10), LossSpec("iou").alpha_at(0, 10)
        (1.0, None)
        """
        if self.alpha is None:
            return None
        return alpha_at_step(step, total_steps, self.alpha, self.resolved_warmup)

    def to_fields(self) -> dict[str, Any]:
        """The spec as the flat keys of a ``TrainConfig`` (``loss``, ``alpha``, and
        ``alpha_warmup`` and ``loss_kwargs`` where set).

        >>> LossSpec("alpha-iou", 3.0).to_fields()
        {'loss': 'alpha-iou', 'alpha': 3.0}
        """
        fields: dict[str, Any] = {"loss": self.name, "alpha": self.alpha}
        if self.alpha_warmup is not None:
            fields["alpha_warmup"] = self.alpha_warmup
        if self.params:
            fields["loss_kwargs"] = self.kwargs
        return fields

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> LossSpec:
        """The spec of flat keys: a ``TrainConfig`` dict or a record's ``cell`` (``loss``,
        ``alpha``, ``alpha_warmup``, ``loss_kwargs``; absent or ``None`` ones unset).

        >>> LossSpec.from_fields({"loss": "alpha-iou", "alpha": 3, "alpha_warmup": 0.3}).label
        'alpha-iou@3'
        """
        return cls(
            str(fields["loss"]),
            fields.get("alpha"),
            fields.get("alpha_warmup"),
            fields.get("loss_kwargs") or (),
        )

    @classmethod
    def from_cell(cls, cell: Mapping[str, Any]) -> LossSpec:
        """The loss of a record's ``cell``: :meth:`from_fields`.

        >>> LossSpec.from_cell({"loss": "alpha-iou", "alpha": 3.0, "alpha_warmup": 0.3}).label
        'alpha-iou@3'
        """
        return cls.from_fields(cell)

    @classmethod
    def parse(cls, text: str) -> LossSpec:
        """The spec of an :attr:`id_label`: ``NAME[@ALPHA][~wWARMUP]``.

        ``NAME`` holds no ``@``, ``~`` or white space; ``ALPHA`` and ``WARMUP`` are numbers
        (as Python's ``float`` reads them) within :data:`ALPHA` and :data:`ALPHA_WARMUP`. A
        name without ``@`` has alpha unset (its registered default), so ``iou``, the label
        of ``LossSpec("iou", 1.0)``, reads back as ``LossSpec("iou")``; every label reads
        back to itself (``LossSpec.parse(s.id_label).id_label == s.id_label``). Parameters
        have no text form.

        Raises:
            SettingError: text outside the grammar, or a number outside its bound (one line).

        >>> LossSpec.parse("alpha-iou@3~w0.3")
        LossSpec(name='alpha-iou', alpha=3.0, alpha_warmup=0.3, params=())
        >>> LossSpec.parse("giou").alpha is None
        True
        >>> LossSpec.parse("alpha-iou@three")
        Traceback (most recent call last):
        ...
        noisybox.settings.SettingError: Expected a loss spec NAME[@ALPHA][~wWARMUP] (e.g. alpha-iou@3~w0.3) but got 'alpha-iou@three'
        """
        match = _SPEC_RE.fullmatch(text) if isinstance(text, str) else None
        try:
            if match is None:
                raise ValueError
            alpha, warmup = (
                None if v is None else float(v) for v in match.group("alpha", "warmup")
            )
        except ValueError:
            raise SettingError(f"Expected a loss spec {_SPEC_GRAMMAR} but got {text!r}") from None
        return cls(match["name"], alpha, warmup)


def _frozen_params(params: Mapping[str, Any] | Params) -> Params:
    """Loss parameters as sorted, hashable ``(key, value)`` pairs (lists become tuples)."""
    try:
        pairs = dict(params)
    except (TypeError, ValueError):
        raise SettingError(f"Expected loss params a mapping but got {params!r}") from None
    frozen = tuple(sorted((str(k), _frozen(v)) for k, v in pairs.items()))
    try:
        hash(frozen)
    except TypeError:
        raise SettingError(
            f"Expected loss params of numbers, strings or lists but got {params!r}"
        ) from None
    return frozen


def _frozen(value: Any) -> Any:
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value
