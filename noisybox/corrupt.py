"""Box noise on annotation sets: :func:`corrupt_boxes` in memory, and :func:`corrupt_annotations`
(read -> :func:`corrupt_boxes` -> measure -> atomic write), the function behind
``noisybox corrupt``. Several sets (VOC 2007 + 2012 trainval, the paper's training set) are
corrupted together with one seed and measured as one."""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from noisybox import __version__
from noisybox._deprecation import renamed_keywords
from noisybox._fileio import atomic_dir, check_outputs
from noisybox.errors import NoisyboxError
from noisybox.formats import MANIFEST_NAME, read_annotations, snap_boxes, write_annotations
from noisybox.formats._io import changed_rows
from noisybox.formats.annotations import Annotations, concat_annotations
from noisybox.noise import perturb_boxes, resolve_eta
from noisybox.noise.perturb import BOUNDARIES
from noisybox.noise.perturb import BOX_TOLERANCE as _BOX_TOLERANCE
from noisybox.noise.registry import get_noise_model
from noisybox.stats import IoUStats, compare_annotations

__all__ = [
    "BOX_TOLERANCE",
    "DEFAULT_SEED",
    "INVALID_POLICIES",
    "CorruptedBoxes",
    "CorruptionResult",
    "corrupt_annotations",
    "corrupt_boxes",
    "find_invalid_boxes",
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
        eligible: ``bool[N]`` the boxes given noise (neither crowd nor skipped): the ones
            whose IoU measures the noise.
        counts: ``boxes``, ``perturbed``, ``crowd_untouched``, ``invalid``, ``skipped``,
            ``clipped``.
    """

    annotations: Annotations
    eligible: np.ndarray
    counts: dict[str, int]


@dataclasses.dataclass
class CorruptionResult:
    """What :func:`corrupt_annotations` did.

    With several inputs the fields describe them together (``annotations`` and ``clean``
    are :func:`~noisybox.formats.concat_annotations` of the parts, ``counts`` their sums,
    ``stats`` the figures over all of them) and ``parts`` holds one result per input.

    Attributes:
        stats: IoU of the written noisy boxes against the clean ones.
        provenance: the record written beside the output.
        output_path: where the noisy annotations are.
        annotations: the noisy :class:`Annotations` as written.
        counts: ``boxes``, ``perturbed``, ``crowd_untouched``, ``invalid``, ``skipped``,
            ``clipped``.
        clean: the clean :class:`Annotations` that were read.
        eligible: ``bool[N]`` the boxes given noise, the ones ``stats`` measures.
        parts: one result per input when there are several, else empty.
        warnings: one line per oddity of the input that did not stop the run (duplicate
            annotation ids: other tools match noisy to clean boxes by id); with several
            inputs, those of every input.
    """

    stats: IoUStats
    provenance: dict[str, Any]
    output_path: Path
    annotations: Annotations
    counts: dict[str, int]
    clean: Annotations
    eligible: np.ndarray
    parts: list[CorruptionResult] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)


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


def _check_noise_params(
    eta: float,
    eta_w: float | None,
    eta_h: float | None,
    noise_model: str,
    boundary: str,
    on_invalid: str,
    seed: int = DEFAULT_SEED,
    min_size: float = 1.0,
) -> tuple[float, float]:
    """Check the noise parameters and ``on_invalid`` up front, as :class:`NoisyboxError`
    (:func:`perturb_boxes` raises ``ValueError`` for some); return ``(eta_w, eta_h)``."""
    resolved = resolve_eta(eta, eta_w, eta_h)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise NoisyboxError(f"Expected seed a non-negative integer but got {seed!r}")
    if not (math.isfinite(float(min_size)) and float(min_size) > 0):
        raise NoisyboxError(f"Expected min_size a finite number > 0 but got {min_size!r}")
    if on_invalid not in INVALID_POLICIES:
        raise NoisyboxError(
            f"Expected on_invalid in {list(INVALID_POLICIES)} but got {on_invalid!r}"
        )
    if boundary not in BOUNDARIES:
        raise NoisyboxError(f"Expected boundary in {list(BOUNDARIES)} but got {boundary!r}")
    try:
        get_noise_model(noise_model)
    except ValueError as exc:
        raise NoisyboxError(str(exc)) from None
    return resolved


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


def _corrupt_sets(
    anns: Sequence[Annotations],
    *,
    eta: float,
    eta_w: float | None,
    eta_h: float | None,
    noise_model: str,
    boundary: str,
    ratio: float,
    seed: int,
    on_invalid: str,
    min_size: float,
) -> list[CorruptedBoxes]:
    """:func:`corrupt_boxes` of several sets with one generator: their eligible boxes, in
    order, get one draw, exactly as the boxes of one set holding them all would."""
    _check_noise_params(eta, eta_w, eta_h, noise_model, boundary, on_invalid, seed, min_size)
    usable = [_usable_boxes(ann, on_invalid, min_size) for ann in anns]
    base = np.concatenate([b[e] for b, e, _ in usable]).reshape(-1, 4)
    sizes = np.concatenate(
        [ann.box_image_sizes()[e] for ann, (_, e, _) in zip(anns, usable, strict=True)]
    ).reshape(-1, 2)
    drawn = perturb_boxes(
        base,
        sizes,
        eta=eta,
        eta_w=eta_w,
        eta_h=eta_h,
        noise_model=noise_model,
        boundary=boundary,
        ratio=ratio,
        min_size=min_size,
        rng=np.random.default_rng(seed),
    )
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


@renamed_keywords(model="noise_model")
def corrupt_boxes(
    ann: Annotations,
    *,
    eta: float,
    eta_w: float | None = None,
    eta_h: float | None = None,
    noise_model: str = "uniform",
    boundary: str = "shift",
    ratio: float = 1.0,
    seed: int = DEFAULT_SEED,
    on_invalid: str = "error",
    min_size: float = 1.0,
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

    Returns:
        :class:`CorruptedBoxes`.

    Raises:
        NoisyboxError: for bad parameters (among them a negative seed, or a ``min_size``
            that is not finite or exceeds the side of an image with a box to perturb) or an
            invalid box under ``on_invalid="error"``.

    >>> ann = Annotations(np.array([1]), np.array([[100.0, 80.0]]), ["a.png"],
    ...     np.array([0, 0]), np.array([[10.0, 10, 50, 40], [0, 0, 30, 30]]), np.array([1, 1]),
    ...     np.array([False, True]), [1, 2], {}, "coco", "x.json")
    >>> out = corrupt_boxes(ann, eta=0.2, seed=0)
    >>> out.eligible.tolist(), out.counts["perturbed"], out.annotations.boxes[1].tolist()
    ([True, False], 1, [0.0, 0.0, 30.0, 30.0])
    """
    return _corrupt_sets(
        [ann],
        eta=eta,
        eta_w=eta_w,
        eta_h=eta_h,
        noise_model=noise_model,
        boundary=boundary,
        ratio=ratio,
        seed=seed,
        on_invalid=on_invalid,
        min_size=min_size,
    )[0]


def _output_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The name under which each of several inputs is written: its own file or folder name.

    Raises:
        NoisyboxError: if two inputs share a name.
    """
    names = [Path(p).resolve().name for p in paths]
    for k, name in enumerate(names):
        if name in names[:k]:
            raise NoisyboxError(
                f"Expected inputs with distinct names but got {name!r} twice "
                f"({paths[names.index(name)]} and {paths[k]})"
            )
    return names


@renamed_keywords(model="noise_model")
def corrupt_annotations(
    input_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_path: str | os.PathLike[str],
    *,
    eta: float,
    eta_w: float | None = None,
    eta_h: float | None = None,
    noise_model: str = "uniform",
    boundary: str = "shift",
    ratio: float = 1.0,
    seed: int = DEFAULT_SEED,
    format: str | None = None,
    on_invalid: str = "error",
    min_size: float = 1.0,
    progress: bool = False,
    **read_kwargs: Any,
) -> CorruptionResult:
    """Write a noisy copy of one or several annotation sets and measure how noisy it is.

    The boxes are those of :func:`corrupt_boxes`; crowd boxes (COCO ``iscrowd = 1``) are
    left alone. The same input and seed give a byte-identical output (the provenance holds no time stamp or absolute path).

    Several inputs (VOC2007 and VOC2012 trainval, the paper's training set, or any mix of
    formats) are corrupted as one set: one ``numpy.random.default_rng(seed)`` draws the
    noise of all their boxes in input order, which gives the boxes corrupting a merged
    folder of the same files in the same order would give, and the figures are measured over
    all of them (each input's own figures are in ``parts``). ``output_path`` is then a
    folder holding each input's noisy copy under the input's own name, beside a
    ``noisybox-manifest.json`` with the settings, the figures over all inputs and those of
    each.

    Args:
        input_path: a COCO json, VOC year folder or YOLO dataset folder, or a sequence of
            them.
        output_path: the file (COCO) or folder (VOC, YOLO) to write; with several inputs,
            the folder to write their copies in.
        eta, eta_w, eta_h, noise_model, boundary, ratio, min_size: see
            :func:`noisybox.noise.perturb_boxes`.
        seed: seed of the ``numpy.random.Generator`` drawing all the noise.
        format: ``"coco"``, ``"voc"``, ``"yolo"`` or ``None`` to detect (each input).
        on_invalid: what to do with a clean box that is non-finite, empty or outside its
            image (beyond :data:`BOX_TOLERANCE`): ``"error"`` stops, ``"skip"`` writes it
            back unchanged and leaves it out of the figures, ``"clip"`` clips it into the
            image and perturbs it (skipping it if nothing is left).
        progress: tqdm progress on stderr.
        **read_kwargs: ``image_set`` (every VOC input) or ``image_root`` (a single YOLO
            input).

    Returns:
        :class:`CorruptionResult`.

    Raises:
        NoisyboxError: for bad parameters, malformed input, an invalid box under
            ``on_invalid="error"``, an output refused by
            :func:`noisybox._fileio.check_outputs` (an input itself, a path inside an input,
            a folder holding one, a special file), or, with several inputs, two inputs of
            the same name or an ``image_root``. Nothing is written then.
    """
    paths = [input_path] if isinstance(input_path, (str, os.PathLike)) else list(input_path)
    if not paths:
        raise NoisyboxError("Expected at least one annotation file or folder but got none")
    eta_w_, eta_h_ = _check_noise_params(
        eta, eta_w, eta_h, noise_model, boundary, on_invalid, seed, min_size
    )
    several = len(paths) > 1
    names = _output_names(paths) if several else [Path(paths[0]).name]
    check_outputs(
        {"the output": output_path},
        {"": paths[0]} if not several else dict(zip(names, paths, strict=True)),
        folders=("the output",) if several or Path(paths[0]).is_dir() else (),
    )
    if several and read_kwargs.get("image_root") is not None:
        raise NoisyboxError(
            f"Expected image_root with a single YOLO input but got {len(paths)} inputs"
        )

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=4, desc="corrupt", unit="step", leave=False)
    clean = [read_annotations(path, format, progress=progress, **read_kwargs) for path in paths]
    if bar is not None:
        bar.update(1)
    noisy = _corrupt_sets(
        clean,
        eta=eta,
        eta_w=eta_w,
        eta_h=eta_h,
        noise_model=noise_model,
        boundary=boundary,
        ratio=ratio,
        seed=seed,
        on_invalid=on_invalid,
        min_size=min_size,
    )
    if bar is not None:
        bar.update(1)
    stats = [
        compare_annotations(ann, part.annotations, include=part.eligible)
        for ann, part in zip(clean, noisy, strict=True)
    ]
    settings = {
        "model": noise_model,  # the provenance key written in every output: kept
        "eta": float(eta),
        "eta_w": eta_w_,
        "eta_h": eta_h_,
        "boundary": boundary,
        "ratio": float(ratio),
        "min_size": float(min_size),
        "seed": int(seed),
        "on_invalid": on_invalid,
    }
    tool = {"tool": "noisybox corrupt", "noisybox_version": __version__}
    provenances = [
        {
            **tool,
            "source": name,
            "format": ann.format,
            **({"sources": names} if several else {}),
            "iou": part_stats.to_dict(),
            **settings,
            "counts": part.counts,
        }
        for name, ann, part, part_stats in zip(names, clean, noisy, stats, strict=True)
    ]
    results = [
        CorruptionResult(
            stats=part_stats,
            provenance=provenance,
            output_path=Path(output_path) / name if several else Path(output_path),
            annotations=part.annotations,
            counts=part.counts,
            clean=ann,
            eligible=part.eligible,
            warnings=_duplicate_id_warnings(ann),
        )
        for name, ann, part, part_stats, provenance in zip(
            names, clean, noisy, stats, provenances, strict=True
        )
    ]
    if not several:
        if bar is not None:
            bar.update(1)
        write_annotations(
            noisy[0].annotations, output_path, provenance=provenances[0], progress=progress
        )
        if bar is not None:
            bar.update(1)
            bar.close()
        return results[0]

    whole = _combine(results, names, tool, settings, Path(output_path))
    if bar is not None:
        bar.update(1)
    with atomic_dir(output_path, manifest=MANIFEST_NAME) as tmp:
        for name, result in zip(names, results, strict=True):
            write_annotations(
                result.annotations, tmp / name, provenance=result.provenance, progress=progress
            )
        (tmp / MANIFEST_NAME).write_text(json.dumps(whole.provenance, indent=2) + "\n")
    if bar is not None:
        bar.update(1)
        bar.close()
    return whole


def _combine(
    parts: list[CorruptionResult],
    names: list[str],
    tool: dict[str, Any],
    settings: dict[str, Any],
    output_path: Path,
) -> CorruptionResult:
    """The result of several inputs corrupted together, measured over all of them."""
    clean = concat_annotations([part.clean for part in parts])
    # The rows of the parts' noisy copies are those of their clean sets, so the noisy whole
    # is the clean whole with their boxes: compare_annotations then pairs row by row (an
    # annotation id repeated inside one input is warned about, as for a single input).
    noisy = clean.with_boxes(np.concatenate([part.annotations.boxes for part in parts]))
    eligible = np.concatenate([part.eligible for part in parts])
    stats = compare_annotations(clean, noisy, include=eligible)
    counts = {key: sum(part.counts[key] for part in parts) for key in parts[0].counts}
    headline = ("paper_statistic", "mean_image_iou", "mean_iou", "num_boxes", "num_images")
    provenance = {
        **tool,
        "source": names,
        "format": [part.clean.format for part in parts],
        "iou": stats.to_dict(),
        **settings,
        "counts": counts,
        "parts": [
            {
                "source": name,
                "format": part.clean.format,
                "iou": {key: part.provenance["iou"][key] for key in headline},
                "counts": part.counts,
            }
            for name, part in zip(names, parts, strict=True)
        ],
    }
    return CorruptionResult(
        stats=stats,
        provenance=provenance,
        output_path=output_path,
        annotations=noisy,
        counts=counts,
        clean=clean,
        eligible=eligible,
        parts=parts,
        warnings=[warning for part in parts for warning in part.warnings],
    )


def _duplicate_id_warnings(ann: Annotations) -> list[str]:
    """A warning when annotation ids repeat (``noisybox iou`` refuses such files)."""
    counts = collections.Counter(ann.record_ids)
    repeated = [rid for rid, n in counts.items() if n > 1]
    if not repeated:
        return []
    return [
        f"{len(repeated)} annotation id(s) appear more than once in {ann.source} (first: "
        f"{repeated[0]!r}, {counts[repeated[0]]} times); the noisy file keeps them, but "
        "tools that match boxes by id (noisybox iou) cannot use it"
    ]
