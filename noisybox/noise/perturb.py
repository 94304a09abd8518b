"""The pure, vectorised box noise of the Alpha-IoU paper (§4.3, eq. 5)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from noisybox._deprecation import renamed_keywords
from noisybox.boxes import _as_boxes, box_convert, check_box_format
from noisybox.errors import NoisyboxError
from noisybox.noise.registry import get_noise_model
from noisybox.noise.spec import BOUNDARIES, NoiseSpec, require_spec, takes_noise_spec
from noisybox.settings import ETA

__all__ = [
    "BOUNDARIES",
    "BOX_TOLERANCE",
    "apply_box_noise",
    "draw_box_noise",
    "perturb_boxes",
    "resolve_eta",
]

BOX_TOLERANCE = 1.0
"""Pixels a clean box may stick out of its image (rounding in real annotation files, e.g.
VOC's ``xmin = 0``); boxes further out are refused, as ``noisybox corrupt`` does."""


def resolve_eta(eta: float, eta_w: float | None, eta_h: float | None) -> tuple[float, float]:
    """``(eta_w, eta_h)`` with ``eta`` filling the ones not given.

    Raises:
        SettingError: if a rate lies outside :data:`noisybox.settings.ETA` (``[0, 1)``).

    >>> resolve_eta(0.2, None, 0.1)
    (0.2, 0.1)
    """
    w = ETA.check(eta) if eta_w is None else ETA.check(eta_w, "eta_w")
    h = ETA.check(eta) if eta_h is None else ETA.check(eta_h, "eta_h")
    return w, h


def apply_box_noise(
    boxes: np.ndarray,
    image_sizes: np.ndarray,
    deltas: np.ndarray,
    *,
    boundary: str = "shift",
    min_size: float = 1.0,
) -> np.ndarray:
    """Apply centre/size offsets to boxes and enforce the boundary conditions.

    Args:
        boxes: ``float64[N, 4]`` clean absolute ``xyxy``.
        image_sizes: ``float64[N, 2]`` ``(width, height)`` of each box's image.
        deltas: ``float64[N, 4]`` offsets ``(d_cx, d_cy, d_w, d_h)`` in pixels.
        boundary: ``"shift"`` (the paper's eq. 5: sizes clipped into ``[min_size, image]``,
            then the centre moved so the box lies inside the image) or ``"truncate"``
            (OA-MIL style: corners clipped at the image border; a box left narrower than
            ``min_size`` falls back to its clean value).
        min_size: smallest width and height in pixels (eq. 5's ``0 < w``).

    Returns:
        ``float64[N, 4]`` noisy absolute ``xyxy``.

    Reference:
        Alpha-IoU (He et al., NeurIPS 2021), eq. 5.

    >>> apply_box_noise(np.array([[0.0, 0, 10, 10]]), np.array([[100.0, 100]]),
    ...                 np.array([[-3.0, 0, 2, 0]]))
    array([[ 0.,  0., 12., 10.]])
    """
    if boundary not in BOUNDARIES:
        raise ValueError(f"Expected boundary in {list(BOUNDARIES)} but got {boundary!r}")
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    img_w, img_h = image_sizes[:, 0], image_sizes[:, 1]
    w = x2 - x1 + deltas[:, 2]
    h = y2 - y1 + deltas[:, 3]
    cx = (x1 + x2) / 2 + deltas[:, 0]
    cy = (y1 + y2) / 2 + deltas[:, 1]
    if boundary == "shift":
        w = np.minimum(np.maximum(w, min_size), img_w)
        h = np.minimum(np.maximum(h, min_size), img_h)
        cx = np.minimum(np.maximum(cx, w / 2), img_w - w / 2)
        cy = np.minimum(np.maximum(cy, h / 2), img_h - h / 2)
        out = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        # Rounding can leave a corner an ulp outside the image.
        np.clip(out[:, 0::2], 0.0, img_w[:, None], out=out[:, 0::2])
        np.clip(out[:, 1::2], 0.0, img_h[:, None], out=out[:, 1::2])
        return out
    w = np.maximum(w, min_size)
    h = np.maximum(h, min_size)
    out = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    np.clip(out[:, 0::2], 0.0, img_w[:, None], out=out[:, 0::2])
    np.clip(out[:, 1::2], 0.0, img_h[:, None], out=out[:, 1::2])
    degenerate = (out[:, 2] - out[:, 0] < min_size) | (out[:, 3] - out[:, 1] < min_size)
    out[degenerate] = boxes[degenerate, :4]
    return out


def draw_box_noise(
    rng: np.random.Generator,
    sizes: np.ndarray,
    spec: NoiseSpec | float,
    *legacy: float,
    **legacy_keywords: Any,
) -> np.ndarray:
    """Draw the offsets of every box: the one place noise is drawn.

    Args:
        rng: the only source of randomness (the model's draw first, then the choice of
            boxes when ``spec.ratio < 1``).
        sizes: ``float64[N, 2]`` clean ``(w, h)``.
        spec: the noise (its model, ``eta_w``, ``eta_h`` and ``ratio`` are used).
        *legacy: the deprecated call ``draw_box_noise(rng, sizes, eta_w, eta_h,
            noise_model=..., ratio=...)``, still taken with a ``FutureWarning``.
        **legacy_keywords: ``noise_model`` and ``ratio`` of that call.

    Returns:
        ``float64[N, 4]`` offsets ``(d_cx, d_cy, d_w, d_h)``; zero rows mean "unchanged".

    >>> deltas = draw_box_noise(np.random.default_rng(0), np.array([[10.0, 20.0]]),
    ...                         NoiseSpec(eta=0.1, eta_h=0.0))
    >>> bool(abs(deltas[0, 0]) <= 1.0 and abs(deltas[0, 2]) <= 1.0), bool(deltas[0, 1] == 0)
    (True, True)
    """
    if not isinstance(spec, NoiseSpec):
        spec = _legacy_spec(spec, *legacy, **legacy_keywords)
    n = sizes.shape[0]
    eta_w, eta_h = spec.axis_etas
    model = get_noise_model(spec.noise_model)
    deltas = np.asarray(model(rng, sizes, eta_w, eta_h), dtype=np.float64)
    if deltas.shape != (n, 4):
        raise ValueError(
            f"Expected noise model {spec.noise_model!r} to return shape ({n}, 4) but got "
            f"{deltas.shape}"
        )
    if spec.ratio < 1.0:
        chosen = np.zeros(n, dtype=bool)
        chosen[rng.choice(n, size=int(round(spec.ratio * n)), replace=False)] = True
        deltas[~chosen] = 0.0
    return deltas


def _legacy_spec(
    eta_w: float, eta_h: float, *, noise_model: str = "uniform", ratio: float = 1.0
) -> NoiseSpec:
    """The spec of the old call ``draw_box_noise(rng, sizes, eta_w, eta_h, ...)``."""
    warnings.warn(
        "draw_box_noise(rng, sizes, eta_w, eta_h, ...) is deprecated and will be removed in "
        "the next release; use draw_box_noise(rng, sizes, NoiseSpec(...))",
        FutureWarning,
        stacklevel=3,
    )
    return NoiseSpec(noise_model=noise_model, eta=eta_w, eta_w=eta_w, eta_h=eta_h, ratio=ratio)


def _check_boxes_fit(
    arr: np.ndarray, xyxy: np.ndarray, sizes: np.ndarray, min_size: float, box_format: str
) -> None:
    """Refuse boxes the noise of eq. 5 is not defined for (empty, inverted, outside)."""
    empty = (xyxy[:, 2] <= xyxy[:, 0]) | (xyxy[:, 3] <= xyxy[:, 1])
    if empty.any():
        k = int(np.flatnonzero(empty)[0])
        raise NoisyboxError(
            f"Expected boxes with x2 > x1 and y2 > y1 but got {arr[k, :4].tolist()} "
            f"({box_format}) at row {k}"
        )
    tol = BOX_TOLERANCE
    outside = (
        (xyxy[:, 0] < -tol)
        | (xyxy[:, 1] < -tol)
        | (xyxy[:, 2] > sizes[:, 0] + tol)
        | (xyxy[:, 3] > sizes[:, 1] + tol)
    )
    if outside.any():
        k = int(np.flatnonzero(outside)[0])
        raise NoisyboxError(
            f"Expected boxes inside their image (within {tol:g} px) but got "
            f"{arr[k, :4].tolist()} ({box_format}) in a {sizes[k, 0]:g}x{sizes[k, 1]:g} image "
            f"at row {k}"
        )
    small = sizes.min(axis=1) < min_size
    if small.any():
        k = int(np.flatnonzero(small)[0])
        raise NoisyboxError(
            f"Expected min_size at most the image side but got {min_size:g} for a "
            f"{sizes[k, 0]:g}x{sizes[k, 1]:g} image at row {k}"
        )


@renamed_keywords(model="noise_model")
@takes_noise_spec
def perturb_boxes(
    boxes: np.ndarray,
    image_sizes: np.ndarray,
    *,
    eta: float = 0.2,
    eta_w: float | None = None,
    eta_h: float | None = None,
    noise_model: str = "uniform",
    box_format: str = "xyxy",
    boundary: str = "shift",
    ratio: float = 1.0,
    min_size: float = 1.0,
    rng: np.random.Generator | int | None = None,
    spec: NoiseSpec | None = None,
) -> np.ndarray:
    """Perturb boxes with the noise of the Alpha-IoU paper.

    In centre/size form every box gets independent offsets drawn by the noise model ``noise_model``
    from its clean size (``uniform``: ``cx, w += U(-eta_w w, eta_w w)``,
    ``cy, h += U(-eta_h h, eta_h h)``), then the boundary conditions of eq. 5 are enforced
    (see :func:`apply_box_noise`). Working in pixels is equivalent to the paper's normalised
    coordinates; ``min_size`` is the pixel floor of eq. 5's ``0 < w``.

    Its length is the docstring (every parameter of the paper's noise and the boundary
    rules); the code checks the arguments, draws once and applies the draw.

    Args:
        boxes: ``float[N, 4+]`` boxes in ``box_format``, absolute pixels; extra columns are
            copied unchanged.
        image_sizes: ``float[N, 2]`` or ``float[2]`` image ``(width, height)``.
        eta: noise rate of both axes, in ``[0, 1)``.
        eta_w: horizontal rate overriding ``eta``.
        eta_h: vertical rate overriding ``eta``.
        noise_model: a name from :func:`list_noise_models` (``model`` is its deprecated
            alias).
        box_format: ``"xyxy"``, ``"xywh"`` or ``"cxcywh"``.
        boundary: ``"shift"`` (paper, default) or ``"truncate"``.
        ratio: share of boxes perturbed, in ``[0, 1]``; exactly ``round(ratio * N)`` boxes
            chosen at random, the rest returned unchanged.
        min_size: minimum noisy width and height in pixels.
        rng: a ``numpy.random.Generator`` or an integer seed; ``None`` means seed ``0`` so
            that results are always reproducible.
        spec: the noise as one :class:`~noisybox.noise.NoiseSpec`, instead of ``eta``,
            ``eta_w``, ``eta_h``, ``noise_model``, ``boundary``, ``ratio`` and
            ``min_size`` (giving both is a ``TypeError``; its annotation-level rates do
            not apply to boxes alone).

    Returns:
        ``float[N, 4+]`` noisy boxes in ``box_format``: the dtype of a floating-point
        input, ``float64`` for integer input (noisy corners are fractional; rounding them
        back would change the noise). Boxes whose offsets are all zero (``eta = 0``, or
        not chosen by ``ratio``) are returned bit for bit unchanged (as floats).

    Raises:
        NoisyboxError: for a rate outside ``[0, 1)``, ``ratio`` outside ``[0, 1]``, a
            ``min_size`` that is not a finite positive number or exceeds an image side,
            non-finite boxes or image sizes, boxes that are empty or inverted
            (``x2 <= x1`` or ``y2 <= y1``) or lie outside their image by more than
            :data:`BOX_TOLERANCE` pixels, or bad shapes.
        ValueError: for an unknown ``noise_model``, ``box_format`` or ``boundary``.
        TypeError: for ``spec`` together with a noise keyword.

    Reference:
        Alpha-IoU (He et al., NeurIPS 2021), §4.3 and eq. 5.

    >>> boxes = np.array([[10.0, 10.0, 50.0, 30.0]])
    >>> noisy = perturb_boxes(boxes, (100, 100), eta=0.2, rng=0)
    >>> bool(np.all(np.abs(noisy - boxes) <= 0.2 * 40 * 1.5))
    True
    >>> perturb_boxes(boxes, (100, 100), eta=0.0)
    array([[10., 10., 50., 30.]])
    >>> perturb_boxes(boxes.astype(np.float32), (100, 100), eta=0.2).dtype, perturb_boxes(
    ...     boxes.astype(np.int64), (100, 100), eta=0.2).dtype
    (dtype('float32'), dtype('float64'))
    >>> bool(np.array_equal(perturb_boxes(boxes, (100, 100), spec=NoiseSpec(eta=0.2), rng=3),
    ...                     perturb_boxes(boxes, (100, 100), eta=0.2, rng=3)))
    True
    """
    spec = require_spec(spec, "perturb_boxes")  # built from the keywords by @takes_noise_spec
    check_box_format(box_format)
    arr, sizes, xyxy = _checked_boxes(boxes, image_sizes, box_format, spec.min_size)
    generator = (
        rng
        if isinstance(rng, np.random.Generator)
        else np.random.default_rng(0 if rng is None else rng)
    )
    deltas = draw_box_noise(generator, xyxy[:, 2:4] - xyxy[:, 0:2], spec)
    moved = np.any(deltas != 0.0, axis=1)

    out = arr.copy()
    if moved.all():
        noisy = apply_box_noise(xyxy, sizes, deltas, boundary=spec.boundary, min_size=spec.min_size)
        out[:, :4] = box_convert(noisy, "xyxy", box_format)
    elif moved.any():
        noisy = apply_box_noise(
            xyxy[moved],
            sizes[moved],
            deltas[moved],
            boundary=spec.boundary,
            min_size=spec.min_size,
        )
        out[moved, :4] = box_convert(noisy, "xyxy", box_format)
    return out


def _checked_boxes(
    boxes: np.ndarray, image_sizes: np.ndarray, box_format: str, min_size: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(boxes, float64[N, 2] image sizes, float64[N, 4] xyxy)`` of :func:`perturb_boxes`'s
    input, checked.

    Raises:
        NoisyboxError: bad shapes, non-finite values, or boxes refused by
            :func:`_check_boxes_fit`.
    """
    try:
        arr = _as_boxes(boxes)
    except ValueError as exc:
        raise NoisyboxError(str(exc)) from None
    n = arr.shape[0]
    sizes = np.asarray(image_sizes, dtype=np.float64)
    if sizes.shape == (2,):
        sizes = np.broadcast_to(sizes, (n, 2))
    if sizes.shape != (n, 2):
        raise NoisyboxError(f"Expected image_sizes of shape ({n}, 2) or (2,) but got {sizes.shape}")
    if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
        raise NoisyboxError("Expected finite positive image sizes but got other values")
    xyxy = box_convert(arr[:, :4].astype(np.float64, copy=False), box_format, "xyxy")
    if not np.all(np.isfinite(xyxy)):
        bad = int(np.flatnonzero(~np.all(np.isfinite(xyxy), axis=1))[0])
        raise NoisyboxError(f"Expected finite boxes but got {arr[bad, :4].tolist()} at row {bad}")
    _check_boxes_fit(arr, xyxy, sizes, min_size, box_format)
    return arr, sizes, xyxy
