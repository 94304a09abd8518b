"""Annotation formats: COCO JSON, Pascal VOC XML folders and YOLO txt folders.

Readers produce :class:`Annotations` (absolute ``xyxy`` boxes); writers put changed boxes
back into the original document and preserve everything else.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from noisybox._fileio import (
    atomic_write_bytes,
    check_outputs,
    check_replaceable_annotations,
    check_side_files,
    staged,
)
from noisybox.boxes import box_convert
from noisybox.errors import NoisyboxError
from noisybox.formats._io import MANIFEST_NAME, changed_rows
from noisybox.formats.annotations import Annotations, concat_annotations
from noisybox.formats.coco import read_coco, snap_coco, write_coco
from noisybox.formats.edits import RecordEdits, read_provenance
from noisybox.formats.images import default_image_root, load_image, resolve_image_root
from noisybox.formats.voc import read_voc, snap_voc, write_voc
from noisybox.formats.yolo import read_yolo, snap_yolo, write_yolo

__all__ = [
    "FORMATS",
    "MANIFEST_NAME",
    "Annotations",
    "RecordEdits",
    "concat_annotations",
    "default_image_root",
    "detect_format",
    "load_image",
    "read_annotations",
    "read_provenance",
    "resolve_image_root",
    "snap_boxes",
    "to_coco_dict",
    "write_annotations",
]

FORMATS: tuple[str, ...] = ("coco", "voc", "yolo")


def detect_format(path: str | os.PathLike[str]) -> str:
    """Guess the format of ``path``.

    ``*.json`` is COCO; a folder holding ``Annotations/`` or ``*.xml`` is VOC; a folder
    holding ``labels/`` or ``*.txt`` is YOLO.

    Raises:
        NoisyboxError: if ``path`` does not exist or matches no format.
    """
    p = Path(path)
    if not p.exists():
        raise NoisyboxError(f"Expected an existing annotation file or folder but got {path}")
    if p.is_file():
        if p.suffix.lower() == ".json":
            return "coco"
        raise NoisyboxError(f"Expected a COCO .json file or a VOC/YOLO folder but got {path}")
    if (p / "Annotations").is_dir() or any(p.glob("*.xml")):
        return "voc"
    if (p / "labels").is_dir() or any(p.glob("*.txt")) or p.name == "labels":
        return "yolo"
    raise NoisyboxError(f"Expected a COCO .json file or a VOC/YOLO folder but got {path}")


def _check_format(format: str) -> str:
    if format not in FORMATS:
        raise NoisyboxError(f"Expected format in {list(FORMATS)} but got {format!r}")
    return format


def read_annotations(
    path: str | os.PathLike[str],
    format: str | None = None,
    *,
    image_set: str | None = None,
    image_root: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> Annotations:
    """Read an annotation set in any supported format.

    Args:
        path: COCO json file, VOC year folder, or YOLO dataset/labels folder.
        format: ``"coco"``, ``"voc"`` or ``"yolo"``; detected from ``path`` when ``None``.
        image_set: VOC only, the ``ImageSets/Main`` list to read.
        image_root: YOLO only, the images folder if not the sibling ``images``.
        progress: a progress bar on stderr for the per-file formats.

    Raises:
        NoisyboxError: for a missing path, an unknown format or malformed content.
    """
    fmt = _check_format(format) if format is not None else detect_format(path)
    if not Path(path).exists():
        raise NoisyboxError(f"Expected an existing annotation file or folder but got {path}")
    if fmt == "coco":
        if not Path(path).is_file():
            kind = "the folder" if Path(path).is_dir() else "the special file"
            raise NoisyboxError(f"Expected a COCO .json file but got {kind} {path}")
        return read_coco(path)
    if fmt == "voc":
        return read_voc(path, image_set=image_set, progress=progress)
    return read_yolo(path, image_root=image_root, progress=progress)


def snap_boxes(ann: Annotations, boxes: np.ndarray) -> np.ndarray:
    """``boxes`` as the writer of ``ann.format`` will store them.

    Rows equal to ``ann.boxes`` are kept bit for bit (the writer leaves them alone); the
    others are rounded as written (COCO 2 decimals, VOC integer corners, YOLO 6 decimals of
    the normalised values), so IoU measured on the result is IoU of what was written.

    Args:
        ann: the clean annotations the noisy ``boxes`` derive from.
        boxes: ``float64[N, 4]`` noisy absolute ``xyxy``.

    Returns:
        ``float64[N, 4]``.
    """
    out = np.array(boxes, dtype=np.float64, copy=True)
    changed = np.flatnonzero(changed_rows(out, ann.boxes))
    if changed.size == 0:
        return out
    sizes = ann.box_image_sizes()[changed]
    if ann.format == "coco":
        out[changed] = snap_coco(out[changed])
    elif ann.format == "voc":
        out[changed] = snap_voc(out[changed], sizes)
    elif ann.format == "yolo":
        out[changed] = snap_yolo(out[changed], sizes)
    return out


def write_annotations(
    ann: Annotations,
    output_path: str | os.PathLike[str],
    *,
    provenance: dict[str, Any] | None = None,
    progress: bool = False,
    extra_files: dict[str, bytes] | None = None,
    edits: RecordEdits | None = None,
) -> None:
    """Write ``ann`` in its own format, atomically, preserving everything but changed boxes
    (and, with ``edits``, the records dropped, relabelled or added).

    COCO writes one json file (provenance in ``info["noisybox"]``); VOC and YOLO write a
    folder with ``noisybox-manifest.json`` beside the annotations. ``extra_files``
    (name -> content; VOC and COCO) are written into the VOC folder, or beside the COCO
    file, all or none with it.

    Raises:
        NoisyboxError: if ``output_path`` (or an extra file) is the input, or is a non-empty
            folder that is not an earlier noisybox output.
    """
    extra = {f"the output's {name}": Path(output_path).parent / name for name in extra_files or {}}
    check_outputs(
        {"the output": output_path, **(extra if ann.format == "coco" else {})},
        {"": ann.source},
        folders=() if ann.format == "coco" else ("the output",),
    )
    if extra_files and ann.format not in ("voc", "coco"):
        raise NoisyboxError(
            f"Expected extra files with VOC or COCO output only but got {ann.format!r}"
        )
    if ann.format == "coco":
        check_replaceable_annotations(output_path)
        check_side_files(output_path, [Path(output_path).parent / n for n in extra_files or {}])
        with staged():
            write_coco(ann, output_path, provenance=provenance, edits=edits)
            for name, content in (extra_files or {}).items():
                atomic_write_bytes(Path(output_path).parent / name, content)
    elif ann.format == "voc":
        write_voc(
            ann,
            output_path,
            provenance=provenance,
            progress=progress,
            extra_files=extra_files,
            edits=edits,
        )
    elif ann.format == "yolo":
        write_yolo(ann, output_path, provenance=provenance, progress=progress, edits=edits)
    else:
        raise NoisyboxError(f"Expected format in {list(FORMATS)} but got {ann.format!r}")


def to_coco_dict(ann: Annotations) -> dict[str, Any]:
    """A COCO ground-truth dict for ``ann`` (any source format), usable by pycocotools.

    Images keep ``ann.image_ids``; annotation ids are the COCO ids for COCO input and
    ``1..N`` otherwise; ``bbox`` is ``[x, y, w, h]`` of ``ann.boxes``; ``area`` is the
    original COCO ``area`` where there is one (the segmentation area), else ``w * h``.

    >>> ann = Annotations(np.array([7]), np.array([[10.0, 10.0]]), ["a.jpg"], np.array([0]),
    ...     np.array([[1.0, 2.0, 4.0, 6.0]]), np.array([3]), np.array([False]), ["a.txt:1"],
    ...     {3: "cat"}, "yolo", "x")
    >>> to_coco_dict(ann)["annotations"]
    [{'id': 1, 'image_id': 7, 'category_id': 3, 'bbox': [1.0, 2.0, 3.0, 4.0], 'area': 12.0, 'iscrowd': 0}]
    """
    xywh = box_convert(ann.boxes, "xyxy", "xywh")
    areas = (xywh[:, 2] * xywh[:, 3]).tolist()
    ids: list[Any] = list(range(1, ann.num_boxes + 1))
    doc = ann.document
    if ann.format == "coco" and doc is not None:
        ids = list(ann.record_ids)
        src = doc.data["annotations"]
        areas = [a.get("area", ar) for a, ar in zip(src, areas, strict=True)]
    image_ids = ann.image_ids.tolist()
    images = [
        {"id": i, "width": w, "height": h, "file_name": f}
        for i, (w, h), f in zip(image_ids, ann.image_sizes.tolist(), ann.file_names, strict=True)
    ]
    annotations = [
        {
            "id": rid,
            "image_id": image_ids[r],
            "category_id": c,
            "bbox": b,
            "area": a,
            "iscrowd": int(z),
        }
        for rid, r, c, b, a, z in zip(
            ids,
            ann.box_image_index.tolist(),
            ann.categories.tolist(),
            xywh.tolist(),
            areas,
            ann.iscrowd.tolist(),
            strict=True,
        )
    ]
    used = set(ann.categories.tolist()) | set(ann.category_names)
    categories = [
        {"id": int(k), "name": ann.category_names.get(int(k), str(k))} for k in sorted(used)
    ]
    return {"images": images, "annotations": annotations, "categories": categories}
