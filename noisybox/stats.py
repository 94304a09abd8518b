"""How noisy is a noisy annotation set: IoU of every noisy box with its clean version."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from noisybox.boxes import elementwise_box_iou
from noisybox.errors import NoisyboxError
from noisybox.formats.annotations import Annotations

__all__ = ["PAPER_STATISTIC", "QUANTILES", "IoUStats", "compare_annotations", "iou_stats"]

QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)

PAPER_STATISTIC = "mean_image_iou"
"""The :class:`IoUStats` figure the Alpha-IoU paper reports for its noise (§4.3: 0.833 /
0.710 / 0.613 at eta 0.1 / 0.2 / 0.3): the mean over each image's boxes, then over images,
as its ``average_iou.py`` computes it. On VOC the per-box mean is lower: crowded images hold
small boxes that seldom touch the border, where eq. 5's clamp raises the IoU, and they weigh
once per box instead of once per image."""


@dataclasses.dataclass
class IoUStats:
    """IoU figures of noisy boxes against their clean versions.

    Attributes:
        mean_image_iou: mean over the boxes of each image, then over images: the paper's
            statistic (:data:`PAPER_STATISTIC`).
        mean_iou: mean over boxes.
        num_boxes: boxes compared.
        num_images: images with at least one compared box.
        num_excluded: boxes left out (crowd boxes, or invalid ones skipped).
        quantiles: ``{"p05": ..., "p25": ..., "p50": ..., "p75": ..., "p95": ...}``.
        share_below_05: share of boxes with IoU below 0.5.
        per_category: category name -> ``{"category_id", "num_boxes", "mean_iou"}``.
    """

    mean_image_iou: float
    mean_iou: float
    num_boxes: int
    num_images: int
    num_excluded: int
    quantiles: dict[str, float]
    share_below_05: float
    per_category: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (``None`` where a figure is undefined because nothing was compared),
        led by ``"paper_statistic": "mean_image_iou"`` naming the paper's figure, then the
        per-image and per-box means.

        >>> s = iou_stats(np.array([[0.0, 0, 2, 2]]), np.array([[0.0, 0, 2, 1]]), np.array([0]),
        ...               np.array([1]))
        >>> list(s.to_dict())[:3]
        ['paper_statistic', 'mean_image_iou', 'mean_iou']
        """

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items()}
            return value

        return {"paper_statistic": PAPER_STATISTIC, **clean(dataclasses.asdict(self))}

    def format_text(self) -> str:
        """A short human-readable summary, led by the paper's statistic.

        >>> s = iou_stats(np.array([[0.0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 2, 2]]),
        ...               np.array([[0.0, 0, 2, 1], [0, 0, 4, 4], [0, 0, 2, 2]]),
        ...               np.array([0, 0, 1]), np.array([1, 1, 1]))
        >>> print("\\n".join(s.format_text().splitlines()[:2]))
        mean IoU per image: 0.8750  (the paper's statistic, Alpha-IoU §4.3)
        mean IoU per box:   0.8333
        """

        def f(x: float) -> str:
            return "n/a" if not math.isfinite(x) else f"{x:.4f}"

        q = "  ".join(f"{k}={f(v)}" for k, v in self.quantiles.items())
        lines = [
            f"mean IoU per image: {f(self.mean_image_iou)}  (the paper's statistic, Alpha-IoU §4.3)",
            f"mean IoU per box:   {f(self.mean_iou)}",
            f"boxes compared: {self.num_boxes} in {self.num_images} images ({self.num_excluded} excluded)",
            f"quantiles: {q}",
            f"share IoU < 0.5: {f(self.share_below_05)}",
            "per category (mean IoU, boxes):",
        ]
        for name, row in self.per_category.items():
            lines.append(f"  {name}: {f(row['mean_iou'])} ({row['num_boxes']})")
        return "\n".join(lines)


