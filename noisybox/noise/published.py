"""Box-noise models of published noisy-box studies, by name.

Each is a noise model of :mod:`noisybox.noise.registry`: it draws the offsets
``(d_cx, d_cy, d_w, d_h)`` of every box from its clean ``(w, h)``; :func:`~noisybox.noise.
perturb_boxes` applies them with the chosen boundary. The sources clip noisy boxes at the
image border rather than moving them inside, so ``boundary="truncate"`` is the setting that
matches them (``"shift"``, the default, is the Alpha-IoU paper's eq. 5).

========================  ==============================================  =========================
name                      source                                          its "noise level"
========================  ==============================================  =========================
``oamil``                 OA-MIL (Liu et al., ECCV 2022)                  ``r`` = ``eta``
``gaussian-corner``       Narrowing the gap (Wang et al., TIP 2022)       ``gamma`` = ``eta``
``edge-jitter``           LocalizationLabelNoise (Bär et al., CVPRW 2023)  ``p`` % = ``100 * eta``
========================  ==============================================  =========================

OA-MIL's noise has a second draw here, :func:`oamil_legacy_boxes`: the numbers of its
published noisy files, from numpy's legacy ``RandomState`` seeded with :data:`OAMIL_SEED` in
NumPy 1.x's arithmetic (the scripts' ``np.random.seed(45)`` seeds a global ``RandomState``,
so ``RandomState(45)`` continues the same stream). :mod:`noisybox.corrupt.oamil` applies it
to a VOC folder or a COCO file and writes what the source writes.
"""

from __future__ import annotations

import numpy as np

from noisybox.noise.registry import register_noise_model

__all__ = [
    "OAMIL_SEED",
    "edge_jitter_noise",
    "gaussian_corner_noise",
    "oamil_legacy_boxes",
    "oamil_noise",
]

_MAX_REDRAWS = 100

OAMIL_SEED = 45
"""The seed OA-MIL's scripts give ``np.random.seed`` before the first box."""


def _corner_deltas(corners: np.ndarray) -> np.ndarray:
    """Corner offsets ``(d_x1, d_y1, d_x2, d_y2)`` as centre/size offsets."""
    return np.stack(
        [
            (corners[:, 0] + corners[:, 2]) / 2,
            (corners[:, 1] + corners[:, 3]) / 2,
            corners[:, 2] - corners[:, 0],
            corners[:, 3] - corners[:, 1],
        ],
        axis=1,
    )


@register_noise_model("oamil")
def oamil_noise(
    rng: np.random.Generator, sizes: np.ndarray, eta_w: float, eta_h: float
) -> np.ndarray:
    """OA-MIL's box noise: the centre moved by ``w U(-r, r)`` and ``h U(-r, r)``, width and
    height scaled by ``1 + U(-r, r)``.

    ``cx' = cx + w u1``, ``cy' = cy + h u2``, ``w' = w (1 + u3)``, ``h' = h (1 + u4)`` with
    ``u1, u3 ~ U(-eta_w, eta_w)`` and ``u2, u4 ~ U(-eta_h, eta_h)``, drawn per box in the
    source's order (x offset, y offset, width scale, height scale). The source's noise level
    ``r`` (``--box_noise_level``, 0.1 ... 0.4 in its tables) is ``eta`` (``eta_w = eta_h = r``).
    In distribution this is the ``uniform`` model; the source then clips the corners to the
    image and keeps the clean box where nothing is left, which is ``boundary="truncate"``.

    Args:
        rng: the only source of randomness; one ``(N, 4)`` draw, row by row.
        sizes: ``float[N, 2]`` clean ``(w, h)``.
        eta_w: ``r`` of the horizontal offset and width scale.
        eta_h: ``r`` of the vertical offset and height scale.

    Returns:
        ``float[N, 4]`` offsets ``(d_cx, d_cy, d_w, d_h)``.

    Reference:
        Liu et al., "Robust Object Detection With Inaccurate Bounding Boxes", ECCV 2022,
        ``utils/gen_noisy_voc.py`` and ``utils/gen_noisy_coco.py`` of its code.

    >>> d = oamil_noise(np.random.default_rng(0), np.array([[10.0, 20.0]]), 0.1, 0.1)
    >>> bool(np.all(np.abs(d) <= [1.0, 2.0, 1.0, 2.0]))
    True
    """
    rates = np.array([eta_w, eta_h, eta_w, eta_h], dtype=np.float64)
    u = rng.uniform(-rates, rates, size=(sizes.shape[0], 4))
    return u * np.concatenate([sizes, sizes], axis=1)


