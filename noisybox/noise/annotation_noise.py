"""Annotation-level noise: boxes missing, boxes given a wrong class, extra (bogus) boxes,
relocated boxes.

These change the annotation set (and, for ``relocate``, whole boxes rather than their
jitter), and combine with any box-noise model. The counts follow UNA (Ryoo et al., arXiv
2312.13822, ``una_inj.py``), whose rates DN-TOD (arXiv 2401.08056) also uses: for ``N``
boxes and rate ``r``,

* ``missing``: ``int(r N)`` boxes, chosen uniformly, are dropped;
* ``class_flip``: ``int(r N)`` of the boxes left get another class, uniform over the
  other categories (UNA draws from all classes, so some of its flips keep the class);
* ``extra``: ``round(r N / (1 - r))`` bogus boxes are added, so that they are the share
  ``r`` of the boxes of a set that had ``N``; each on an image drawn uniformly (UNA cycles
  through the images in order), with corners two sorted ``U(0, W)`` and two sorted
  ``U(0, H)`` (at least one pixel wide and high, drawn again otherwise) and a class
  uniform over the categories;
* ``relocate``: ``int(r N)`` of the boxes left (as for ``class_flip``) get a new box drawn
  around their own, UNA's localization noise (``make_loc``, see :func:`relocate_boxes`):
  corners two sorted ``U(x1 - w/2, x2 + w/2)`` and two sorted ``U(y1 - h/2, y2 + h/2)``,
  clipped into the image. The record keeps its id, image and class.

Every rate lies in ``[0, 1)``: a missing share of 1 leaves no box, and ``extra = 1`` asks
for infinitely many. Each corruption draws from its own generator (:func:`corruption_rng`),
so changing one rate never changes what another draws, nor the box noise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

from noisybox._seeds import stream_rng
from noisybox.errors import NoisyboxError
from noisybox.settings import RATE

__all__ = [
    "ANNOTATION_CORRUPTIONS",
    "AnnotationNoise",
    "check_corruption_rates",
    "corruption_rng",
    "draw_annotation_noise",
    "relocate_boxes",
]

ANNOTATION_CORRUPTIONS: tuple[str, ...] = ("missing", "class_flip", "extra", "relocate")
"""Annotation-level corruptions, in the order they are drawn (``relocate`` came last, so
adding it changed no draw of the others; each has its own generator anyway)."""

_STREAM = {"missing": 1, "class_flip": 2, "extra": 3, "relocate": 4}
_MAX_REDRAWS = 100
_MIN_RELOCATED_SIDE = 0.01
"""Pixels under which a relocated box counts as empty (UNA: no width or height once
rounded to 2 decimals) and becomes the central half of its clean box."""


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
        relocated: ``bool[N]`` boxes relocated; ``None`` when ``relocate`` was not asked
            for (``counts`` then has no ``relocated`` entry, as before it existed).
        relocated_boxes: ``float64[K, 4]`` the new boxes of the rows
            ``flatnonzero(relocated)``, in that order, absolute ``xyxy``.
    """

    keep: np.ndarray
    categories: np.ndarray
    relabelled: np.ndarray
    extra_boxes: np.ndarray
    extra_image_index: np.ndarray
    extra_categories: np.ndarray
    relocated: np.ndarray | None = None
    relocated_boxes: np.ndarray | None = None

    @property
    def counts(self) -> dict[str, int]:
        """``dropped``, ``relabelled`` and ``added``; ``relocated`` with ``relocate``."""
        counts = {
            "dropped": int((~self.keep).sum()),
            "relabelled": int(self.relabelled.sum()),
            "added": int(self.extra_boxes.shape[0]),
        }
        if self.relocated is not None:
            counts["relocated"] = int(self.relocated.sum())
        return counts

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
        rate = RATE.check(value, name)
        if rate > 0:
            out[name] = rate
    return out


