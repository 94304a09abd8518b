"""OA-MIL's seeded generator, number for number: the boxes of its published noisy files.

OA-MIL (Liu et al., ECCV 2022) made its noisy VOC2007 and COCO training sets with numpy's
legacy global generator seeded with :data:`OAMIL_SEED` (``utils/gen_noisy_voc.py``,
``utils/gen_noisy_coco.py``). :func:`oamil_legacy_boxes` computes what those scripts
compute for the same clean boxes, drawing from the ``numpy.random.RandomState`` passed in
(``np.random.seed(45)`` seeds a global ``RandomState``, so ``RandomState(45)`` continues the
same stream). The registered ``oamil`` model is the same noise from a
``numpy.random.Generator``; :mod:`noisybox.corrupt.oamil` applies this one to a VOC folder.
"""

from __future__ import annotations

import numpy as np

__all__ = ["OAMIL_SEED", "oamil_legacy_boxes"]

OAMIL_SEED = 45
"""The seed OA-MIL's scripts give ``np.random.seed`` before the first box."""


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