def oamil_legacy_boxes(
    boxes: np.ndarray,
    image_sizes: np.ndarray,
    box_noise_level: float,
    random_state: np.random.RandomState,
) -> np.ndarray:
    """OA-MIL's noisy boxes, exactly as its scripts write them.

    For every box in order, four draws ``u1..u4 ~ U(-r, r)`` (x offset, y offset, width
    scale, height scale), then ``cx' = cx + w u1``, ``cy' = cy + h u2``, ``w' = w (1 + u3)``,
    ``h' = h (1 + u4)``, corners ``max(0, cx' - w'/2)``, ..., ``min(cx' + w'/2, W - 1)``,
    ``min(cy' + h'/2, H - 1)``; a box with ``x2 <= x1`` or ``y2 <= y1`` is replaced by the
    clean one. Arithmetic is NumPy 1.x's, which made the published files: ``w``, ``h`` and
    the corner sums ``x1 + x2`` in float32 (float32 with float32), the rest in float64 (a
    float32 with a Python float); the result float32 as the scripts store it. With whole
    pixel corners (VOC) the float32 steps are exact; with COCO's fractional ones they round.
    ``r = 0`` draws nothing and returns the boxes, as the scripts do.

    Args:
        boxes: ``float[N, 4]`` clean corners in OA-MIL's (mmdetection's) convention: for VOC,
            0-based inclusive pixels ``(xmin - 1, ymin - 1, xmax - 1, ymax - 1)`` of the XML's
            integer values; for COCO ``(x, y, x + w, y + h)`` as float32.
        image_sizes: ``[N, 2]`` ``(width, height)`` of each box's image, as the annotation
            file gives them (whole pixels in VOC and COCO).
        box_noise_level: the scripts' ``--box_noise_level`` ``r``, in ``[0, 1)``.
        random_state: the generator; ``4 N`` uniform numbers are drawn from it.

    Returns:
        ``float32[N, 4]`` noisy corners in the same convention.

    Raises:
        ValueError: for a level outside ``[0, 1)`` or bad shapes.

    Reference:
        Liu et al., "Robust Object Detection With Inaccurate Bounding Boxes", ECCV 2022,
        ``utils/gen_noisy_voc.py`` (``gen_noisy_gt``) and ``utils/gen_noisy_coco.py``
        (``gen_noise_gt``), the same arithmetic.

    >>> rs = np.random.RandomState(OAMIL_SEED)
    >>> oamil_legacy_boxes(np.array([[155.0, 96, 350, 269]]), np.array([[500, 333]]), 0.4, rs)
    array([[248.3329 , 132.10855, 409.23868, 246.60542]], dtype=float32)
    """
    r = float(box_noise_level)
    if not (0.0 <= r < 1.0):
        raise ValueError(f"Expected box_noise_level in [0, 1) but got {box_noise_level}")
    clean = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    sizes = np.asarray(image_sizes).reshape(-1, 2)
    if sizes.shape[0] != clean.shape[0]:
        raise ValueError(
            f"Expected image_sizes of shape ({clean.shape[0]}, 2) but got {sizes.shape}"
        )
    if r == 0.0 or clean.shape[0] == 0:
        return clean.copy()
    # One (N, 4) draw is the same stream, in the same order, as the scripts' 4 N scalar draws.
    u = random_state.uniform(-r, r, size=(clean.shape[0], 4))
    # NumPy 1.x: float32 op float32 stays float32 (w, h and the corner sums round there),
    # a float32 times or divided by a Python number becomes float64
    w = (clean[:, 2] - clean[:, 0]).astype(np.float64)
    h = (clean[:, 3] - clean[:, 1]).astype(np.float64)
    cx = (clean[:, 0] + clean[:, 2]).astype(np.float64) / 2 + w * u[:, 0]
    cy = (clean[:, 1] + clean[:, 3]).astype(np.float64) / 2 + h * u[:, 1]
    b = clean.astype(np.float64)
    half_w = w * (u[:, 2] + 1.0) / 2
    half_h = h * (u[:, 3] + 1.0) / 2
    out = np.stack(
        [
            np.maximum(0.0, cx - half_w),
            np.maximum(0.0, cy - half_h),
            np.minimum(cx + half_w, sizes[:, 0] - 1.0),
            np.minimum(cy + half_h, sizes[:, 1] - 1.0),
        ],
        axis=1,
    )
    invalid = (out[:, 2] <= out[:, 0]) | (out[:, 3] <= out[:, 1])
    out[invalid] = b[invalid]
    return out.astype(np.float32)