def corruption_rng(seed: int, name: str) -> np.random.Generator:
    """The generator of corruption ``name``: ``numpy.random.default_rng([seed, k])`` with
    ``k`` = 1 (missing), 2 (class_flip), 3 (extra), independent of the box noise's
    ``default_rng(seed)``.

    >>> corruption_rng(0, "missing").integers(100) == np.random.default_rng([0, 1]).integers(100)
    np.True_

    ``relocate`` draws from ``k = 4``.
    """
    return stream_rng(int(seed), _STREAM[name])


def relocate_boxes(boxes: np.ndarray, image_sizes: np.ndarray, uniforms: np.ndarray) -> np.ndarray:
    """UNA's localization noise: a new box drawn around each box, from given uniforms.

    For a box ``(x1, y1, x2, y2)`` of width ``w`` and height ``h`` in a ``W x H`` image,
    with ``u = uniforms`` (one row per box)::

        x1', x2' = sort(x1 - w/2 + 2 w (u0, u1)),  clipped into [0, W]
        y1', y2' = sort(y1 - h/2 + 2 h (u2, u3)),  clipped into [0, H]

    that is, each corner uniform over the ``2w x 2h`` box centred on the clean one. A new
    box under 0.01 px wide or high becomes the clean box's central half ``(x1 + w/4,
    y1 + h/4, x2 - w/4, y2 - h/4)``, as in UNA. The new box keeps nothing of the old one but
    its neighbourhood: its IoU to it is often small, and 0 when the two lie side by side.
    The noise level is the share of boxes relocated (see :func:`draw_annotation_noise`);
    the geometry has no parameter.

    Where noisybox departs from ``una_inj.py`` (UNA's own code, ``make_loc``): UNA rounds
    the corners to 2 decimals before clipping and tests the rounded width and height
    against ``1e-5``; here the writers round (COCO to 2 decimals, VOC to whole pixels) and
    the test is ``< 0.01`` px, the same up to rounding. UNA draws from Python's ``random``
    (seed 1), noisybox from ``numpy`` (:func:`corruption_rng`); the distribution is the
    same, the numbers are not. UNA moves any annotation, noisybox no crowd box
    (:func:`draw_annotation_noise`'s ``eligible``). DN-TOD (arXiv 2401.08056, ``inject_noise.py``) moves no box:
    its nearest mode adds a box of the clean one's size elsewhere in the image (a bogus box,
    see ``extra``).

    Args:
        boxes: ``float[K, 4+]`` clean boxes, absolute ``xyxy`` (extra columns kept).
        image_sizes: ``float[K, 2]`` ``(width, height)`` of each box's image.
        uniforms: ``float[K, 4]`` ``U(0, 1)`` draws per box: the two x corners, then the
            two y corners (UNA's order).

    Returns:
        ``float64[K, 4+]`` the new boxes, absolute ``xyxy``.

    Reference:
        UNA (Ryoo et al., arXiv 2312.13822), ``una_inj.py``, ``make_loc``.

    >>> relocate_boxes(np.array([[10.0, 10, 30, 20]]), np.array([[100.0, 100.0]]),
    ...                np.array([[0.0, 1.0, 0.5, 0.25]]))
    array([[ 0., 10., 40., 15.]])
    >>> relocate_boxes(np.array([[0.0, 0, 8, 8]]), np.array([[50.0, 50.0]]),
    ...                np.array([[0.1, 0.2, 0.5, 0.9]]))  # both x corners clipped to 0
    array([[2., 2., 6., 6.]])
    """
    out = np.array(boxes, dtype=np.float64, copy=True).reshape(-1, np.shape(boxes)[-1])
    u = np.asarray(uniforms, dtype=np.float64).reshape(-1, 4)
    wh = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
    if out.shape[0] == 0:
        return out
    x1, y1, x2, y2 = (out[:, k] for k in range(4))
    w, h = x2 - x1, y2 - y1
    xs = np.sort((x1 - w / 2)[:, None] + 2 * w[:, None] * u[:, 0:2], axis=1)
    ys = np.sort((y1 - h / 2)[:, None] + 2 * h[:, None] * u[:, 2:4], axis=1)
    xs = np.clip(xs, 0.0, wh[:, 0:1])
    ys = np.clip(ys, 0.0, wh[:, 1:2])
    new = np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)
    empty = (new[:, 2] - new[:, 0] < _MIN_RELOCATED_SIDE) | (
        new[:, 3] - new[:, 1] < _MIN_RELOCATED_SIDE
    )
    half = np.stack([x1 + w / 4, y1 + h / 4, x2 - w / 4, y2 - h / 4], axis=1)
    out[:, :4] = np.where(empty[:, None], half, new)
    return out


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
    relocate: float = 0.0,
    seed: int = 0,
    boxes: np.ndarray | None = None,
    box_image_index: np.ndarray | None = None,
    relocatable: np.ndarray | None = None,
) -> AnnotationNoise:
    """Draw which boxes are dropped, relabelled and relocated, and the bogus boxes to add.

    The four draws stay in one place so that their order is visible: missing, then
    class_flip on the boxes kept (:func:`_draw_flips`), then extra (:func:`_draw_extra`),
    then relocate on the boxes kept (:func:`_draw_relocation`).

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
        relocate: share of boxes given a new box around their own (:func:`relocate_boxes`),
            in ``[0, 1)``: ``int(relocate N)`` of the boxes kept, chosen uniformly.
        seed: seed of the corruptions' generators (:func:`corruption_rng`).
        boxes: ``float[N, 4]`` clean boxes, absolute ``xyxy`` (needed by ``relocate``).
        box_image_index: ``int[N]`` image row of every box (needed by ``relocate``).
        relocatable: ``bool[N]`` boxes ``relocate`` may move (default ``eligible``;
            ``corrupt`` passes the boxes given box noise, so an invalid box it skipped is
            never moved).

    Returns:
        :class:`AnnotationNoise`.

    Raises:
        NoisyboxError: for a rate outside ``[0, 1)``, fewer than two categories for
            ``class_flip``, no category or no image for ``extra``, no ``boxes`` or
            ``box_image_index`` for ``relocate``.

    Reference:
        UNA (Ryoo et al., arXiv 2312.13822), ``una_inj.py``.

    >>> noise = draw_annotation_noise(10, np.array([[100.0, 50.0]]), np.zeros(10, int),
    ...                               np.array([0, 1]), missing=0.2, class_flip=0.3, extra=0.5)
    >>> noise.counts
    {'dropped': 2, 'relabelled': 3, 'added': 10}
    >>> boxes = np.tile([10.0, 10.0, 30.0, 20.0], (10, 1))
    >>> noise = draw_annotation_noise(10, np.array([[100.0, 50.0]]), np.zeros(10, int),
    ...                               np.array([0, 1]), missing=0.2, relocate=0.3, boxes=boxes,
    ...                               box_image_index=np.zeros(10, int))
    >>> noise.counts, bool(np.any(noise.relocated & ~noise.keep))
    ({'dropped': 2, 'relabelled': 0, 'added': 0, 'relocated': 3}, False)
    """
    rates = check_corruption_rates(
        {"missing": missing, "class_flip": class_flip, "extra": extra, "relocate": relocate}
    )
    cats = np.asarray(categories, dtype=np.int64).reshape(-1)
    pool = np.unique(np.asarray(category_ids, dtype=np.int64))
    ok = np.ones(num_boxes, dtype=bool) if eligible is None else np.asarray(eligible, bool)
    sizes = np.asarray(image_sizes, dtype=np.float64).reshape(-1, 2)
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
        flip, flipped_to = _draw_flips(
            corruption_rng(seed, "class_flip"),
            np.flatnonzero(ok & keep),
            int(rates["class_flip"] * n),
            cats,
            pool,
        )
        new_cats[flip] = flipped_to
        relabelled[flip] = True
    extra_boxes = np.zeros((0, 4))
    extra_image = np.zeros(0, dtype=np.int64)
    extra_cats = np.zeros(0, dtype=np.int64)
    if "extra" in rates:
        count = int(round(rates["extra"] * n / (1.0 - rates["extra"])))
        if count and (sizes.shape[0] == 0 or pool.size == 0):
            raise NoisyboxError("Expected images and categories to add extra boxes to but got none")
        extra_image, extra_boxes, extra_cats = _draw_extra(
            corruption_rng(seed, "extra"), sizes, count, pool
        )
    relocated, relocated_boxes = None, None
    if "relocate" in rates:
        if boxes is None or box_image_index is None:
            raise NoisyboxError(
                "Expected the boxes and their image rows to relocate boxes but got none"
            )
        movable = ok if relocatable is None else ok & np.asarray(relocatable, dtype=bool)
        relocated, relocated_boxes = _draw_relocation(
            corruption_rng(seed, "relocate"),
            np.flatnonzero(movable & keep),
            int(rates["relocate"] * n),
            np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
            sizes[np.asarray(box_image_index, dtype=np.int64)],
        )
    return AnnotationNoise(
        keep=keep,
        categories=new_cats,
        relabelled=relabelled,
        extra_boxes=extra_boxes,
        extra_image_index=np.asarray(extra_image, dtype=np.int64),
        extra_categories=np.asarray(extra_cats, dtype=np.int64),
        relocated=relocated,
        relocated_boxes=relocated_boxes,
    )


