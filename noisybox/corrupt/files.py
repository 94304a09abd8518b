"""Box noise on annotation files: :func:`corrupt_annotations` (read -> :func:`corrupt_boxes`
-> measure -> atomic write), the function behind ``noisybox corrupt``. Several sets (VOC
2007 + 2012 trainval, the paper's training set) are corrupted together with one seed and
measured as one."""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from noisybox import __version__
from noisybox._deprecation import renamed_keywords
from noisybox._fileio import atomic_dir, atomic_write_json
from noisybox._progress import progress_bar
from noisybox.corrupt.checks import check_paths, checked_settings
from noisybox.corrupt.in_memory import (
    DEFAULT_SEED,
    CorruptedBoxes,
    annotation_noise,
    corrupt_sets,
)
from noisybox.corrupt.oamil import (
    COCO_CONVENTIONS,
    REPRODUCE_SETTINGS,
    reproduce_oamil,
)
from noisybox.errors import NoisyboxError
from noisybox.formats import MANIFEST_NAME, RecordEdits, read_annotations, write_annotations
from noisybox.formats.annotations import Annotations, concat_annotations
from noisybox.noise.annotation_noise import _STREAM
from noisybox.noise.spec import NoiseSpec, require_spec, takes_noise_spec
from noisybox.stats import IoUStats, compare_annotations

