"""OA-MIL's published noisy annotation sets regenerated exactly from the clean files.

The one room of the OA-MIL protocol past its noise draw (the draw itself,
:func:`~noisybox.noise.published.oamil_legacy_boxes`, is a noise model): the source's
conventions, the settings a reproduction accepts (:func:`check_reproduce`), the boxes and
the pickle the source writes (:func:`reproduce_oamil`), and what the manifest records
(:data:`REPRODUCE_SETTINGS`).

:func:`oamil_voc` gives the noisy VOC2007 boxes of OA-MIL (Liu et al., ECCV 2022) for the
same clean files, number for number: the content of the ``voc07_trainval_noise-r<r>.pkl``
its ``utils/gen_noisy_voc.py`` writes. :func:`oamil_coco` does the same for its COCO
generator, ``utils/gen_noisy_coco.py`` (``coco2017_train_noise-r<r>.pkl``).
``noisybox corrupt --reproduce oamil`` (and ``corrupt_annotations(..., reproduce="oamil")``)
is the command behind both.

The source's VOC conventions, which :func:`oamil_voc` follows:

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

The source's COCO conventions (its ``utils/coco_dataset.py``, mmdetection's
``CocoDataset``), which :func:`oamil_coco` follows:

* **Images** in the file's ``images`` order, **annotations** of each image in the file's
  ``annotations`` order (pycocotools' index); one random stream for all of them.
* **Corners** ``(x, y, x + w, y + h)`` of ``bbox``, stored as float32; the noise is the
  VOC one (clipped to ``width - 1`` / ``height - 1``, an invalid box replaced by the clean
  one) in NumPy 1.x's arithmetic (see :func:`~noisybox.noise.oamil_legacy.oamil_legacy_boxes`).
* **Left clean, drawing nothing:** crowd boxes (``bboxes_ignore``), and boxes the source
  skips: ``ignore`` set, no overlap with the image, ``area <= 0``, ``w < 1`` or ``h < 1``,
  or a category whose name is not one of COCO's 80 (:data:`~noisybox.formats.coco.COCO_CLASSES`).
  Labels are the index of the category among the file's categories with such a name.
* noisybox writes the noisy ``bbox`` values rounded to 2 decimals (its COCO convention);
  the pickle holds the exact float32 corners.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Sequence
from typing import Any

import numpy as np

from noisybox.corrupt.in_memory import DEFAULT_SEED, CorruptedBoxes
from noisybox.errors import NoisyboxError
from noisybox.formats import snap_boxes
from noisybox.formats._io import changed_rows
from noisybox.formats.annotations import Annotations
from noisybox.formats.coco import COCO_CLASSES, CocoDocument
from noisybox.formats.voc import VOC_CLASSES, VocDocument
from noisybox.noise.published import OAMIL_SEED, oamil_legacy_boxes
from noisybox.noise.spec import NoiseSpec

__all__ = [
    "COCO_CONVENTIONS",
    "REPRODUCE_SETTINGS",
    "REPRODUCIBLE",
    "OamilVoc",
    "check_reproduce",
    "oamil_coco",
    "oamil_coco_corners",
    "oamil_voc",
    "oamil_voc_corners",
    "reproduce_oamil",
]

REPRODUCIBLE: tuple[str, ...] = ("oamil",)
"""Published generators :func:`noisybox.corrupt.corrupt_annotations` can reproduce."""

REPRODUCE_SETTINGS: dict[str, dict[str, Any]] = {
    "oamil": {
        "reproduce": "oamil",
        "model": "oamil",
        "boundary": "truncate",
        "min_size": None,
        "on_invalid": None,
        "generator": "numpy.random.RandomState(45), the legacy global generator of np.random.seed(45)",
        "conventions": (
            "OA-MIL utils/gen_noisy_voc.py: images in image-set order, boxes in file order, "
            "corners int(float(.)) - 1 (0-based inclusive), clipped to width - 1 and "
            "height - 1, an invalid noisy box replaced by the clean one, difficult boxes and "
            "objects outside VOC's 20 classes left clean and drawing nothing"
        ),
    }
}
"""What the manifest records of each reproduction, over the settings that do not apply."""

#: The ``conventions`` the manifest records for a COCO input (the VOC ones are above).
COCO_CONVENTIONS = (
    "OA-MIL utils/gen_noisy_coco.py: images in file order, each image's annotations in file "
    "order, corners (x, y, x + w, y + h) as float32, clipped to width - 1 and height - 1, "
    "an invalid noisy box replaced by the clean one, crowd boxes and those the source skips "
    "(ignore, no overlap with the image, area <= 0, w or h < 1, not one of COCO's 80 "
    "classes) left clean and drawing nothing"
)


@dataclasses.dataclass
class OamilVoc:
    """What :func:`oamil_voc` (and :func:`oamil_coco`) made.

    Attributes:
        infos: one dict per image, the content of the source's pickle: for VOC
            ``filename``, ``width``, ``height`` and ``ann`` with ``bboxes`` (noisy,
            ``float32``, 0-based inclusive corners), ``labels``, ``bboxes_ignore``,
            ``labels_ignore``; for COCO the image's own keys, ``filename`` and ``ann`` with
            ``bboxes``, ``labels`` and ``bboxes_ignore``.
        annotations: the noisy :class:`Annotations` in noisybox's convention, not rounded.
        perturbed: ``bool[N]`` the boxes the source gives noise (VOC: not difficult, a VOC
            class; COCO: see the module's conventions).
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
    _check_level(box_noise_level)
    corners, sizes, perturbed = oamil_voc_corners(ann)
    rows = np.flatnonzero(perturbed)
    noisy_corners, noisy = _perturb(
        ann, corners, sizes, rows, box_noise_level, seed, offset=(0.0, 0.0, 1.0, 1.0)
    )
    return OamilVoc(
        infos=_infos(ann, noisy_corners, corners, perturbed, float(box_noise_level)),
        annotations=ann.with_boxes(noisy),
        perturbed=perturbed,
    )


def _check_level(box_noise_level: float) -> None:
    if not (0.0 <= float(box_noise_level) < 1.0):
        raise NoisyboxError(f"Expected eta in [0, 1) but got {box_noise_level}")


def _perturb(
    ann: Annotations,
    corners: np.ndarray,
    sizes: np.ndarray,
    rows: np.ndarray,
    level: float,
    seed: int,
    offset: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0),
) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy_corners, noisy_boxes)``: the source's draws for ``rows`` in that order, and
    the boxes in noisybox's convention (a moved box is its noisy corners plus ``offset``,
    every other box stays as read)."""
    noisy_corners = corners.copy()
    noisy_corners[rows] = oamil_legacy_boxes(
        corners[rows], sizes[rows], level, np.random.RandomState(seed)
    )
    noisy = np.array(ann.boxes, dtype=np.float64, copy=True)
    moved = rows[np.any(noisy_corners[rows] != corners[rows], axis=1)]
    noisy[moved] = noisy_corners[moved].astype(np.float64) + np.asarray(offset)
    return noisy_corners, noisy


def _rows_by_image(image_rows: np.ndarray, num_images: int) -> list[np.ndarray]:
    """The box rows of each image, in file order (one sort, not a scan per image).

    >>> [r.tolist() for r in _rows_by_image(np.array([1, 0, 1, 0]), 3)]
    [[1, 3], [0, 2], []]
    """
    image_rows = np.asarray(image_rows)
    order = np.argsort(image_rows, kind="stable")
    bounds = np.searchsorted(image_rows[order], np.arange(num_images + 1))
    return [order[bounds[i] : bounds[i + 1]] for i in range(num_images)]


def _source_bboxes(rows: np.ndarray, boxes: np.ndarray, level: float) -> np.ndarray:
    """The source's noisy ``bboxes`` of one image: ``float32[K, 4]``, or for an image with
    no box to perturb at a level > 0 its ``np.array([]).astype(np.float32)``."""
    if level > 0 and not rows.size:
        return np.zeros((0,), dtype=np.float32)
    return boxes[rows].astype(np.float32).reshape(-1, 4)


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
    by_image = _rows_by_image(ann.box_image_index, len(doc.xml_files))
    for i, (xml_name, rows) in enumerate(zip(doc.xml_files, by_image, strict=True)):
        keep, ignore = rows[perturbed[rows]], rows[named[rows] & ~perturbed[rows]]
        out.append(
            {
                "filename": f"JPEGImages/{xml_name[: -len('.xml')]}.jpg",
                "width": int(ann.image_sizes[i, 0]),
                "height": int(ann.image_sizes[i, 1]),
                "ann": {
                    "bboxes": _source_bboxes(keep, noisy, level),
                    "labels": labels[keep],
                    "bboxes_ignore": clean[ignore].astype(np.float32).reshape(-1, 4),
                    "labels_ignore": labels[ignore],
                },
            }
        )
    return out


def oamil_coco_corners(
    ann: Annotations,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(corners, sizes, perturbed, ignored, labels)`` of a COCO set as OA-MIL reads it.

    ``corners`` ``float32[N, 4]`` ``(x, y, x + w, y + h)``; ``sizes`` ``float64[N, 2]``
    the image's ``(width, height)`` as the file gives them; ``perturbed`` ``bool[N]`` the boxes it gives noise;
    ``ignored`` ``bool[N]`` its ``bboxes_ignore`` (crowd boxes it keeps clean); ``labels``
    ``int64[N]`` its label of each box (-1 where it has none).

    Raises:
        NoisyboxError: ``ann`` was not read from a COCO file, or an annotation the source
            reads has no ``area`` (the source needs one).
    """
    doc = ann.document
    if ann.format != "coco" or not isinstance(doc, CocoDocument):
        raise NoisyboxError(
            f"Expected a COCO file for --reproduce oamil but got format {ann.format!r} "
            f"({ann.source})"
        )
    cats = [c for c in doc.data.get("categories") or [] if isinstance(c, dict)]
    cat_ids = [c.get("id") for c in cats if c.get("name") in COCO_CLASSES]
    label_of = {cat_id: i for i, cat_id in enumerate(cat_ids)}
    images = doc.data["images"]
    n = ann.num_boxes
    corners = np.zeros((n, 4), dtype=np.float32)
    sizes = np.asarray(ann.image_sizes, dtype=np.float64)[np.asarray(ann.box_image_index)]
    perturbed = np.zeros(n, dtype=bool)
    ignored = np.zeros(n, dtype=bool)
    labels = np.full(n, -1, dtype=np.int64)
    rows = np.asarray(ann.box_image_index).tolist()
    kept: list[int] = []
    kept_corners: list[list[float]] = []
    for k, a in enumerate(doc.data["annotations"]):
        img = images[rows[k]]
        width, height = img["width"], img["height"]
        if a.get("ignore", False):
            continue
        x1, y1, w, h = a["bbox"]
        inter_w = max(0, min(x1 + w, width) - max(x1, 0))
        inter_h = max(0, min(y1 + h, height) - max(y1, 0))
        if inter_w * inter_h == 0:
            continue
        area = a.get("area")
        if not isinstance(area, (int, float)) or isinstance(area, bool):
            raise NoisyboxError(
                f"Expected a number area in every annotation for --reproduce oamil (the "
                f"source reads it) but got {area!r} in {ann.source} (annotation id "
                f"{a.get('id')})"
            )
        if area <= 0 or w < 1 or h < 1 or a.get("category_id") not in label_of:
            continue
        kept.append(k)
        kept_corners.append([x1, y1, x1 + w, y1 + h])  # Python floats, as the source
        if a.get("iscrowd", False):
            ignored[k] = True
        else:
            perturbed[k] = True
            labels[k] = label_of[a["category_id"]]
    if kept:
        corners[kept] = np.array(kept_corners, dtype=np.float32)
    return corners, sizes, perturbed, ignored, labels


