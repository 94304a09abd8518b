"""How noisy is a noisy annotation set: IoU of every noisy box with its clean version."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from noisybox.boxes import elementwise_box_iou
from noisybox.errors import NoisyboxError
from noisybox.formats.annotations import Annotations
from noisybox.formats.edits import record_ids_after_drop

__all__ = [
    "PAPER_STATISTIC",
    "QUANTILES",
    "IoUStats",
    "align_boxes",
    "compare_annotations",
    "iou_stats",
    "match_records",
]

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
        num_invalid: boxes left out because the clean or the noisy box is not a finite box
            of positive size (an IoU of 0 for them would read as very noisy boxes).
        num_dropped: clean records missing from the noisy set (annotation-level noise).
        num_added: noisy records with no clean record (extra, bogus boxes).
        num_relabelled: matched records whose category changed. The IoU figures are over
            the matched records.
        relocated: for a set with relocated records (``corrupt --relocate``, UNA's
            localization noise: a new box, not a jittered one), their figures apart:
            ``{"num_boxes", "mean_iou", "mean_image_iou", "share_below_05"}``; the figures
            above are then over the other records (relocated ones count in
            ``num_excluded``). ``None`` (and absent from :meth:`to_dict`) otherwise.
    """

    mean_image_iou: float
    mean_iou: float
    num_boxes: int
    num_images: int
    num_excluded: int
    quantiles: dict[str, float]
    share_below_05: float
    per_category: dict[str, dict[str, Any]]
    num_invalid: int = 0
    num_dropped: int = 0
    num_added: int = 0
    num_relabelled: int = 0
    relocated: dict[str, Any] | None = None

    def with_record_counts(self, counts: dict[str, int]) -> IoUStats:
        """A copy with ``num_dropped``, ``num_added`` and ``num_relabelled`` from the
        ``dropped``, ``added`` and ``relabelled`` entries of ``counts`` (0 if absent)."""
        return dataclasses.replace(
            self,
            num_dropped=int(counts.get("dropped", 0)),
            num_added=int(counts.get("added", 0)),
            num_relabelled=int(counts.get("relabelled", 0)),
        )

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

        out = {"paper_statistic": PAPER_STATISTIC, **clean(dataclasses.asdict(self))}
        if out["relocated"] is None:  # as before relocation existed
            del out["relocated"]
        return out

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
            *([f"invalid boxes (left out): {self.num_invalid}"] if self.num_invalid else []),
            *(
                [
                    f"records dropped: {self.num_dropped}  added: {self.num_added}  "
                    f"relabelled: {self.num_relabelled}  (IoU over the matched ones)"
                ]
                if self.num_dropped or self.num_added or self.num_relabelled
                else []
            ),
            *(
                [
                    f"records relocated: {self.relocated['num_boxes']}  mean IoU "
                    f"{f(self.relocated['mean_iou'])}  (left out of the figures above)"
                ]
                if self.relocated is not None
                else []
            ),
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
        include: ``bool[N]`` boxes to compare (default all). Of these, pairs where either
            box is not finite or has no positive width and height are left out and counted
            in ``num_invalid``.

    Returns:
        :class:`IoUStats`.

    >>> s = iou_stats(np.array([[0.0, 0, 2, 2], [0, 0, 2, 2]]), np.array([[0.0, 0, 2, 1], [0, 0, 2, 2]]),
    ...               np.array([0, 1]), np.array([1, 1]), {1: "cat"})
    >>> s.mean_iou, s.share_below_05, s.per_category["cat"]["num_boxes"]
    (0.75, 0.0, 2)
    """
    n = clean_boxes.shape[0]
    keep = np.ones(n, dtype=bool) if include is None else np.asarray(include, dtype=bool)
    valid = _valid_boxes(clean_boxes) & _valid_boxes(noisy_boxes)
    num_invalid = int((keep & ~valid).sum())
    keep = keep & valid
    excluded = int(n - keep.sum()) - num_invalid
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
            num_excluded=excluded,
            quantiles={f"p{int(q * 100):02d}": nan for q in QUANTILES},
            share_below_05=nan,
            per_category={},
            num_invalid=num_invalid,
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
        num_excluded=excluded,
        quantiles={
            f"p{int(round(q * 100)):02d}": float(v) for q, v in zip(QUANTILES, qs, strict=True)
        },
        share_below_05=float(np.mean(iou < 0.5)),
        per_category=per_category,
        num_invalid=num_invalid,
    )


def _valid_boxes(boxes: np.ndarray) -> np.ndarray:
    """``bool[N]`` finite boxes of positive width and height."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    with np.errstate(invalid="ignore"):
        return (
            np.all(np.isfinite(boxes), axis=1)
            & (boxes[:, 2] > boxes[:, 0])
            & (boxes[:, 3] > boxes[:, 1])
        )


