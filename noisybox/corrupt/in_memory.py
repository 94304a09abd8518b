"""Box noise on annotation sets in memory: :func:`corrupt_boxes` and :func:`perturb_annotations`.

Which clean boxes can be perturbed (:func:`find_invalid_boxes`, the ``on_invalid`` policy),
one draw for several sets, the noisy boxes rounded as the format's writer stores them, and
the annotation-level noise (records dropped, relabelled, added: :func:`annotation_noise`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from noisybox._deprecation import renamed_keywords
from noisybox.errors import NoisyboxError
from noisybox.formats import RecordEdits, snap_boxes
from noisybox.formats._io import changed_rows
from noisybox.formats.annotations import Annotations
from noisybox.noise import perturb_boxes
from noisybox.noise.annotation_noise import draw_annotation_noise
from noisybox.noise.perturb import BOX_TOLERANCE as _BOX_TOLERANCE
from noisybox.noise.spec import NoiseSpec, require_spec, takes_noise_spec

__all__ = [
    "BOX_TOLERANCE",
    "DEFAULT_SEED",
    "INVALID_POLICIES",
    "CorruptedBoxes",
    "annotation_noise",
    "check_seed_and_policy",
    "corrupt_boxes",
    "corrupt_sets",
    "find_invalid_boxes",
    "perturb_annotations",
]

DEFAULT_SEED = 0
INVALID_POLICIES: tuple[str, ...] = ("error", "skip", "clip")
BOX_TOLERANCE = _BOX_TOLERANCE
"""Pixels a clean box may stick out of its image before it counts as invalid (rounding in
real annotation files, e.g. VOC's ``xmin = 0``); :func:`~noisybox.noise.perturb_boxes`
refuses boxes further out."""


@dataclasses.dataclass
class CorruptedBoxes:
    """What :func:`corrupt_boxes` did.

    Attributes:
        annotations: the noisy :class:`Annotations`, boxes rounded as the format's writer
            stores them (:func:`noisybox.formats.snap_boxes`).
        eligible: ``bool[N]`` the boxes given noise (neither crowd nor skipped, nor
            dropped): the ones whose IoU measures the noise (relocated boxes included;
            ``edits.relocated`` tells them apart).
        counts: ``boxes``, ``perturbed``, ``crowd_untouched``, ``invalid``, ``skipped``,
            ``clipped``; with annotation-level noise also ``dropped``, ``relabelled`` and
            ``added``, and ``relocated`` with ``relocate`` (``perturbed`` counts the boxes
            the box noise changed, relocated ones among them).
        edits: the records dropped, relabelled and added (annotation-level noise; ``None``
            without): ``annotations`` keeps every clean record, the writer applies these.
            Relocated boxes are in ``annotations`` already, marked in ``edits.relocated``.
    """

    annotations: Annotations
    eligible: np.ndarray
    counts: dict[str, int]
    edits: RecordEdits | None = None


def find_invalid_boxes(
    boxes: np.ndarray, image_sizes: np.ndarray, *, tolerance: float = BOX_TOLERANCE
) -> tuple[np.ndarray, list[str]]:
    """Which boxes cannot be perturbed, and why.

    Args:
        boxes: ``float64[N, 4]`` absolute ``xyxy``.
        image_sizes: ``float64[N, 2]`` ``(width, height)``.
        tolerance: pixels a box may stick out of its image.

    Returns:
        ``(bool[N] invalid, reasons)`` with one reason string per invalid box, in order.

    >>> find_invalid_boxes(np.array([[0.0, 0, 5, 5], [3, 3, 3, 9], [0, 0, 20, 5]]),
    ...                    np.array([[10.0, 10.0]] * 3))
    (array([False,  True,  True]), ['zero or negative size', 'outside the image'])
    """
    finite = np.all(np.isfinite(boxes), axis=1)
    with np.errstate(invalid="ignore"):
        positive = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        inside = (
            (boxes[:, 0] >= -tolerance)
            & (boxes[:, 1] >= -tolerance)
            & (boxes[:, 2] <= image_sizes[:, 0] + tolerance)
            & (boxes[:, 3] <= image_sizes[:, 1] + tolerance)
        )
    invalid = ~(finite & positive & inside)
    reasons = [
        "non-finite coordinates"
        if not finite[k]
        else "zero or negative size"
        if not positive[k]
        else "outside the image"
        for k in np.flatnonzero(invalid).tolist()
    ]
    return invalid, reasons


def check_seed_and_policy(seed: int, on_invalid: str) -> None:
    """Check what a corruption takes beside its :class:`~noisybox.noise.NoiseSpec`: the
    seed and the ``on_invalid`` policy.

    Raises:
        NoisyboxError: a seed that is not a non-negative integer, or an unknown policy.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NoisyboxError(f"Expected seed a non-negative integer but got {seed!r}")
    if on_invalid not in INVALID_POLICIES:
        raise NoisyboxError(
            f"Expected on_invalid in {list(INVALID_POLICIES)} but got {on_invalid!r}"
        )


def _usable_boxes(
    ann: Annotations, on_invalid: str, min_size: float
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """``(base, eligible, counts)``: the clean boxes to perturb (invalid ones clipped under
    ``"clip"``), the boxes given noise, and the counts of crowd, invalid, skipped and clipped
    boxes.

    Raises:
        NoisyboxError: an invalid box under ``on_invalid="error"``, or an image with a box
            to perturb whose side is below ``min_size``.
    """
    sizes = ann.box_image_sizes()
    crowd = np.asarray(ann.iscrowd, dtype=bool)
    invalid = find_invalid_boxes(ann.boxes, sizes)[0] & ~crowd
    base = np.asarray(ann.boxes, dtype=np.float64)
    clipped = np.zeros(ann.num_boxes, dtype=bool)
    if invalid.any() and on_invalid == "error":
        first = int(np.flatnonzero(invalid)[0])
        reason = find_invalid_boxes(ann.boxes[first : first + 1], sizes[first : first + 1])[1][0]
        raise NoisyboxError(
            f"Expected a finite box of positive size inside its {sizes[first, 0]:g}x{sizes[first, 1]:g} "
            f"image but got {ann.boxes[first].tolist()} ({reason}) in {ann.source} "
            f"(record {ann.record_ids[first]}); use --on-invalid skip or clip"
        )
    skipped = invalid.copy()
    if invalid.any() and on_invalid == "clip":
        base = base.copy()
        rows = np.flatnonzero(invalid & np.all(np.isfinite(ann.boxes), axis=1))
        base[rows, 0::2] = np.clip(base[rows, 0::2], 0.0, sizes[rows, 0:1])
        base[rows, 1::2] = np.clip(base[rows, 1::2], 0.0, sizes[rows, 1:2])
        still = find_invalid_boxes(base, sizes, tolerance=0.0)[0]
        clipped = invalid & ~still
        skipped = invalid & still
    eligible = ~crowd & ~skipped
    small = eligible & (sizes.min(axis=1) < min_size)
    if small.any():
        first = int(np.flatnonzero(small)[0])
        raise NoisyboxError(
            f"Expected min_size at most the image side but got {min_size:g} for the "
            f"{sizes[first, 0]:g}x{sizes[first, 1]:g} image of record {ann.record_ids[first]} "
            f"in {ann.source}"
        )
    counts = {
        "crowd_untouched": int(crowd.sum()),
        "invalid": int(invalid.sum()),
        "skipped": int(skipped.sum()),
        "clipped": int(clipped.sum()),
    }
    return base, eligible, counts


def corrupt_sets(
    anns: Sequence[Annotations],
    spec: NoiseSpec,
    *,
    seed: int,
    on_invalid: str,
) -> list[CorruptedBoxes]:
    """:func:`corrupt_boxes` of several sets with one generator: their eligible boxes, in
    order, get one draw, exactly as the boxes of one set holding them all would. The box
    noise of ``spec`` only (its annotation-level rates are :func:`annotation_noise`'s);
    ``seed`` and ``on_invalid`` are taken as checked (:func:`check_seed_and_policy`)."""
    usable = [_usable_boxes(ann, on_invalid, spec.min_size) for ann in anns]
    base = np.concatenate([b[e] for b, e, _ in usable]).reshape(-1, 4)
    sizes = np.concatenate(
        [ann.box_image_sizes()[e] for ann, (_, e, _) in zip(anns, usable, strict=True)]
    ).reshape(-1, 2)
    drawn = perturb_boxes(base, sizes, spec=spec, rng=np.random.default_rng(seed))
    out, start = [], 0
    for ann, (_, eligible, counts) in zip(anns, usable, strict=True):
        stop = start + int(eligible.sum())
        noisy = np.array(ann.boxes, dtype=np.float64, copy=True)
        noisy[eligible] = drawn[start:stop]
        start = stop
        noisy_ann = ann.with_boxes(snap_boxes(ann, noisy))
        perturbed = int(changed_rows(noisy_ann.boxes, ann.boxes).sum())
        out.append(
            CorruptedBoxes(
                annotations=noisy_ann,
                eligible=eligible,
                counts={"boxes": ann.num_boxes, "perturbed": perturbed, **counts},
            )
        )
    return out


def annotation_noise(
    part: CorruptedBoxes, clean: Annotations, spec: NoiseSpec, seed: int
) -> CorruptedBoxes:
    """``part`` with the annotation-level noise of ``spec.rates`` drawn (see
    :mod:`noisybox.noise.annotation_noise`); crowd boxes are never dropped, relabelled or
    relocated, nor are invalid boxes the box noise skipped relocated. A relocated box is
    drawn from its clean box and replaces its box noise."""
    rates = spec.rates
    if not rates:
        return part
    crowd = np.asarray(clean.iscrowd, dtype=bool)
    pool = np.array(sorted(set(clean.category_names) | set(clean.categories.tolist())))
    drawn = draw_annotation_noise(
        clean.num_boxes,
        clean.image_sizes,
        clean.categories,
        pool,
        eligible=~crowd,
        seed=seed,
        boxes=clean.boxes,
        box_image_index=clean.box_image_index,
        relocatable=part.eligible,
        **rates,
    )
    annotations = part.annotations
    if drawn.relocated is not None and drawn.relocated_boxes is not None:
        rows = np.flatnonzero(drawn.relocated)
        noisy = np.array(annotations.boxes, dtype=np.float64, copy=True)
        noisy[rows] = _as_written(clean, drawn.relocated_boxes, clean.box_image_index[rows])
        annotations = annotations.with_boxes(noisy)
    edits = RecordEdits(
        keep=drawn.keep,
        categories=drawn.categories,
        extra_boxes=_as_written(clean, drawn.extra_boxes, drawn.extra_image_index),
        extra_image_index=drawn.extra_image_index,
        extra_categories=drawn.extra_categories,
        relocated=drawn.relocated,
    )
    return dataclasses.replace(
        part,
        annotations=annotations,
        eligible=part.eligible & drawn.keep,
        counts={**part.counts, **drawn.counts},
        edits=edits,
    )


def _as_written(clean: Annotations, boxes: np.ndarray, image_index: np.ndarray) -> np.ndarray:
    """New boxes on the images ``image_index`` of ``clean`` as the writer stores them, like
    the noisy ones (:func:`~noisybox.formats.snap_boxes`, every row rounded)."""
    new_rows = dataclasses.replace(
        clean, boxes=np.full_like(boxes, np.nan), box_image_index=image_index
    )
    return snap_boxes(new_rows, boxes)


@renamed_keywords(model="noise_model")
@takes_noise_spec
def corrupt_boxes(
    ann: Annotations,
    *,
    eta: float | None = None,
    eta_w: float | None = None,
    eta_h: float | None = None,
    noise_model: str = "uniform",
    boundary: str = "shift",
    ratio: float = 1.0,
    seed: int = DEFAULT_SEED,
    on_invalid: str = "error",
    min_size: float = 1.0,
    missing: float = 0.0,
    class_flip: float = 0.0,
    extra: float = 0.0,
    relocate: float = 0.0,
    spec: NoiseSpec | None = None,
) -> CorruptedBoxes:
    """Noisy annotations in memory, exactly as :func:`corrupt_annotations` writes them.

    Crowd boxes (COCO ``iscrowd = 1``) are left alone. All noise comes from one
    ``numpy.random.default_rng(seed)``, so the same annotations and seed give the same boxes.

    Args:
        ann: clean annotations.
        eta, eta_w, eta_h, noise_model, boundary, ratio, min_size: see
            :func:`noisybox.noise.perturb_boxes`.
        seed: seed of the ``numpy.random.Generator`` drawing all the noise.
        on_invalid: what to do with a clean box that is non-finite, empty or outside its
            image (beyond :data:`BOX_TOLERANCE`): ``"error"`` stops, ``"skip"`` leaves it
            unchanged and not ``eligible``, ``"clip"`` clips it into the image and perturbs
            it (skipping it if nothing is left).
        missing, class_flip, extra, relocate: annotation-level noise, rates in ``[0, 1)``:
            the share of boxes dropped, given another class, of bogus boxes added, and of
            boxes given a new box around their own (UNA's localization noise; it replaces
            their box noise) (see :mod:`noisybox.noise.annotation_noise`; each draws from
            ``default_rng([seed, k])``, so the box noise is the same with or without them).
        spec: all of the noise above as one :class:`~noisybox.noise.NoiseSpec`, instead of
            the keywords ``eta`` ... ``relocate`` (required unless ``eta`` is given).

    Returns:
        :class:`CorruptedBoxes`.

    Raises:
        NoisyboxError: for bad parameters (among them a negative seed, a rate outside
            ``[0, 1)``, or a ``min_size`` that is not finite or exceeds the side of an image
            with a box to perturb) or an invalid box under ``on_invalid="error"``.
        TypeError: for both ``spec`` and a noise keyword, or neither ``spec`` nor ``eta``.

    >>> ann = Annotations(np.array([1]), np.array([[100.0, 80.0]]), ["a.png"],
    ...     np.array([0, 0]), np.array([[10.0, 10, 50, 40], [0, 0, 30, 30]]), np.array([1, 1]),
    ...     np.array([False, True]), [1, 2], {}, "coco", "x.json")
    >>> out = corrupt_boxes(ann, eta=0.2, seed=0)
    >>> out.eligible.tolist(), out.counts["perturbed"], out.annotations.boxes[1].tolist()
    ([True, False], 1, [0.0, 0.0, 30.0, 30.0])
    >>> corrupt_boxes(ann, spec=NoiseSpec(eta=0.2), seed=0).annotations.boxes.tolist() == (
    ...     out.annotations.boxes.tolist())
    True
    """
    spec = require_spec(spec, "corrupt_boxes")  # built from the keywords by @takes_noise_spec
    check_seed_and_policy(seed, on_invalid)
    part = corrupt_sets([ann], spec, seed=seed, on_invalid=on_invalid)[0]
    return annotation_noise(part, ann, spec, seed)


@renamed_keywords(model="noise_model")
@takes_noise_spec
def perturb_annotations(
    ann: Annotations,
    *,
    eta: float = 0.2,
    eta_w: float | None = None,
    eta_h: float | None = None,
    noise_model: str = "uniform",
    boundary: str = "shift",
    ratio: float = 1.0,
    min_size: float = 1.0,
    seed: int = 0,
    spec: NoiseSpec | None = None,
) -> Annotations:
    """Noisy annotations in memory, as ``noisybox corrupt --seed SEED`` would write them.

    :func:`corrupt_boxes` with ``on_invalid="skip"``: crowd boxes and
    invalid clean boxes (non-finite, empty, or outside the image) are left unchanged, like
    ``corrupt --on-invalid skip``; for a file without invalid boxes the result equals the
    boxes ``corrupt`` writes with the same parameters and seed (rounded by the format's
    writer, :func:`noisybox.formats.snap_boxes`).

    Args:
        ann: clean annotations.
        eta, eta_w, eta_h, noise_model, boundary, ratio, min_size: see
            :func:`noisybox.noise.perturb_boxes`.
        seed: seed of the ``numpy.random.Generator`` drawing all the noise.
        spec: the noise as one :class:`~noisybox.noise.NoiseSpec`, instead of the keywords
            ``eta`` ... ``min_size``; box noise only (records are never dropped or added
            here: :func:`corrupt_boxes` draws the annotation-level noise).

    Returns:
        A copy of ``ann`` with noisy boxes.

    Raises:
        NoisyboxError: for a rate outside ``[0, 1)`` or another bad parameter, or a
            ``spec`` with annotation-level rates.
        TypeError: for both ``spec`` and a noise keyword.
    """
    spec = require_spec(spec, "perturb_annotations")  # built from the keywords by @takes_noise_spec
    if spec.rates:
        raise NoisyboxError(
            "Expected a spec without annotation-level noise for perturb_annotations (use "
            f"corrupt_boxes) but got {spec.rates}"
        )
    try:
        noisy = corrupt_boxes(ann, spec=spec, seed=seed, on_invalid="skip")
    except ValueError as exc:  # a noise model returning a wrong shape
        raise NoisyboxError(str(exc)) from None
    return noisy.annotations
