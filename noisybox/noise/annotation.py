"""Annotation-level noise: boxes missing, boxes given a wrong class, extra (bogus) boxes.

These change the annotation set, not the box coordinates, and combine with any box-noise
model. The counts follow UNA (Ryoo et al., arXiv 2312.13822, ``una_inj.py``), whose rates
DN-TOD (arXiv 2401.08056) also uses: for ``N`` boxes and rate ``r``,

* ``missing``: ``int(r N)`` boxes, chosen uniformly, are dropped;
* ``class_flip``: ``int(r N)`` of the boxes left get another class, uniform over the
  other categories (UNA draws from all classes, so some of its flips keep the class);
* ``extra``: ``round(r N / (1 - r))`` bogus boxes are added, so that they are the share
  ``r`` of the boxes of a set that had ``N``; each on an image drawn uniformly (UNA cycles
  through the images in order), with corners two sorted ``U(0, W)`` and two sorted
  ``U(0, H)`` (at least one pixel wide and high, drawn again otherwise) and a class
  uniform over the categories.

Every rate lies in ``[0, 1)``: a missing share of 1 leaves no box, and ``extra = 1`` asks
for infinitely many. Each corruption draws from its own generator (:func:`corruption_rng`),
so changing one rate never changes what another draws, nor the box noise.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import numpy as np

from noisybox.errors import NoisyboxError

__all__ = [
    "ANNOTATION_CORRUPTIONS",
    "AnnotationNoise",
    "check_corruption_rates",
    "corruption_rng",
    "draw_annotation_noise",
]

ANNOTATION_CORRUPTIONS: tuple[str, ...] = ("missing", "class_flip", "extra")
"""Annotation-level corruptions, in the order they are drawn."""

_STREAM = {"missing": 1, "class_flip": 2, "extra": 3}
_MAX_REDRAWS = 100


@dataclasses.dataclass
class AnnotationNoise:
    """What :func:`draw_annotation_noise` drew.

    Attributes:
        keep: ``bool[N]`` boxes kept (``False``: dropped).
        categories: ``int64[N]`` each box's category after the flips.
        relabelled: ``bool[N]`` boxes given another class.
        extra_boxes: ``float64[M, 4]`` bogus boxes, absolute ``xyxy``.
        extra_image_index: ``int64[M]`` image row of each bogus box.
        extra_categories: ``int64[M]`` category of each bogus box.
    """

    keep: np.ndarray
    categories: np.ndarray
    relabelled: np.ndarray
    extra_boxes: np.ndarray
    extra_image_index: np.ndarray
    extra_categories: np.ndarray

    @property
    def counts(self) -> dict[str, int]:
        """``dropped``, ``relabelled`` and ``added``."""
        return {
            "dropped": int((~self.keep).sum()),
            "relabelled": int(self.relabelled.sum()),
            "added": int(self.extra_boxes.shape[0]),
        }

    @property
    def empty(self) -> bool:
        """Whether nothing was dropped, relabelled or added."""
        return not any(self.counts.values())


def check_corruption_rates(rates: Mapping[str, float | None]) -> dict[str, float]:
    """The rates given (``None`` or ``0`` left out), checked.

    Raises:
        NoisyboxError: for an unknown name or a rate outside ``[0, 1)``.

    >>> check_corruption_rates({"missing": 0.1, "extra": None, "class_flip": 0})
    {'missing': 0.1}
    """
    out = {}
    for name, value in rates.items():
        if name not in ANNOTATION_CORRUPTIONS:
            raise NoisyboxError(
                f"Expected a corruption in {list(ANNOTATION_CORRUPTIONS)} but got {name!r}"
            )
        if value is None:
            continue
        try:
            rate = float(value)
        except (TypeError, ValueError):
            raise NoisyboxError(f"Expected {name} a number in [0, 1) but got {value!r}") from None
        if not (math.isfinite(rate) and 0.0 <= rate < 1.0):
            raise NoisyboxError(f"Expected {name} in [0, 1) but got {value}")
        if rate > 0:
            out[name] = rate
    return out


def corruption_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of corruption ``name``: ``numpy.random.default_rng([seed, k])`` with
    ``k`` = 1 (missing), 2 (class_flip), 3 (extra), independent of the box noise's
    ``default_rng(seed)``.

    >>> corruption_rng(0, "missing").integers(100) == np.random.default_rng([0, 1]).integers(100)
    np.True_
    """
    return np.random.default_rng([int(seed), _STREAM[name]])