__all__ = ["CorruptionResult", "corrupt_annotations"]


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
            ``clipped``; with annotation-level noise also ``dropped``, ``relabelled`` and
            ``added`` (and ``relocated`` with ``relocate``); with ``reproduce="oamil"``
            also ``ignored``.
        clean: the clean :class:`Annotations` that were read.
        eligible: ``bool[N]`` the boxes given noise, the ones ``stats`` measures.
        parts: one result per input when there are several, else empty.
        warnings: one line per oddity of the input that did not stop the run (duplicate
            annotation ids: other tools match noisy to clean boxes by id); with several
            inputs, those of every input.
        edits: the records dropped, relabelled and added by annotation-level noise
            (``None`` without), as the writer applied them to ``annotations``, and the
            relocated ones (``edits.relocated``).
        side_files: files written beside the output (a reproduced generator's pickle).
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
    edits: RecordEdits | None = None
    side_files: list[Path] = dataclasses.field(default_factory=list)


@renamed_keywords(model="noise_model")
@takes_noise_spec
def corrupt_annotations(
    input_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    output_path: str | os.PathLike[str],
    *,
    eta: float | None = None,
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
    reproduce: str | None = None,
    missing: float = 0.0,
    class_flip: float = 0.0,
    extra: float = 0.0,
    relocate: float = 0.0,
    spec: NoiseSpec | None = None,
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

    The steps are the checks (:mod:`noisybox.corrupt.checks`), the read,
    :func:`_noisy_sets`, :func:`_settings` and :func:`_measure`, and the write
    (:func:`_write_one`, or the folder of several inputs and its manifest).

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
        progress: a progress bar on stderr (:mod:`noisybox._progress`).
        reproduce: ``"oamil"`` regenerates OA-MIL's published noisy VOC2007 boxes exactly
            (:func:`noisybox.corrupt.oamil.oamil_voc`, ``eta`` is its ``r``), or those of its
            COCO generator for a COCO file (:func:`noisybox.corrupt.oamil.oamil_coco`, pickle
            ``coco2017_train_noise-r<r>.pkl`` beside the output file): one input (a VOC
            folder is read with ``image_set="trainval"`` unless another is given), numpy's
            legacy generator seeded with 45 (``seed`` must be left at its default or 45),
            difficult boxes left clean; ``model``, ``boundary``, ``min_size`` and
            ``on_invalid`` do not apply. Beside the VOC files the output folder holds the
            source's pickle, ``voc07_<image_set>_noise-r<r>.pkl``, with its exact float32
            boxes.
        missing, class_flip, extra, relocate: annotation-level noise (see
            :func:`~noisybox.corrupt.corrupt_boxes`; one input only). The writers drop,
            relabel and add records and write relocated boxes like any noisy box, and keep
            everything else; ``stats`` measures the boxes kept (relocated ones apart, in
            ``stats.relocated``), and ``counts`` and the manifest give the numbers dropped,
            relabelled, added and relocated, each rate's seed and the ids of the dropped
            and relocated records.
        spec: all of the noise above as one :class:`~noisybox.noise.NoiseSpec`, instead of
            the keywords ``eta`` ... ``relocate`` (required unless ``eta`` is given); the
            provenance records the same settings either way.
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
        TypeError: both ``spec`` and a noise keyword, or neither ``spec`` nor ``eta``.
    """
    paths = [input_path] if isinstance(input_path, (str, os.PathLike)) else list(input_path)
    if not paths:
        raise NoisyboxError("Expected at least one annotation file or folder but got none")
    spec = require_spec(spec, "corrupt_annotations")  # built from the keywords by @takes_noise_spec
    seed, read_kwargs = checked_settings(
        paths, spec, seed, on_invalid, reproduce=reproduce, format=format, read_kwargs=read_kwargs
    )
    several = len(paths) > 1
    names = check_paths(paths, output_path, image_root=read_kwargs.get("image_root"))

    bar = _Steps(progress)
    clean = [read_annotations(path, format, progress=progress, **read_kwargs) for path in paths]
    bar.step()
    noisy, pickled = _noisy_sets(
        clean,
        spec,
        reproduce=reproduce,
        image_set=read_kwargs.get("image_set"),
        seed=seed,
        on_invalid=on_invalid,
    )
    bar.step()
    settings = _settings(spec, seed, on_invalid, reproduce, clean[0], noisy[0].edits)
    tool = {"tool": "noisybox corrupt", "noisybox_version": __version__}
    results = _measure(clean, noisy, names, tool, settings, Path(output_path), several=several)
    if not several:
        return _write_one(results[0], output_path, noisy[0].edits, pickled, bar, progress=progress)

    whole = _combine(results, names, tool, settings, Path(output_path))
    bar.step()
    with atomic_dir(output_path, manifest=MANIFEST_NAME) as tmp:
        for name, result in zip(names, results, strict=True):
            write_annotations(
                result.annotations, tmp / name, provenance=result.provenance, progress=progress
            )
        atomic_write_json(tmp / MANIFEST_NAME, whole.provenance, indent=2)
    bar.step(last=True)
    return whole


def _settings(
    spec: NoiseSpec,
    seed: int,
    on_invalid: str,
    reproduce: str | None,
    clean: Annotations,
    edits: RecordEdits | None,
) -> dict[str, Any]:
    """The settings the provenance records: the spec's, the seed and the policy, a
    reproduction's own (:data:`~noisybox.corrupt.oamil.REPRODUCE_SETTINGS`) and, last, the
    annotation-level noise with its seeds and records (``clean``, ``edits``: the first
    input's, the only one annotation-level noise takes)."""
    settings = {**spec.to_dict(), "seed": int(seed), "on_invalid": on_invalid}
    settings.pop("annotation_noise", None)  # recorded last, with its seeds and records
    if reproduce is not None:
        settings.update(REPRODUCE_SETTINGS[reproduce])
        if clean.format == "coco":
            settings["conventions"] = COCO_CONVENTIONS
    if spec.rates:
        settings.update(_annotation_settings(spec.rates, seed, clean, edits))
    return settings


def _write_one(
    result: CorruptionResult,
    output_path: str | os.PathLike[str],
    edits: RecordEdits | None,
    pickled: tuple[str, bytes] | None,
    bar: _Steps,
    *,
    progress: bool,
) -> CorruptionResult:
    """Write the noisy copy of a single input (and a reproduced source's pickle beside it)."""
    bar.step()
    write_annotations(
        result.annotations,
        output_path,
        provenance=result.provenance,
        progress=progress,
        extra_files=dict([pickled]) if pickled is not None else None,
        edits=edits,
    )
    bar.step(last=True)
    if pickled is not None:
        folder = Path(output_path) if result.clean.format == "voc" else Path(output_path).parent
        result.side_files.append(folder / pickled[0])
    return result


def _noisy_sets(
    clean: list[Annotations],
    spec: NoiseSpec,
    *,
    reproduce: str | None,
    image_set: str | None,
    seed: int,
    on_invalid: str,
) -> tuple[list[CorruptedBoxes], tuple[str, bytes] | None]:
    """The noisy sets, and the file a reproduced source writes beside them (its name and
    bytes; ``None`` without ``reproduce``): the published generator's boxes or
    :func:`~noisybox.corrupt.in_memory.corrupt_sets` with the box noise of ``spec``,
    then its annotation-level noise (one input)."""
    pickled: tuple[str, bytes] | None = None
    if reproduce is not None:
        noisy, pickled = reproduce_oamil(clean[0], spec.eta, str(image_set))
    else:
        noisy = corrupt_sets(clean, spec, seed=seed, on_invalid=on_invalid)
    if spec.rates:
        noisy = [annotation_noise(noisy[0], clean[0], spec, seed)]
    return noisy, pickled


def _annotation_settings(
    rates: dict[str, float], seed: int, clean: Annotations, edits: RecordEdits | None
) -> dict[str, Any]:
    """The manifest's record of the annotation-level noise: each rate and its seed, the
    clean ids of the dropped records (VOC numbers objects by position, so matching a noisy
    VOC file to its clean one needs them: ``noisybox iou --partial``) and, with
    ``relocate``, those of the relocated records (their IoU is reported apart)."""
    record: dict[str, Any] = {
        name: {"rate": rate, "seed": [int(seed), _STREAM[name]]} for name, rate in rates.items()
    }
    if edits is not None:
        record["dropped_records"] = [
            rid for rid, keep in zip(clean.record_ids, edits.keep.tolist(), strict=True) if not keep
        ]
        if edits.relocated is not None:
            record["relocated_records"] = _relocated_ids(clean, edits)
    return {"annotation_noise": record}


def _relocated_ids(clean: Annotations, edits: RecordEdits | None) -> list[Any] | None:
    """The clean ids of the relocated records (``None`` without ``relocate``)."""
    if edits is None or edits.relocated is None:
        return None
    return [clean.record_ids[k] for k in np.flatnonzero(edits.relocated).tolist()]


class _Steps:
    """The four-step progress bar of :func:`corrupt_annotations` (nothing without ``progress``)."""

    def __init__(self, progress: bool) -> None:
        self.bar = progress_bar(4, "corrupt", unit="step", leave=False) if progress else None

    def step(self, *, last: bool = False) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if last:
                self.bar.close()


def _measure(
    clean: list[Annotations],
    noisy: list[CorruptedBoxes],
    names: list[str],
    tool: dict[str, Any],
    settings: dict[str, Any],
    output_path: Path,
    *,
    several: bool,
) -> list[CorruptionResult]:
    """One result per input: its IoU figures, its provenance and where it is written."""
    results = []
    for name, ann, part in zip(names, clean, noisy, strict=True):
        stats = compare_annotations(
            ann, part.annotations, include=part.eligible, relocated=_relocated_ids(ann, part.edits)
        ).with_record_counts(part.counts)
        provenance = {
            **tool,
            "source": name,
            "format": ann.format,
            **({"sources": names} if several else {}),
            "iou": stats.to_dict(),
            **settings,
            "counts": part.counts,
        }
        results.append(
            CorruptionResult(
                stats=stats,
                provenance=provenance,
                output_path=output_path / name if several else output_path,
                annotations=part.annotations,
                counts=part.counts,
                clean=ann,
                eligible=part.eligible,
                warnings=_duplicate_id_warnings(ann),
                edits=part.edits,
            )
        )
    return results


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
