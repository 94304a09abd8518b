"""COCO JSON: read into :class:`Annotations`, write perturbed boxes back into the document.

Choices, and why:

* Parsing and writing use ``orjson`` (about 5x faster than ``json`` on COCO train2017).
  Values round-trip exactly: key order, ids, segmentation, every other key and number are
  preserved. The *text* is compact orjson (no whitespace, floats in shortest round-trip form,
  e.g. ``1e-7`` where ``json`` writes ``1e-07``). Documents orjson cannot hold (integers
  beyond 64 bits, or the non-standard ``NaN``/``Infinity``) are read and written with the
  standard ``json`` module instead, so their values survive too.
* Perturbed boxes are written with :data:`COCO_DECIMALS` decimals, COCO's own precision;
  the IoU figures are measured on the rounded boxes, i.e. on what was written.
* ``area`` is kept as it is. In COCO it is the *segmentation* area and pycocotools uses it
  for the small/medium/large ranges; noise on the box does not change the object, so
  keeping it keeps every object in the same size bucket as in the clean set.
* ``iscrowd = 1`` annotations are read (flag in ``Annotations.iscrowd``) and left alone
  by :func:`noisybox.corrupt.corrupt_annotations`.
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from noisybox._fileio import atomic_write_bytes, compact_json, parse_json
from noisybox.boxes import box_convert
from noisybox.errors import NoisyboxError
from noisybox.formats._io import changed_rows
from noisybox.formats.annotations import Annotations
from noisybox.formats.edits import RecordEdits

__all__ = [
    "COCO_CLASSES",
    "COCO_DECIMALS",
    "CocoDocument",
    "read_coco",
    "read_coco_json",
    "snap_coco",
    "write_coco",
]

COCO_DECIMALS = 2

#: The 80 category names of COCO 2017 detection, in the order of its category ids.
COCO_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush",
)  # fmt: skip


@dataclasses.dataclass
class CocoDocument:
    """The parsed file and the boxes as read (``xyxy``), to write back only what changed."""

    data: dict[str, Any]
    boxes: np.ndarray
    stdlib_json: bool = False


def read_coco_json(path: Path) -> tuple[Any, bool]:
    """The parsed JSON document of a COCO file and whether the standard library parsed it
    (see :func:`noisybox._fileio.parse_json`); an unreadable file is one error line.

    Raises:
        NoisyboxError: the file cannot be read or is not JSON noisybox can hold.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NoisyboxError(
            f"Expected a readable COCO file but got {exc.strerror}: {path}"
        ) from None
    return parse_json(raw, path, what="valid JSON")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def read_coco(path: str | os.PathLike[str]) -> Annotations:
    """Read a COCO detection file.

    Args:
        path: a COCO ``instances_*.json``.

    Returns:
        :class:`Annotations` with one box row per entry of ``annotations`` (in file order,
        crowd ones included) and ``document`` a :class:`CocoDocument`.

    Raises:
        NoisyboxError: for malformed JSON, missing ``images``/``annotations``, images without
            a positive ``width``/``height``, duplicate image ids, annotations without a
            4-number ``bbox`` or pointing to an unknown image. Invalid box *values* (zero,
            negative, out of image, non-finite) are reported later by the caller's policy.
    """
    path = Path(path)
    data, stdlib_json = read_coco_json(path)
    if not isinstance(data, dict):
        raise NoisyboxError(
            f"Expected a JSON object at the top of {path} but got {type(data).__name__}"
        )
    for key in ("images", "annotations"):
        if not isinstance(data.get(key), list):
            raise NoisyboxError(
                f"Expected a list '{key}' in {path} but got {type(data.get(key)).__name__}"
            )
    images = data["images"]
    id_to_row: dict[Any, int] = {}
    sizes = np.empty((len(images), 2), dtype=np.float64)
    file_names: list[str] = []
    for row, img in enumerate(images):
        if not isinstance(img, dict) or "id" not in img:
            raise NoisyboxError(
                f"Expected an image object with an 'id' but got {str(img)[:80]} in {path} (images[{row}])"
            )
        image_id = img["id"]
        if not _int64(image_id):
            raise NoisyboxError(
                f"Expected an integer image id within 64 bits but got {str(image_id)[:40]} "
                f"in {path} (images[{row}])"
            )
        for key in ("width", "height"):
            value: Any = img.get(key)
            # the range first: math.isfinite of an int beyond a float raises OverflowError
            if not _number(value) or not 0 < value < 2**31 or not math.isfinite(value):
                raise NoisyboxError(
                    f"Expected image {key} > 0 (and below 2**31) but got {value!r} in {path} (image id {image_id})"
                )
        if image_id in id_to_row:
            raise NoisyboxError(f"Expected unique image ids but got {image_id!r} twice in {path}")
        id_to_row[image_id] = row
        sizes[row] = (img["width"], img["height"])
        file_names.append(str(img.get("file_name", "")))
    anns = data["annotations"]
    try:
        for a in anns:
            box = a["bbox"]
            if (
                type(box) is not list
                or not all(type(v) is float or type(v) is int for v in box)
                or type(a.get("category_id", 0)) is not int
                or type(a["id"]) not in (int, str)
            ):
                raise TypeError("annotation")
        bbox = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(len(anns), 4)
        record_ids = [a["id"] for a in anns]
        image_rows = np.array([id_to_row[a["image_id"]] for a in anns], dtype=np.int64)
        categories = np.array([a.get("category_id", 0) for a in anns], dtype=np.int64)
        iscrowd = np.array([bool(a.get("iscrowd", 0)) for a in anns], dtype=bool)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError):
        _diagnose(path, anns, id_to_row)
        raise NoisyboxError(f"Expected COCO annotations but got malformed ones in {path}") from None
    boxes = box_convert(bbox, "xywh", "xyxy")
    names = _category_names(path, data, anns)
    return Annotations(
        image_ids=np.array([img["id"] for img in images], dtype=np.int64),
        image_sizes=sizes,
        file_names=file_names,
        box_image_index=image_rows,
        boxes=boxes,
        categories=categories,
        iscrowd=iscrowd,
        record_ids=record_ids,
        category_names=names,
        format="coco",
        source=str(path),
        document=CocoDocument(data=data, boxes=boxes.copy(), stdlib_json=stdlib_json),
    )


