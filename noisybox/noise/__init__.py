"""Box noise: the paper's model and those of other published studies
(:mod:`noisybox.noise.published`) in a registry, the pure :func:`perturb_boxes`, and the
albumentations transform :class:`BoxNoise` (imported lazily, so that using the noise maths
does not import albumentations); the settings travel as one :class:`NoiseSpec`, checked
once where it is built."""

from __future__ import annotations

from typing import Any

from noisybox.noise import models as _models  # noqa: F401  (registers the built-in models)
from noisybox.noise import published as _published  # noqa: F401  (registers the published ones)
from noisybox.noise.perturb import (
    BOUNDARIES,
    apply_box_noise,
    draw_box_noise,
    perturb_boxes,
    resolve_eta,
)
from noisybox.noise.registry import (
    NoiseModel,
    get_noise_model,
    list_noise_models,
    register_noise_model,
)
from noisybox.noise.spec import NoiseSpec

__all__ = [
    "BOUNDARIES",
    "BoxNoise",
    "NoiseModel",
    "NoiseSpec",
    "apply_box_noise",
    "draw_box_noise",
    "get_noise_model",
    "list_noise_models",
    "perturb_boxes",
    "register_noise_model",
    "resolve_eta",
]


def __getattr__(name: str) -> Any:
    if name == "BoxNoise":
        from noisybox.noise.transform import BoxNoise

        return BoxNoise
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