def iou_stats(
    clean_boxes: np.ndarray,
    noisy_boxes: np.ndarray,
    box_image_index: np.ndarray,
    categories: np.ndarray,
    category_names: dict[int, str] | None = None,
    *,
    include: np.ndarray | None = None,
) -> IoUStats:
    """IoU figures of ``noisy_boxes[i]`` against ``clean_boxes[i]``.

    Args:
        clean_boxes: ``float[N, 4]`` absolute ``xyxy``.
        noisy_boxes: ``float[N, 4]`` absolute ``xyxy``.
        box_image_index: ``int[N]`` image row of every box.
        categories: ``int[N]`` category id of every box.
        category_names: id -> name for the per-category table.
        include: ``bool[N]`` boxes to compare (default all).

    Returns:
        :class:`IoUStats`.

    >>> s = iou_stats(np.array([[0.0, 0, 2, 2], [0, 0, 2, 2]]), np.array([[0.0, 0, 2, 1], [0, 0, 2, 2]]),
    ...               np.array([0, 1]), np.array([1, 1]), {1: "cat"})
    >>> s.mean_iou, s.share_below_05, s.per_category["cat"]["num_boxes"]
    (0.75, 0.0, 2)
    """
    n = clean_boxes.shape[0]
    keep = np.ones(n, dtype=bool) if include is None else np.asarray(include, dtype=bool)
    iou = elementwise_box_iou(clean_boxes[keep], noisy_boxes[keep])
    img = np.asarray(box_image_index)[keep]
    cats = np.asarray(categories)[keep]
    names = category_names or {}
    nan = float("nan")
    if iou.size == 0:
        return IoUStats(
            mean_image_iou=nan,
            mean_iou=nan,
            num_boxes=0,
            num_images=0,
            num_excluded=int(n - keep.sum()),
            quantiles={f"p{int(q * 100):02d}": nan for q in QUANTILES},
            share_below_05=nan,
            per_category={},
        )
    _, img_inv = np.unique(img, return_inverse=True)
    per_image = np.bincount(img_inv, weights=iou) / np.bincount(img_inv)
    qs = np.quantile(iou, QUANTILES)
    per_category: dict[str, dict[str, Any]] = {}
    uniq, cat_inv = np.unique(cats, return_inverse=True)
    sums = np.bincount(cat_inv, weights=iou)
    counts = np.bincount(cat_inv)
    for k, cid in enumerate(uniq.tolist()):
        per_category[names.get(int(cid), str(cid))] = {
            "category_id": int(cid),
            "num_boxes": int(counts[k]),
            "mean_iou": float(sums[k] / counts[k]),
        }
    return IoUStats(
        mean_image_iou=float(per_image.mean()),
        mean_iou=float(iou.mean()),
        num_boxes=int(iou.size),
        num_images=int(per_image.size),
        num_excluded=int(n - keep.sum()),
        quantiles={
            f"p{int(round(q * 100)):02d}": float(v) for q, v in zip(QUANTILES, qs, strict=True)
        },
        share_below_05=float(np.mean(iou < 0.5)),
        per_category=per_category,
    )


def compare_annotations(
    clean: Annotations, noisy: Annotations, *, include: np.ndarray | None = None
) -> IoUStats:
    """IoU figures of every box of ``noisy`` against the box with the same record id in
    ``clean``. Crowd boxes of ``clean`` are left out.

    Args:
        clean: the reference annotations.
        noisy: annotations holding every record id of ``clean``.
        include: ``bool[N]`` over ``clean``'s boxes, further restricting the comparison.

    Raises:
        NoisyboxError: if a record id of ``clean`` is missing from ``noisy``.
    """
    if list(clean.record_ids) == list(noisy.record_ids):
        noisy_boxes = noisy.boxes
    else:
        row_of = {rid: k for k, rid in enumerate(noisy.record_ids)}
        rows = []
        for rid in clean.record_ids:
            if rid not in row_of:
                raise NoisyboxError(
                    f"Expected record {rid!r} of {clean.source} in {noisy.source} but it is missing"
                )
            rows.append(row_of[rid])
        noisy_boxes = noisy.boxes[np.array(rows, dtype=np.int64)].reshape(-1, 4)
    keep = ~np.asarray(clean.iscrowd, dtype=bool)
    if include is not None:
        keep &= np.asarray(include, dtype=bool)
    return iou_stats(
        clean.boxes,
        noisy_boxes,
        clean.box_image_index,
        clean.categories,
        clean.category_names,
        include=keep,
    )