@register_noise_model("gaussian-corner")
def gaussian_corner_noise(
    rng: np.random.Generator, sizes: np.ndarray, eta_w: float, eta_h: float
) -> np.ndarray:
    """Gaussian noise on each corner: ``x1, x2 += N(0, (gamma w)^2)``,
    ``y1, y2 += N(0, (gamma h)^2)``.

    The source's noise level ``gamma`` (``--gamma``, 0.05 ... 0.4 in its tables) is ``eta``.
    As in the source, a draw leaving the box narrower or lower than one pixel is drawn again
    (per box, at most 100 times, then the box is left clean), and boxes already below one
    pixel are left clean. The source rounds to COCO's two decimals (the COCO writer does the
    same) and does not clip to the image; noisybox applies its ``boundary`` (use
    ``"truncate"``), so boxes stay inside their image.

    Args:
        rng: the only source of randomness; one ``(N, 4)`` standard normal draw in the
            source's order ``(x1, y1, x2, y2)`` per box, then the redraws.
        sizes: ``float[N, 2]`` clean ``(w, h)``.
        eta_w: ``gamma`` of the x corners.
        eta_h: ``gamma`` of the y corners.

    Returns:
        ``float[N, 4]`` offsets ``(d_cx, d_cy, d_w, d_h)``.

    Reference:
        Wang et al., "Narrowing the Gap: Improved Detector Training with Noisy Location
        Annotations", IEEE TIP 2022, ``tools/add_noise.py`` of its code.
    """
    n = sizes.shape[0]
    scale = np.concatenate([sizes * [eta_w, eta_h], sizes * [eta_w, eta_h]], axis=1)
    corners = rng.standard_normal(size=(n, 4)) * scale
    noisy_ok = sizes.min(axis=1) >= 1.0 if n else np.zeros(0, dtype=bool)

    def too_small(c: np.ndarray, wh: np.ndarray) -> np.ndarray:
        return (wh[:, 0] + c[:, 2] - c[:, 0] < 1.0) | (wh[:, 1] + c[:, 3] - c[:, 1] < 1.0)

    redo = noisy_ok & too_small(corners, sizes)
    for _ in range(_MAX_REDRAWS):
        if not redo.any():
            break
        rows = np.flatnonzero(redo)
        corners[rows] = rng.standard_normal(size=(rows.size, 4)) * scale[rows]
        redo[rows] = too_small(corners[rows], sizes[rows])
    corners[~noisy_ok | redo] = 0.0
    return _corner_deltas(corners)


@register_noise_model("edge-jitter")
def edge_jitter_noise(
    rng: np.random.Generator, sizes: np.ndarray, eta_w: float, eta_h: float
) -> np.ndarray:
    """Per-edge uniform integer jitter: each of ``x1, x2`` moves by an integer in
    ``[-k_w, k_w)``, each of ``y1, y2`` by one in ``[-k_h, k_h)``, where
    ``k_w = max(1, floor(w p / 200))`` and ``k_h = max(1, floor(h p / 200))``.

    The source's noise level is the integer percentage ``p`` (``box_error_percentage``,
    e.g. 10 ... 50), ``p = 100 * eta``: each edge moves by up to ``p/2`` % of the side. The
    bounds follow the source's ``np.random.randint(-k, k)``, whose upper end is exclusive
    (a mean shift of half a pixel), and its one-pixel minimum ``k``; an axis whose rate is
    ``0`` is left alone (the source has one ``p`` and leaves boxes alone at ``p = 0``). The
    source clips each edge inside the image and past the opposite clean edge; noisybox
    applies its ``boundary`` (use ``"truncate"``). ``w`` and ``h`` are noisybox's pixel
    extents, which are the source's ``xmax - xmin + 1`` on VOC files.

    Args:
        rng: the only source of randomness; one ``(N, 4)`` integer draw in the source's
            order ``(x1, y1, x2, y2)`` per box.
        sizes: ``float[N, 2]`` clean ``(w, h)``.
        eta_w: ``p / 100`` of the x edges.
        eta_h: ``p / 100`` of the y edges.

    Returns:
        ``float[N, 4]`` offsets ``(d_cx, d_cy, d_w, d_h)``; whole pixels on every edge.

    Reference:
        Bär et al., "A Novel Benchmark for Refinement of Noisy Localization Labels in
        Autolabeled Datasets for Object Detection", CVPR 2023 Workshops (SAIAD),
        ``generate_noisy_dataset.py`` of its code (LocalizationLabelNoise).

    >>> d = edge_jitter_noise(np.random.default_rng(0), np.array([[100.0, 40.0]]), 0.2, 0.2)
    >>> bool(np.all(d == np.round(d * 2) / 2))
    True
    """
    # Percent rounded to 1e-9 so that eta = 0.3 gives int(w * 30 / 200) as the source does.
    percent = np.round(np.array([eta_w, eta_h], dtype=np.float64) * 100.0, 9)
    k = np.maximum(1.0, np.floor(sizes * percent / 200.0 + 1e-9))
    k4 = np.concatenate([k, k], axis=1).astype(np.int64)
    edges = rng.integers(-k4, k4, size=(sizes.shape[0], 4)).astype(np.float64)
    edges *= np.array([eta_w > 0, eta_h > 0, eta_w > 0, eta_h > 0], dtype=np.float64)
    return _corner_deltas(edges)
