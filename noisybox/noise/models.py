"""The built-in noise models (see :mod:`noisybox.noise.registry` for the interface)."""

from __future__ import annotations

import numpy as np

from noisybox.noise.registry import register_noise_model

__all__ = ["gaussian_noise", "uniform_noise"]


def _scales(sizes: np.ndarray, eta_w: float, eta_h: float) -> np.ndarray:
    w = sizes[:, 0] * eta_w
    h = sizes[:, 1] * eta_h
    return np.stack([w, h, w, h], axis=1)


@register_noise_model("uniform")
def uniform_noise(
    rng: np.random.Generator, sizes: np.ndarray, eta_w: float, eta_h: float
) -> np.ndarray:
    """The paper's noise: independent ``U(-eta_w w, eta_w w)`` on ``cx`` and ``w`` and
    ``U(-eta_h h, eta_h h)`` on ``cy`` and ``h``, from the clean ``w`` and ``h``.

    Args:
        rng: the only source of randomness; one ``(N, 4)`` draw in column order
            ``(cx, cy, w, h)``.
        sizes: ``float[N, 2]`` clean ``(w, h)``.
        eta_w: horizontal noise rate.
        eta_h: vertical noise rate.

    Returns:
        ``float[N, 4]`` offsets ``(d_cx, d_cy, d_w, d_h)``.

    Reference:
        Alpha-IoU (He et al., NeurIPS 2021), §4.3, the noise before eq. 5.
    """
    u = rng.uniform(-1.0, 1.0, size=(sizes.shape[0], 4))
    return u * _scales(sizes, eta_w, eta_h)


@register_noise_model("gaussian")
def gaussian_noise(
    rng: np.random.Generator, sizes: np.ndarray, eta_w: float, eta_h: float
) -> np.ndarray:
    """Gaussian offsets with standard deviation relative to the box size:
    ``N(0, (eta_w w)^2)`` on ``cx`` and ``w``, ``N(0, (eta_h h)^2)`` on ``cy`` and ``h``.

    Unlike ``uniform`` the offsets are unbounded; the boundary conditions of
    :func:`~noisybox.noise.perturb_boxes` (minimum size, inside the image) still apply.

    Args:
        rng: the only source of randomness; one ``(N, 4)`` draw.
        sizes: ``float[N, 2]`` clean ``(w, h)``.
        eta_w: horizontal standard deviation as a fraction of ``w``.
        eta_h: vertical standard deviation as a fraction of ``h``.

    Returns:
        ``float[N, 4]`` offsets ``(d_cx, d_cy, d_w, d_h)``.
    """
    z = rng.standard_normal(size=(sizes.shape[0], 4))
    return z * _scales(sizes, eta_w, eta_h)
