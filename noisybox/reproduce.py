"""Published noisy annotation sets regenerated exactly from the clean files.

:func:`oamil_voc` gives the noisy VOC2007 boxes of OA-MIL (Liu et al., ECCV 2022) for the
same clean files, number for number: the content of the ``voc07_trainval_noise-r<r>.pkl``
its ``utils/gen_noisy_voc.py`` writes. ``noisybox corrupt --reproduce oamil`` (and
``corrupt_annotations(..., reproduce="oamil")``) is the command behind it.

The source's VOC conventions, which this follows:

* **Images** in the order of ``ImageSets/Main/trainval.txt`` (read the folder with
  ``image_set="trainval"``), **boxes** in file order; one random stream for all of them.
* **Corners**: ``int(float(.))`` of the XML values minus one, all four
  (mmdetection's 0-based *inclusive* corners ``(xmin - 1, ymin - 1, xmax - 1, ymax - 1)``),
  so ``w = xmax - xmin``; noisy boxes are clipped to ``width - 1`` and ``height - 1``.
  noisybox reads VOC as ``(xmin - 1, ymin - 1, xmax, ymax)``: the noisy box
  ``(x1, y1, x2, y2)`` of the source is ``(x1, y1, x2 + 1, y2 + 1)`` here, which writes back
  the XML the source's corners stand for.
* **Difficult** boxes (``<difficult>1</difficult>``) are ignored by the source
  (``bboxes_ignore``): they draw no numbers and stay clean. Objects whose name is not one
  of VOC's 20 classes are skipped.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from noisybox.errors import NoisyboxError
from noisybox.formats.annotations import Annotations
from noisybox.formats.voc import VOC_CLASSES, VocDocument
from noisybox.noise.oamil_legacy import OAMIL_SEED, oamil_legacy_boxes

__all__ = ["REPRODUCIBLE", "OamilVoc", "oamil_voc", "oamil_voc_corners"]

REPRODUCIBLE: tuple[str, ...] = ("oamil",)
"""Published generators :func:`noisybox.corrupt.corrupt_annotations` can reproduce."""


@dataclasses.dataclass
class OamilVoc:
    """What :func:`oamil_voc` made.

    Attributes:
        infos: one dict per image, the content of the source's pickle: ``filename``,
            ``width``, ``height`` and ``ann`` with ``bboxes`` (noisy, ``float32``, 0-based
            inclusive corners), ``labels``, ``bboxes_ignore``, ``labels_ignore``.
        annotations: the noisy :class:`Annotations` in noisybox's convention, not rounded.
        perturbed: ``bool[N]`` the boxes the source gives noise (not difficult, a VOC class).
    """

    infos: list[dict[str, Any]]
    annotations: Annotations
    perturbed: np.ndarray


def oamil_voc_corners(ann: Annotations) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(corners, sizes, perturbed)``: every box in OA-MIL's corners (``float32[N, 4]``),
    its image's integer ``(width, height)`` (``int64[N, 2]``) and whether the source
    perturbs it (``bool[N]``).

    Raises:
        NoisyboxError: if ``ann`` was not read from a VOC folder.
    """
    doc = ann.document
    if ann.format != "voc" or not isinstance(doc, VocDocument) or doc.difficult is None:
        raise NoisyboxError(
            f"Expected a VOC folder for --reproduce oamil but got format {ann.format!r} "
            f"({ann.source})"
        )
    b = np.asarray(ann.boxes, dtype=np.float64)
    xml = np.stack([b[:, 0] + 1.0, b[:, 1] + 1.0, b[:, 2], b[:, 3]], axis=1)
    corners = (np.trunc(np.round(xml, 9)) - 1.0).astype(np.float32)
    sizes = np.trunc(ann.image_sizes).astype(np.int64)[ann.box_image_index].reshape(-1, 2)
    named = np.asarray(ann.categories) < len(VOC_CLASSES)
    perturbed = named & ~np.asarray(doc.difficult, dtype=bool)
    return corners, sizes, perturbed


def oamil_voc(ann: Annotations, box_noise_level: float, *, seed: int = OAMIL_SEED) -> OamilVoc:
    """OA-MIL's noisy VOC boxes for the clean set ``ann``.

    Args:
        ann: a VOC year folder read with ``image_set="trainval"`` (the source's list; any
            list gives the source's result for that list).
        box_noise_level: the source's ``r`` (its tables: 0.1 ... 0.4), in ``[0, 1)``.
        seed: seed of the legacy ``numpy.random.RandomState`` (the source's is 45).

    Returns:
        :class:`OamilVoc`.

    Raises:
        NoisyboxError: for input not read from a VOC folder or a level outside ``[0, 1)``.

    Reference:
        Liu et al., ECCV 2022, ``utils/gen_noisy_voc.py`` and ``utils/voc07_dataset.py``.
    """
    if not (0.0 <= float(box_noise_level) < 1.0):
        raise NoisyboxError(f"Expected eta in [0, 1) but got {box_noise_level}")
    corners, sizes, perturbed = oamil_voc_corners(ann)
    rows = np.flatnonzero(perturbed)
    noisy_corners = corners.copy()
    noisy_corners[rows] = oamil_legacy_boxes(
        corners[rows], sizes[rows], box_noise_level, np.random.RandomState(seed)
    )
    noisy = np.array(ann.boxes, dtype=np.float64, copy=True)
    moved = rows[np.any(noisy_corners[rows] != corners[rows], axis=1)]
    noisy[moved] = noisy_corners[moved].astype(np.float64) + [0.0, 0.0, 1.0, 1.0]
    return OamilVoc(
        infos=_infos(ann, noisy_corners, corners, perturbed, float(box_noise_level)),
        annotations=ann.with_boxes(noisy),
        perturbed=perturbed,
    )


def _infos(
    ann: Annotations,
    noisy: np.ndarray,
    clean: np.ndarray,
    perturbed: np.ndarray,
    level: float,
) -> list[dict[str, Any]]:
    """The source's per-image records, as its pickle holds them."""
    doc = ann.document
    assert isinstance(doc, VocDocument)
    named = np.asarray(ann.categories) < len(VOC_CLASSES)
    labels = np.asarray(ann.categories, dtype=np.int64)
    out = []
    for i, xml_name in enumerate(doc.xml_files):
        on_image = np.asarray(ann.box_image_index) == i
        keep, ignore = on_image & perturbed, on_image & named & ~perturbed

        def boxes(rows: np.ndarray, source: np.ndarray) -> np.ndarray:
            return source[rows].astype(np.float32).reshape(-1, 4)

        bboxes = boxes(keep, noisy)
        if level > 0 and not keep.any():
            # the source's np.array([]).astype(np.float32) for an image with no box to perturb
            bboxes = np.zeros((0,), dtype=np.float32)
        out.append(
            {
                "filename": f"JPEGImages/{xml_name[: -len('.xml')]}.jpg",
                "width": int(ann.image_sizes[i, 0]),
                "height": int(ann.image_sizes[i, 1]),
                "ann": {
                    "bboxes": bboxes,
                    "labels": labels[keep],
                    "bboxes_ignore": boxes(ignore, clean),
                    "labels_ignore": labels[ignore],
                },
            }
        )
    return out