_INT64 = (-(2**63), 2**63 - 1)


def _int64(value: Any) -> bool:
    return type(value) is int and _INT64[0] <= value <= _INT64[1]


def _category_names(path: Path, data: dict[str, Any], anns: list[Any]) -> dict[int, str]:
    """``categories`` as id -> name; every annotation's ``category_id`` must be one of them.

    Raises:
        NoisyboxError: no ``categories`` list, an entry without an integer ``id``, an id
            listed twice, or an annotation whose ``category_id`` is not listed.
    """
    cats = data.get("categories")
    if not isinstance(cats, list):
        raise NoisyboxError(f"Expected a list 'categories' in {path} but got {type(cats).__name__}")
    names: dict[int, str] = {}
    for row, cat in enumerate(cats):
        if not isinstance(cat, dict) or not _int64(cat.get("id")):
            raise NoisyboxError(
                f"Expected a category object with an integer 'id' but got {str(cat)[:80]} "
                f"in {path} (categories[{row}])"
            )
        if cat["id"] in names:
            raise NoisyboxError(f"Expected unique category ids but got {cat['id']} twice in {path}")
        names[cat["id"]] = str(cat.get("name", cat["id"]))
    for a in anns:
        category = a.get("category_id", 0)
        if category not in names:
            raise NoisyboxError(
                f"Expected category_id of a listed category ({sorted(names)[:10]}) but got "
                f"{category!r} in {path} (annotation id {a['id']})"
            )
    return names


def _diagnose(path: Path, anns: list[Any], id_to_row: dict[Any, int]) -> None:
    """Raise the one-line error for the first malformed annotation."""
    for k, a in enumerate(anns):
        if not isinstance(a, dict) or "id" not in a:
            raise NoisyboxError(
                f"Expected an annotation object with an 'id' but got {str(a)[:80]} in {path} (annotations[{k}])"
            )
        rid = a["id"]
        if type(rid) not in (int, str):
            raise NoisyboxError(
                f"Expected an integer or string annotation id but got {str(rid)[:40]} in {path} "
                f"(annotations[{k}])"
            )
        box = a.get("bbox")
        if not isinstance(box, list) or len(box) != 4 or not all(_number(v) for v in box):
            raise NoisyboxError(
                f"Expected bbox as 4 numbers [x, y, w, h] but got {box!r} in {path} (annotation id {rid})"
            )
        if type(a.get("image_id")) is not int or a["image_id"] not in id_to_row:
            raise NoisyboxError(
                f"Expected image_id of a listed image but got {a.get('image_id')!r} in {path} (annotation id {rid})"
            )
        if "category_id" in a and not _int64(a["category_id"]):
            raise NoisyboxError(
                f"Expected an integer category_id within 64 bits but got {a['category_id']!r} "
                f"in {path} (annotation id {rid})"
            )
        if "iscrowd" in a and not _number(a["iscrowd"]):
            raise NoisyboxError(
                f"Expected a number iscrowd but got {a['iscrowd']!r} in {path} (annotation id {rid})"
            )