def oamil_coco(ann: Annotations, box_noise_level: float, *, seed: int = OAMIL_SEED) -> OamilVoc:
    """OA-MIL's noisy COCO boxes for the clean set ``ann``.

    Args:
        ann: a COCO file (the source's is ``instances_train2017.json``).
        box_noise_level: the source's ``r`` (its tables: 0.2 and 0.4), in ``[0, 1)``.
        seed: seed of the legacy ``numpy.random.RandomState`` (the source's is 45).

    Returns:
        :class:`OamilVoc` (``infos`` is the content of the source's
        ``coco2017_train_noise-r<r>.pkl``).

    Raises:
        NoisyboxError: for input not read from a COCO file or a level outside ``[0, 1)``.

    Reference:
        Liu et al., ECCV 2022, ``utils/gen_noisy_coco.py`` and ``utils/coco_dataset.py``.
    """
    _check_level(box_noise_level)
    corners, sizes, perturbed, ignored, labels = oamil_coco_corners(ann)
    doc = ann.document
    assert isinstance(doc, CocoDocument)
    images = doc.data["images"]
    by_image = _rows_by_image(ann.box_image_index, len(images))
    keeps = [rows[perturbed[rows]] for rows in by_image]
    draw_order = np.concatenate([np.zeros(0, dtype=np.int64), *keeps])  # image by image
    noisy_corners, noisy = _perturb(ann, corners, sizes, draw_order, box_noise_level, seed)
    infos = []
    for img, rows, keep in zip(images, by_image, keeps, strict=True):
        info = {**img, "filename": img.get("file_name")}
        info["ann"] = {
            "bboxes": _source_bboxes(keep, noisy_corners, box_noise_level),
            "labels": labels[keep],
            "bboxes_ignore": corners[rows[ignored[rows]]].reshape(-1, 4),
        }
        infos.append(info)
    return OamilVoc(infos=infos, annotations=ann.with_boxes(noisy), perturbed=perturbed)


