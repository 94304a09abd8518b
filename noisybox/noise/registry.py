"""Noise models by name.

A noise model draws the random offsets of the paper's centre/size parametrisation. It is a
function ``model(rng, sizes, eta_w, eta_h) -> deltas`` where ``sizes`` is ``float[N, 2]``
the clean ``(w, h)`` of every box and ``deltas`` is ``float[N, 4]`` the offsets
``(d_cx, d_cy, d_w, d_h)`` in the same units. All randomness comes from ``rng``; applying the
offsets and the boundary conditions is the job of :func:`noisybox.noise.perturb_boxes`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from noisybox._registry import Registry

__all__ = ["NoiseModel", "get_noise_model", "list_noise_models", "register_noise_model"]

NoiseModel = Callable[[np.random.Generator, np.ndarray, float, float], np.ndarray]

_NOISE_MODELS: Registry[NoiseModel] = Registry("noise model")


def register_noise_model(name: str) -> Callable[[NoiseModel], NoiseModel]:
    """Decorator registering a noise model under ``name``.

    Raises:
        NoisyboxError: if ``name`` is already registered.
    """
    return _NOISE_MODELS.register(name)


def list_noise_models() -> list[str]:
    """Names of the registered noise models, sorted.

    >>> "uniform" in list_noise_models()
    True
    """
    return _NOISE_MODELS.names()


def get_noise_model(name: str) -> NoiseModel:
    """The noise model registered under ``name``.

    Raises:
        NoisyboxError: for an unknown name, listing the valid ones.
    """
    return _NOISE_MODELS.get(name)
