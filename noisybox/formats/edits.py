"""Record-level edits a writer applies besides new box coordinates: records dropped,
records given another category, and new records (annotation-level noise, see
:mod:`noisybox.noise.annotation`). Relocated records need no edit (their new box is a new
box coordinate); :class:`RecordEdits` only marks them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from noisybox._fileio import read_json_object
from noisybox.errors import NoisyboxError
from noisybox.formats._io import MANIFEST_NAME
from noisybox.formats.annotations import Annotations

__all__ = [
    "RecordEdits",
    "dropped_records",
    "read_provenance",
    "record_ids_after_drop",
    "relocated_records",
]


def record_ids_after_drop(clean: Any, dropped: Sequence[Any] | None) -> list[Any]:
    """The id each record of ``clean`` has in a copy written without the ``dropped`` ones.

    COCO ids and YOLO ``file:line`` ids survive dropped records (noisybox leaves a dropped
    YOLO line empty), so they are returned as they are. VOC ids number the objects of a
    file by position (``file.xml#k``): the objects after a dropped one move up, and a
    dropped one has no id (``None``).

    Args:
        clean: the annotations (their ``format`` and ``record_ids``).
        dropped: the clean ids of the dropped records (the manifest's
            ``annotation_noise.dropped_records``, :func:`dropped_records`), or ``None``.

    >>> class Voc:
    ...     format, record_ids = "voc", ["a.xml#0", "a.xml#1", "a.xml#2", "b.xml#0"]
    >>> record_ids_after_drop(Voc(), ["a.xml#1"])
    ['a.xml#0', None, 'a.xml#1', 'b.xml#0']
    """
    ids = list(clean.record_ids)
    if not dropped or clean.format != "voc":
        return ids
    gone_ids = set(dropped)
    gone: dict[str, int] = {}
    out: list[Any] = []
    for rid in ids:
        name, _, k = str(rid).rpartition("#")
        if rid in gone_ids:
            gone[name] = gone.get(name, 0) + 1
            out.append(None)
        else:
            out.append(f"{name}#{int(k) - gone.get(name, 0)}")
    return out


def read_provenance(ann: Annotations) -> dict[str, Any] | None:
    """The record ``noisybox corrupt`` wrote beside ``ann``, or ``None``.

    COCO keeps it in ``info["noisybox"]``; VOC and YOLO folders (and the folder of several
    inputs corrupted together) in a ``noisybox-manifest.json``, looked for in the set's
    folder and its two parents. An unreadable manifest counts as none.
    """
    data = getattr(ann.document, "data", None)
    if isinstance(data, dict) and isinstance(data.get("info"), dict):
        found = data["info"].get("noisybox")
        if found is not None:
            return found if isinstance(found, dict) else None
    source = Path(ann.source)
    for folder in (source, *source.parents[:2]):
        manifest = folder / MANIFEST_NAME
        if manifest.is_file():
            try:
                return read_json_object(manifest)
            except NoisyboxError:  # unreadable, not JSON or not an object
                return None
    return None


def dropped_records(noisy: Any) -> list[Any] | None:
    """The clean ids of the records ``noisybox corrupt --missing`` dropped from a VOC
    folder, from the folder's manifest (``annotation_noise.dropped_records``); ``None`` for
    other formats (their record ids survive dropped records) or without a manifest.

    VOC numbers objects by position (``file.xml#k``), so matching a noisy VOC folder to its
    clean one needs them (:func:`noisybox.stats.match_records`).
    """
    # a VOC document by its format, not its class: voc.py imports this module
    root = getattr(getattr(noisy, "document", None), "root", None)
    if getattr(noisy, "format", None) != "voc" or root is None:
        return None
    manifest = root / MANIFEST_NAME
    try:
        record = read_json_object(manifest).get("annotation_noise") or {}
    except NoisyboxError:
        return None
    dropped = record.get("dropped_records") if isinstance(record, dict) else None
    return list(dropped) if isinstance(dropped, list) else None


def relocated_records(noisy: Any) -> list[Any] | None:
    """The clean ids of the records ``noisybox corrupt --relocate`` gave a new box, from
    the output's provenance (``annotation_noise.relocated_records``: COCO
    ``info["noisybox"]``, VOC and YOLO manifest); ``None`` without one.

    The records keep their ids, so they match by id; the list tells the IoU of a relocated
    box (a new box, not a jittered one) apart from the box noise's
    (:func:`noisybox.stats.compare_annotations`).
    """
    prov = read_provenance(noisy) if hasattr(noisy, "document") else None
    record = prov.get("annotation_noise") if prov else None
    moved = record.get("relocated_records") if isinstance(record, dict) else None
    return list(moved) if isinstance(moved, list) else None


@dataclasses.dataclass
class RecordEdits:
    """Changes to the records of an :class:`~noisybox.formats.Annotations` of ``N`` boxes.

    Attributes:
        keep: ``bool[N]`` records written (``False``: dropped from the file).
        categories: ``int64[N]`` the category each record is written with.
        extra_boxes: ``float64[M, 4]`` new records' boxes, absolute ``xyxy``.
        extra_image_index: ``int64[M]`` image row of each new record.
        extra_categories: ``int64[M]`` category of each new record.
        relocated: ``bool[N]`` records whose box was relocated (``None``: no relocation
            asked for). Their new box is in the written :class:`Annotations`' boxes, which
            every writer writes like any other noisy box; the writers do not read this.
    """

    keep: np.ndarray
    categories: np.ndarray
    extra_boxes: np.ndarray
    extra_image_index: np.ndarray
    extra_categories: np.ndarray
    relocated: np.ndarray | None = None

    def check(self, num_boxes: int, num_images: int) -> None:
        """Raise :class:`NoisyboxError` unless the shapes fit a set of ``num_boxes`` boxes."""
        m = self.extra_boxes.shape[0]
        if (
            self.keep.shape != (num_boxes,)
            or self.categories.shape != (num_boxes,)
            or self.extra_boxes.shape != (m, 4)
            or self.extra_image_index.shape != (m,)
            or self.extra_categories.shape != (m,)
            or (self.relocated is not None and self.relocated.shape != (num_boxes,))
            or (
                m
                and (self.extra_image_index.min() < 0 or self.extra_image_index.max() >= num_images)
            )
        ):
            raise NoisyboxError(
                f"Expected record edits for {num_boxes} boxes on {num_images} images but got "
                f"keep {self.keep.shape}, categories {self.categories.shape}, "
                f"{m} new records"
            )

    def relabelled(self, categories: np.ndarray) -> np.ndarray:
        """``int[K]`` rows kept whose category differs from ``categories``."""
        return np.flatnonzero(self.keep & (self.categories != np.asarray(categories)))