def _draw_flips(
    rng: np.random.Generator, rows: np.ndarray, count: int, cats: np.ndarray, pool: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(int64[K] rows, int64[K] categories)``: ``count`` of ``rows`` (at most all), chosen
    uniformly and sorted, and the other category of ``pool`` each is given.

    Raises:
        NoisyboxError: ``pool`` has fewer than two categories.
    """
    if pool.size < 2:
        raise NoisyboxError(
            f"Expected at least two categories for class_flip but got {pool.tolist()}"
        )
    count = min(count, rows.size)
    flip = np.sort(rng.choice(rows, count, replace=False))
    # another class: an offset 1 .. K-1 from the box's own place in the pool
    place = np.searchsorted(pool, cats[flip])
    place = np.where(pool[np.minimum(place, pool.size - 1)] == cats[flip], place, 0)
    return flip, pool[(place + rng.integers(1, pool.size, size=count)) % pool.size]


def _draw_extra(
    rng: np.random.Generator, sizes: np.ndarray, count: int, pool: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(int64[K] image rows, float64[K, 4] boxes, int64[K] categories)`` of ``count`` bogus
    boxes: each on an image drawn uniformly, a box :func:`_random_boxes` on it, and a
    category drawn uniformly from ``pool``."""
    image = rng.integers(0, sizes.shape[0], size=count)
    boxes = _random_boxes(rng, sizes[image])
    return image, boxes, pool[rng.integers(0, pool.size, size=count)]


def _draw_relocation(
    rng: np.random.Generator, rows: np.ndarray, count: int, boxes: np.ndarray, wh: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(bool[N] relocated, float64[K, 4] new boxes)``: ``count`` of ``rows`` (at most
    all), chosen uniformly, then four uniforms per chosen box in row order
    (:func:`relocate_boxes`)."""
    count = min(count, rows.size)
    chosen = np.sort(rng.choice(rows, count, replace=False))
    relocated = np.zeros(boxes.shape[0], dtype=bool)
    relocated[chosen] = True
    uniforms = rng.uniform(0.0, 1.0, size=(count, 4))
    return relocated, relocate_boxes(boxes[chosen], wh[chosen], uniforms)


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