def check_reproduce(
    reproduce: str,
    paths: Sequence[str | os.PathLike[str]],
    spec: NoiseSpec,
    seed: int,
    format: str | None,
) -> None:
    """Refuse settings a reproduction of a published generator cannot honour.

    Raises:
        NoisyboxError: an unknown ``reproduce``, several inputs, a format other than VOC
            or COCO, per-side etas other than ``eta`` or a ratio other than 1, a seed
            other than the default or 45, a noise model or boundary other than the
            default or the source's (``oamil``, ``truncate``), or annotation-level noise
            (the source's pickle would keep the records the noisy file drops).
    """
    if reproduce not in REPRODUCIBLE:
        raise NoisyboxError(f"Expected reproduce in {list(REPRODUCIBLE)} but got {reproduce!r}")
    if len(paths) != 1:
        raise NoisyboxError(
            f"Expected one VOC folder or COCO file with --reproduce {reproduce} but got "
            f"{len(paths)} inputs"
        )
    if format not in (None, "voc", "coco"):
        raise NoisyboxError(
            f"Expected a VOC folder or COCO file with --reproduce {reproduce} but got format "
            f"{format!r}"
        )
    if spec.anisotropic or spec.ratio != 1.0:
        raise NoisyboxError(
            f"Expected one --eta (the source's noise level) and ratio 1 with --reproduce "
            f"{reproduce} but got eta_w={spec.eta_w}, eta_h={spec.eta_h}, ratio={spec.ratio}"
        )
    source = REPRODUCE_SETTINGS[reproduce]
    for name, value, default in (
        ("noise-model", spec.noise_model, "uniform"),
        ("boundary", spec.boundary, "shift"),
    ):
        own = source["model" if name == "noise-model" else name]
        if value not in (default, own):
            raise NoisyboxError(
                f"Expected no --{name} with --reproduce {reproduce} (the source's is {own}) "
                f"but got {value}"
            )
    if spec.rates:
        raise NoisyboxError(
            f"Expected no annotation-level noise with --reproduce {reproduce} (the source "
            f"has none, and its pickle would keep the records the noisy file drops) but got "
            f"--{', --'.join(r.replace('_', '-') for r in spec.rates)}"
        )
    if seed not in (DEFAULT_SEED, OAMIL_SEED):
        raise NoisyboxError(
            f"Expected no --seed with --reproduce {reproduce} (the source seeds numpy with "
            f"{OAMIL_SEED}) but got {seed}"
        )