def snap_coco(boxes: np.ndarray) -> np.ndarray:
    """``xyxy`` boxes as they will read back after writing with :data:`COCO_DECIMALS`.

    >>> snap_coco(np.array([[1.234, 2.0, 3.456, 4.0]]))
    array([[1.23, 2.  , 3.46, 4.  ]])
    """
    return box_convert(_to_written_xywh(boxes), "xywh", "xyxy")


def _to_written_xywh(boxes: np.ndarray) -> np.ndarray:
    xywh = box_convert(np.round(boxes[:, :4], COCO_DECIMALS), "xyxy", "xywh")
    xywh[:, 2:] = np.round(xywh[:, 2:], COCO_DECIMALS)
    return xywh


def _edited(ann: Annotations, data: dict[str, Any], edits: RecordEdits) -> list[Any]:
    """The ``annotations`` list with ``edits`` applied."""
    edits.check(ann.num_boxes, ann.num_images)
    anns = list(data["annotations"])
    for k in edits.relabelled(ann.categories).tolist():
        entry = dict(anns[k])
        entry["category_id"] = int(edits.categories[k])
        anns[k] = entry
    out = [a for a, keep in zip(anns, edits.keep.tolist(), strict=True) if keep]
    if not edits.extra_boxes.shape[0]:
        return out
    ids = [a["id"] for a in anns]
    if not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise NoisyboxError(
            f"Expected integer annotation ids to number new annotations after but got "
            f"{next(i for i in ids if not isinstance(i, int) or isinstance(i, bool))!r} in {ann.source}"
        )
    next_id = max(ids, default=0) + 1
    written = _to_written_xywh(edits.extra_boxes)
    for j, (box, row, cat) in enumerate(
        zip(
            written.tolist(),
            edits.extra_image_index.tolist(),
            edits.extra_categories.tolist(),
            strict=True,
        )
    ):
        out.append(
            {
                "id": next_id + j,
                "image_id": data["images"][row]["id"],
                "category_id": int(cat),
                "bbox": box,
                "area": round(box[2] * box[3], COCO_DECIMALS),
                "iscrowd": 0,
            }
        )
    return out


def write_coco(
    ann: Annotations,
    output_path: str | os.PathLike[str],
    *,
    provenance: dict[str, Any] | None = None,
    edits: RecordEdits | None = None,
) -> None:
    """Write ``ann`` back into its COCO document, atomically.

    Only annotations whose box differs from the one read get a new ``bbox`` (rounded to
    :data:`COCO_DECIMALS`); everything else is the original value. ``provenance`` goes
    into ``info["noisybox"]`` (``info`` is created if absent). ``edits`` drops annotations,
    changes ``category_id`` and appends new annotations (ids after the largest one,
    ``area`` the box area, ``iscrowd`` 0); the others keep their order and every key.
    """
    doc = ann.document
    if not isinstance(doc, CocoDocument):
        raise NoisyboxError(
            f"Expected annotations read from a COCO file but got format {ann.format!r}"
        )
    changed = np.flatnonzero(changed_rows(ann.boxes, doc.boxes))
    data = dict(doc.data)
    if changed.size:
        anns = list(data["annotations"])
        written = _to_written_xywh(ann.boxes[changed]).tolist()
        for k, box in zip(changed.tolist(), written, strict=True):
            entry = dict(anns[k])
            entry["bbox"] = box
            anns[k] = entry
        data["annotations"] = anns
    if edits is not None:
        data["annotations"] = _edited(ann, data, edits)
    if provenance is not None:
        info = data.get("info")
        info = dict(info) if isinstance(info, dict) else {}
        info["noisybox"] = provenance
        data["info"] = info
    atomic_write_bytes(output_path, compact_json(data, stdlib=doc.stdlib_json))