def draw_annotation_noise(
    num_boxes: int,
    image_sizes: np.ndarray,
    categories: np.ndarray,
    category_ids: np.ndarray,
    *,
    eligible: np.ndarray | None = None,
    missing: float = 0.0,
    class_flip: float = 0.0,
    extra: float = 0.0,
    seed: int = 0,
) -> AnnotationNoise:
    """Draw which boxes are dropped and relabelled, and the bogus boxes to add.

    Its length is the docstring and the three draws, kept in one place so that their order
    (missing, then class_flip on the boxes kept, then extra) is visible.

    Args:
        num_boxes: ``N``.
        image_sizes: ``float[M_img, 2]`` ``(width, height)`` of every image.
        categories: ``int[N]`` category of every box.
        category_ids: the categories a flip or a bogus box may take.
        eligible: ``bool[N]`` boxes that may be dropped or relabelled (default all; COCO
            crowd boxes are not). ``N`` in the counts is their number.
        missing: share of boxes dropped, in ``[0, 1)``.
        class_flip: share of boxes given another class, in ``[0, 1)``.
        extra: share of bogus boxes in the result, in ``[0, 1)``.
        seed: seed of the corruptions' generators (:func:`corruption_rng`).

    Returns:
        :class:`AnnotationNoise`.

    Raises:
        NoisyboxError: for a rate outside ``[0, 1)``, fewer than two categories for
            ``class_flip``, no category or no image for ``extra``.

    Reference:
        UNA (Ryoo et al., arXiv 2312.13822), ``una_inj.py``.

    >>> noise = draw_annotation_noise(10, np.array([[100.0, 50.0]]), np.zeros(10, int),
    ...                               np.array([0, 1]), missing=0.2, class_flip=0.3, extra=0.5)
    >>> noise.counts
    {'dropped': 2, 'relabelled': 3, 'added': 10}
    """
    rates = check_corruption_rates({"missing": missing, "class_flip": class_flip, "extra": extra})
    cats = np.asarray(categories, dtype=np.int64).reshape(-1)
    pool = np.unique(np.asarray(category_ids, dtype=np.int64))
    ok = np.ones(num_boxes, dtype=bool) if eligible is None else np.asarray(eligible, bool)
    n = int(ok.sum())
    keep = np.ones(num_boxes, dtype=bool)
    new_cats = cats.copy()
    relabelled = np.zeros(num_boxes, dtype=bool)
    if "missing" in rates:
        rows = np.flatnonzero(ok)
        drop = corruption_rng(seed, "missing").choice(
            rows, int(rates["missing"] * n), replace=False
        )
        keep[drop] = False
    if "class_flip" in rates:
        if pool.size < 2:
            raise NoisyboxError(
                f"Expected at least two categories for class_flip but got {pool.tolist()}"
            )
        rng = corruption_rng(seed, "class_flip")
        rows = np.flatnonzero(ok & keep)
        count = min(int(rates["class_flip"] * n), rows.size)
        flip = np.sort(rng.choice(rows, count, replace=False))
        # another class: an offset 1 .. K-1 from the box's own place in the pool
        place = np.searchsorted(pool, cats[flip])
        place = np.where(pool[np.minimum(place, pool.size - 1)] == cats[flip], place, 0)
        new_cats[flip] = pool[(place + rng.integers(1, pool.size, size=count)) % pool.size]
        relabelled[flip] = True
    extra_boxes = np.zeros((0, 4))
    extra_image = np.zeros(0, dtype=np.int64)
    extra_cats = np.zeros(0, dtype=np.int64)
    if "extra" in rates:
        sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
        count = int(round(rates["extra"] * n / (1.0 - rates["extra"])))
        if count and (sizes.shape[0] == 0 or pool.size == 0):
            raise NoisyboxError("Expected images and categories to add extra boxes to but got none")
        rng = corruption_rng(seed, "extra")
        extra_image = rng.integers(0, sizes.shape[0], size=count)
        wh = sizes[extra_image]
        extra_boxes = _random_boxes(rng, wh)
        extra_cats = pool[rng.integers(0, pool.size, size=count)]
    return AnnotationNoise(
        keep=keep,
        categories=new_cats,
        relabelled=relabelled,
        extra_boxes=extra_boxes,
        extra_image_index=np.asarray(extra_image, dtype=np.int64),
        extra_categories=np.asarray(extra_cats, dtype=np.int64),
    )


def _random_boxes(rng: np.random.Generator, wh: np.ndarray) -> np.ndarray:
    """Boxes with corners two sorted ``U(0, W)`` and two sorted ``U(0, H)``, at least a
    pixel wide and high (drawn again otherwise; after 100 tries, the whole image)."""
    size = np.concatenate([wh, wh], axis=1)

    def draw(k: int) -> np.ndarray:
        u = rng.uniform(0.0, 1.0, size=(k, 4))
        xs, ys = np.sort(u[:, 0::2], axis=1), np.sort(u[:, 1::2], axis=1)
        return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)

    boxes = draw(wh.shape[0]) * size
    for _ in range(_MAX_REDRAWS):
        small = (boxes[:, 2] - boxes[:, 0] < 1.0) | (boxes[:, 3] - boxes[:, 1] < 1.0)
        if not small.any():
            return boxes
        boxes[small] = draw(int(small.sum())) * size[small]
    small = (boxes[:, 2] - boxes[:, 0] < 1.0) | (boxes[:, 3] - boxes[:, 1] < 1.0)
    boxes[small] = np.concatenate([np.zeros_like(wh), wh], axis=1)[small]
    return boxes