def reproduce_oamil(
    ann: Annotations, eta: float, image_set: str
) -> tuple[list[CorruptedBoxes], tuple[str, bytes]]:
    """OA-MIL's boxes for ``ann`` (a VOC folder or a COCO file) as a
    :class:`CorruptedBoxes`, and its pickle's name and bytes (protocol 2, what ``mmcv.dump``
    writes).

    Raises:
        NoisyboxError: ``ann`` is neither VOC nor COCO.
    """
    if ann.format not in ("voc", "coco"):
        raise NoisyboxError(
            f"Expected a VOC folder or COCO file for --reproduce oamil but got format "
            f"{ann.format!r} ({ann.source})"
        )
    made = (oamil_coco if ann.format == "coco" else oamil_voc)(ann, eta)
    noisy_ann = ann.with_boxes(snap_boxes(ann, made.annotations.boxes))
    counts = {
        "boxes": ann.num_boxes,
        "perturbed": int(changed_rows(noisy_ann.boxes, ann.boxes).sum()),
        "crowd_untouched": 0,
        "invalid": 0,
        "skipped": 0,
        "clipped": 0,
        "ignored": int((~made.perturbed).sum()),  # difficult, crowd, or skipped by the source
    }
    if ann.format == "coco":  # the source's fixed name (its train set's pickle)
        name = f"coco2017_train_noise-r{float(eta):.1f}.pkl"
    else:
        name = f"voc07_{image_set}_noise-r{float(eta):.1f}.pkl"
    payload = pickle.dumps(made.infos, protocol=2)
    return [CorruptedBoxes(noisy_ann, made.perturbed, counts)], (name, payload)