def _duplicate(ids: list[Any]) -> tuple[Any, int] | None:
    seen: dict[Any, int] = {}
    for rid in ids:
        seen[rid] = seen.get(rid, 0) + 1
    for rid, count in seen.items():
        if count > 1:
            return rid, count
    return None


def _check_matchable(clean: Annotations, noisy: Annotations) -> None:
    """Refuse two sets whose boxes cannot be matched by record id: other images, or a
    record id that repeats in either set."""
    _check_same_images(clean, noisy)
    for ann in (clean, noisy):
        dup = _duplicate(list(ann.record_ids))
        if dup is not None:
            raise NoisyboxError(
                f"Expected every record id once in {ann.source} but got {dup[0]!r} {dup[1]} "
                "times; boxes cannot be matched by id"
            )


def align_boxes(clean: Annotations, noisy: Annotations) -> np.ndarray:
    """The boxes of ``noisy`` in the row order of ``clean``, matched by record id.

    Both sets must describe the same images (the same ids with the same sizes) and the
    same records (every record id once in each, on the same image with the same category):
    otherwise a figure computed from the match would be silently wrong. ``noisy`` made
    from ``clean`` in memory (:meth:`Annotations.with_boxes`, as ``corrupt`` and the
    on-the-fly previews do) pairs row by row.

    Args:
        clean: the reference annotations.
        noisy: a noisy copy of them (e.g. a file written by ``noisybox corrupt``).

    Returns:
        ``float64[N, 4]`` with ``N = clean.num_boxes``.

    Raises:
        NoisyboxError: images that differ, a record id that repeats in either set or is
            missing from ``noisy``, or a record on another image or of another category.
    """
    boxes = np.asarray(noisy.boxes, dtype=np.float64).reshape(-1, 4)
    if noisy.record_ids is clean.record_ids and noisy.image_ids is clean.image_ids:
        return boxes
    _check_matchable(clean, noisy)
    row_of = {rid: k for k, rid in enumerate(noisy.record_ids)}
    rows = np.empty(clean.num_boxes, dtype=np.int64)
    for k, rid in enumerate(clean.record_ids):
        if rid not in row_of:
            raise NoisyboxError(
                f"Expected record {rid!r} of {clean.source} in {noisy.source} but it is missing"
            )
        rows[k] = row_of[rid]
    if len(rows) != noisy.num_boxes:
        extra = sorted(set(noisy.record_ids) - set(clean.record_ids), key=str)[0]
        raise NoisyboxError(
            f"Expected the records of {clean.source} in {noisy.source} but got the extra "
            f"record {extra!r}"
        )
    clean_image = np.asarray(clean.image_ids)[clean.box_image_index]
    noisy_image = np.asarray(noisy.image_ids)[noisy.box_image_index][rows]
    noisy_category = np.asarray(noisy.categories)[rows]
    differ = (clean_image != noisy_image) | (np.asarray(clean.categories) != noisy_category)
    if differ.any():
        k = int(np.flatnonzero(differ)[0])
        raise NoisyboxError(
            f"Expected record {clean.record_ids[k]!r} on the same image and category in both "
            f"files but got image {clean_image[k]}, category {clean.categories[k]} in "
            f"{clean.source} and image {noisy_image[k]}, category {noisy_category[k]} in "
            f"{noisy.source}"
        )
    return boxes[rows].reshape(-1, 4)


def _check_same_images(clean: Annotations, noisy: Annotations) -> None:
    a = dict(zip(np.asarray(clean.image_ids).tolist(), clean.image_sizes.tolist(), strict=True))
    b = dict(zip(np.asarray(noisy.image_ids).tolist(), noisy.image_sizes.tolist(), strict=True))
    for image_id in sorted(set(a) | set(b)):
        if a.get(image_id) != b.get(image_id):

            def size(wh: list[float] | None) -> str:
                return "absent" if wh is None else f"{wh[0]:g}x{wh[1]:g}"

            raise NoisyboxError(
                f"Expected the same images in both files but got image {image_id} "
                f"{size(a.get(image_id))} in {clean.source} and {size(b.get(image_id))} in "
                f"{noisy.source}"
            )


