"""The bounds of the settings every surface takes: one definition, one message each.

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
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from noisybox.errors import NoisyboxError

__all__ = ["ALPHA", "ALPHA_WARMUP", "ETA", "RATE", "Bound", "SettingError"]


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
