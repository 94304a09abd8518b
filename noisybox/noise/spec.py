"""The noise settings as one value: :class:`NoiseSpec`, validated once where it is built.

The box noise (model, ``eta`` or ``eta_w``/``eta_h``, boundary, ratio, minimum size) and
the annotation-level corruption rates travel together from the CLI or a public function
(:func:`~noisybox.noise.perturb_boxes`, :class:`~noisybox.noise.BoxNoise`,
:func:`~noisybox.corrupt.corrupt_annotations`, ...) down to the noise model; every bound
is checked here, with the messages of :mod:`noisybox.settings`, and nothing downstream
checks again. The seed is not part of it: the same noise is drawn with many seeds.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

from noisybox.errors import NoisyboxError
from noisybox.noise.annotation_noise import ANNOTATION_CORRUPTIONS, check_corruption_rates
from noisybox.noise.registry import get_noise_model
from noisybox.settings import ETA, Bound

__all__ = [
    "BOUNDARIES",
    "NOISE_KEYWORDS",
    "RATIO",
    "NoiseSpec",
    "require_spec",
    "takes_noise_spec",
]

BOUNDARIES: tuple[str, ...] = ("shift", "truncate")
"""How noisy boxes are kept inside their image (see :func:`~noisybox.noise.apply_box_noise`)."""

RATIO = Bound("ratio", 0.0, 1.0)
"""The share of boxes perturbed: ``[0, 1]``."""

NOISE_KEYWORDS: tuple[str, ...] = (
    "eta",
    "eta_w",
    "eta_h",
    "noise_model",
    "boundary",
    "ratio",
    "min_size",
    *ANNOTATION_CORRUPTIONS,
)
"""The loose keywords a public function takes instead of ``spec=`` (the fields of
:class:`NoiseSpec`)."""

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclasses.dataclass(frozen=True)
class NoiseSpec:
    """The noise settings, checked once.

    Attributes:
        noise_model: a name from :func:`~noisybox.noise.list_noise_models`.
        eta: noise rate of both axes, in ``[0, 1)`` (the paper's eq. 5).
        eta_w: horizontal rate; ``None`` (when built) takes ``eta``. Always a float once
            built.
        eta_h: vertical rate; ``None`` (when built) takes ``eta``. Always a float once built.
        boundary: ``"shift"`` (the paper's eq. 5) or ``"truncate"`` (OA-MIL).
        ratio: share of boxes perturbed, in ``[0, 1]``.
        min_size: minimum noisy width and height in pixels, finite and ``> 0``.
        missing: share of boxes dropped (annotation-level noise), in ``[0, 1)``.
        class_flip: share of boxes given another class, in ``[0, 1)``.
        extra: share of bogus boxes in the result, in ``[0, 1)``.
        relocate: share of boxes given a new box around their own, in ``[0, 1)``.

    Raises:
        SettingError: a rate outside ``[0, 1)`` or ``ratio`` outside ``[0, 1]``, with the
            messages of :mod:`noisybox.settings` (``Expected eta in [0, 1) but got 1.0``).
        NoisyboxError: an unknown noise model or boundary, or a ``min_size`` that is not a
            finite positive number.

    A frozen dataclass rather than a pydantic model: it imports nothing heavy (the noise
    maths stays cheap to import) and refuses a bad value with the one-line message of
    :meth:`~noisybox.settings.Bound.check` rather than a ``ValidationError`` report.

    >>> spec = NoiseSpec(eta=0.2, eta_h=0.1)
    >>> spec.eta_w, spec.eta_h
    (0.2, 0.1)
    >>> spec.to_dict()
    {'model': 'uniform', 'eta': 0.2, 'eta_w': 0.2, 'eta_h': 0.1, 'boundary': 'shift', 'ratio': 1.0, 'min_size': 1.0}
    >>> NoiseSpec.from_dict(spec.to_dict()) == spec
    True
    >>> NoiseSpec(eta=1)
    Traceback (most recent call last):
    ...
    noisybox.settings.SettingError: Expected eta in [0, 1) but got 1.0
    """

    noise_model: str = "uniform"
    eta: float = 0.2
    eta_w: float | None = None
    eta_h: float | None = None
    boundary: str = "shift"
    ratio: float = 1.0
    min_size: float = 1.0
    missing: float = 0.0
    class_flip: float = 0.0
    extra: float = 0.0
    relocate: float = 0.0

    def __post_init__(self) -> None:
        eta = ETA.check(self.eta)
        checked: dict[str, Any] = {
            "eta": eta,
            "eta_w": eta if self.eta_w is None else ETA.check(self.eta_w, "eta_w"),
            "eta_h": eta if self.eta_h is None else ETA.check(self.eta_h, "eta_h"),
            "ratio": RATIO.check(self.ratio),
            "min_size": _check_min_size(self.min_size),
        }
        if self.boundary not in BOUNDARIES:
            raise NoisyboxError(
                f"Expected boundary in {list(BOUNDARIES)} but got {self.boundary!r}"
            )
        get_noise_model(self.noise_model)
        given = {name: getattr(self, name) for name in ANNOTATION_CORRUPTIONS}
        rates = check_corruption_rates(given)
        checked.update({name: rates.get(name, 0.0) for name in ANNOTATION_CORRUPTIONS})
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def axis_etas(self) -> tuple[float, float]:
        """``(eta_w, eta_h)``, the rates the noise model draws with."""
        return cast(float, self.eta_w), cast(float, self.eta_h)

    @property
    def rates(self) -> dict[str, float]:
        """The annotation-level corruption rates that are not 0, in the order they are
        drawn (:data:`~noisybox.noise.annotation_noise.ANNOTATION_CORRUPTIONS`).

        >>> NoiseSpec(relocate=0.1, missing=0.2).rates
        {'missing': 0.2, 'relocate': 0.1}
        """
        return {name: getattr(self, name) for name in ANNOTATION_CORRUPTIONS if getattr(self, name)}

    @property
    def anisotropic(self) -> bool:
        """Whether ``eta_w`` or ``eta_h`` differ from ``eta``."""
        return self.axis_etas != (self.eta, self.eta)

    def to_dict(self) -> dict[str, Any]:
        """The settings under the keys ``noisybox corrupt`` writes in its provenance
        (``model`` is the noise model), in its order; the annotation-level rates that are
        not 0 under ``annotation_noise`` (``{"missing": {"rate": 0.1}}``, where the
        provenance adds each rate's seed)."""
        out: dict[str, Any] = {
            "model": self.noise_model,
            "eta": self.eta,
            "eta_w": self.eta_w,
            "eta_h": self.eta_h,
            "boundary": self.boundary,
            "ratio": self.ratio,
            "min_size": self.min_size,
        }
        if self.rates:
            out["annotation_noise"] = {name: {"rate": rate} for name, rate in self.rates.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NoiseSpec:
        """The spec of :meth:`to_dict`'s keys, or of a ``noisybox corrupt`` provenance.

        Keys that are not settings (``seed``, ``iou``, ...) are ignored, ``noise_model`` is
        read as ``model``, and a missing or ``null`` setting takes its default (a
        reproduced file records ``min_size: null``).

        Raises:
            NoisyboxError: a setting out of bounds, as the constructor.
        """
        keys = {"model": "noise_model", "noise_model": "noise_model"}
        keys.update({name: name for name in ("eta", "eta_w", "eta_h", "boundary")})
        keys.update({"ratio": "ratio", "min_size": "min_size"})
        kwargs = {keys[k]: v for k, v in data.items() if k in keys and v is not None}
        annotation = data.get("annotation_noise")
        if isinstance(annotation, Mapping):
            for name in ANNOTATION_CORRUPTIONS:
                entry = annotation.get(name)
                if isinstance(entry, Mapping) and entry.get("rate") is not None:
                    kwargs[name] = entry["rate"]
        return cls(**kwargs)


def _check_min_size(value: Any) -> float:
    """``value`` as a finite float ``> 0``.

    Raises:
        NoisyboxError: anything else.
    """
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not (math.isfinite(number) and number > 0.0):
        raise NoisyboxError(f"Expected min_size > 0 and finite but got {value!r}")
    return number


def takes_noise_spec(fn: _F) -> _F:
    """Decorator of a public function taking either ``spec=`` or the loose noise keywords
    (:data:`NOISE_KEYWORDS`): both in one call are refused, and the keywords are built into
    one :class:`NoiseSpec` here (when ``eta`` is given or defaults to a number), passed as
    ``spec``; so the function reads ``spec`` only, and every public entry point builds it
    the same way. ``spec`` stays ``None`` where ``eta`` is ``None``: the function decides
    (:func:`require_spec`, or no noise at all).

    Raises:
        TypeError: a call giving ``spec`` and a noise keyword, or a ``spec`` that is not a
            :class:`NoiseSpec`.
        NoisyboxError: a keyword out of bounds (:class:`NoiseSpec`).

    >>> @takes_noise_spec
    ... def draw(*, spec: NoiseSpec | None = None, eta: float = 0.2) -> float:
    ...     return require_spec(spec, "draw").eta
    >>> draw(spec=NoiseSpec(eta=0.1)), draw(eta=0.3), draw()
    (0.1, 0.3, 0.2)
    >>> draw(spec=NoiseSpec(), eta=0.3)
    Traceback (most recent call last):
    ...
    TypeError: draw(): expected either spec or the noise keywords but got both (spec and eta)
    """
    signature = inspect.signature(fn)
    names = [name for name in NOISE_KEYWORDS if name in signature.parameters]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        spec = bound.arguments.get("spec")
        if spec is not None:
            loose = [name for name in names if name in bound.arguments]
            if loose:
                raise TypeError(
                    f"{fn.__name__}(): expected either spec or the noise keywords but got "
                    f"both (spec and {', '.join(loose)})"
                )
            if not isinstance(spec, NoiseSpec):
                raise TypeError(
                    f"{fn.__name__}(): expected spec a NoiseSpec but got {type(spec).__name__}"
                )
        else:
            bound.apply_defaults()
            if bound.arguments.get("eta") is not None:
                bound.arguments["spec"] = NoiseSpec(**{n: bound.arguments[n] for n in names})
        return fn(*bound.args, **bound.kwargs)

    return cast(_F, wrapper)


def require_spec(spec: NoiseSpec | None, where: str) -> NoiseSpec:
    """The spec :func:`takes_noise_spec` built, or a ``TypeError`` naming ``where`` when
    there is none (``eta=None`` and no ``spec``)."""
    if spec is None:
        raise TypeError(f"{where}() missing required keyword argument: 'eta' (or 'spec')")
    return spec