def match_records(
    clean: Annotations, noisy: Annotations, *, dropped: list[Any] | None = None
) -> tuple[np.ndarray, dict[str, int]]:
    """Match the records of a noisy set that may drop, add and relabel records.

    COCO ids and YOLO ``file:line`` ids survive dropped records; VOC ids number the
    objects of a file, so pass ``dropped``, the clean ids of the dropped records
    (``annotation_noise.dropped_records`` of the manifest), to match VOC files
    (:func:`noisybox.formats.edits.record_ids_after_drop`).

    Returns:
        ``(rows, counts)``: ``int64[N]`` the row of ``noisy`` holding each record of
        ``clean`` (``-1``: dropped), and ``dropped``, ``added``, ``relabelled``.

    Raises:
        NoisyboxError: images that differ, a record id that repeats in either set, or a
            record on another image.
    """
    _check_matchable(clean, noisy)
    row_of = {rid: k for k, rid in enumerate(noisy.record_ids)}
    ids = record_ids_after_drop(clean, dropped)
    rows = np.array([row_of.get(rid, -1) if rid is not None else -1 for rid in ids], dtype=np.int64)
    matched = rows >= 0
    clean_image = np.asarray(clean.image_ids)[clean.box_image_index]
    noisy_image = np.asarray(noisy.image_ids)[noisy.box_image_index]
    moved = matched & (clean_image != noisy_image[np.maximum(rows, 0)])
    if moved.any():
        k = int(np.flatnonzero(moved)[0])
        raise NoisyboxError(
            f"Expected record {clean.record_ids[k]!r} on the same image in both files but got "
            f"image {clean_image[k]} in {clean.source} and {noisy_image[rows[k]]} in {noisy.source}"
        )
    relabelled = matched & (
        np.asarray(clean.categories) != np.asarray(noisy.categories)[np.maximum(rows, 0)]
    )
    counts = {
        "dropped": int((~matched).sum()),
        "added": int(noisy.num_boxes - matched.sum()),
        "relabelled": int(relabelled.sum()),
    }
    return rows, counts


def compare_annotations(
    clean: Annotations,
    noisy: Annotations,
    *,
    include: np.ndarray | None = None,
    partial: bool = False,
    dropped: list[Any] | None = None,
    relocated: list[Any] | None = None,
) -> IoUStats:
    """IoU figures of every box of ``noisy`` against the box with the same record id in
    ``clean`` (matched by :func:`align_boxes`). Crowd boxes of ``clean`` are left out, and
    so are invalid boxes (counted in ``num_invalid``).

    Args:
        clean: the reference annotations.
        noisy: a noisy copy of them: the same images and records.
        include: ``bool[N]`` over ``clean``'s boxes, further restricting the comparison.
        partial: ``noisy`` may drop, add and relabel records (annotation-level noise): the
            figures are over the matched records, and ``num_dropped``, ``num_added`` and
            ``num_relabelled`` count the others (:func:`match_records`).
        dropped: with ``partial``, the clean ids of the dropped records (VOC needs them).
        relocated: the clean ids of the relocated records (``annotation_noise.
            relocated_records`` of the manifest): their figures go to ``relocated`` and
            the others' to the rest (``None``: no record is told apart).

    Raises:
        NoisyboxError: if the two sets do not describe the same images and records (see
            :func:`align_boxes`; with ``partial``, :func:`match_records`).
    """
    keep = ~np.asarray(clean.iscrowd, dtype=bool)
    if include is not None:
        keep &= np.asarray(include, dtype=bool)
    counts: dict[str, int] | None = None
    if partial:
        rows, counts = match_records(clean, noisy, dropped=dropped)
        boxes = np.asarray(noisy.boxes, dtype=np.float64).reshape(-1, 4)
        noisy_boxes = np.where((rows >= 0)[:, None], boxes[np.maximum(rows, 0)], np.nan)
        noisy_boxes = noisy_boxes.reshape(-1, 4)
        keep &= rows >= 0
    else:
        noisy_boxes = align_boxes(clean, noisy)
    moved = np.zeros(clean.num_boxes, dtype=bool)
    if relocated is not None:
        ids = set(relocated)
        moved = np.array([rid in ids for rid in clean.record_ids], dtype=bool)

    def figures(include: np.ndarray) -> IoUStats:
        return iou_stats(
            clean.boxes,
            noisy_boxes,
            clean.box_image_index,
            clean.categories,
            clean.category_names,
            include=include,
        )

    stats = figures(keep & ~moved)
    if relocated is not None:
        apart = figures(keep & moved)
        summary = {
            "num_boxes": apart.num_boxes,
            "mean_iou": apart.mean_iou,
            "mean_image_iou": apart.mean_image_iou,
            "share_below_05": apart.share_below_05,
        }
        stats = dataclasses.replace(stats, relocated=summary)
    return stats if counts is None else stats.with_record_counts(counts)
