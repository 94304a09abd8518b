"""Pascal VOC XML folders.

A VOC set is a year folder (``VOC2007/``) holding ``Annotations/*.xml`` and optionally
``ImageSets/Main/<image_set>.txt`` and ``JPEGImages/``. Corners are 1-based inclusive
pixels, read as absolute ``xyxy`` with ``x1 = xmin - 1, x2 = xmax`` (detectron2's
convention) and written back as integers by default, so the written file stays a normal VOC
file. Writing edits only the numbers inside each changed object's own ``<bndbox>`` in the
raw text: the rest of every file is byte-identical.
"""

from __future__ import annotations

import dataclasses
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np

from noisybox._fileio import atomic_dir, atomic_write_json
from noisybox.errors import NoisyboxError
from noisybox.formats._io import (
    MANIFEST_NAME,
    changed_rows,
    group_by_file,
    progress_enumerate,
)
from noisybox.formats.annotations import Annotations
from noisybox.formats.edits import RecordEdits

__all__ = ["VOC_CLASSES", "VocDocument", "find_voc_root", "read_voc", "snap_voc", "write_voc"]

VOC_CLASSES: tuple[str, ...] = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)  # fmt: skip

_COORDS = ("xmin", "ymin", "xmax", "ymax")
_OBJECT_RE = re.compile(r"<object\b[^>]*>.*?</object>", re.DOTALL)
_PART_RE = re.compile(r"<part\b[^>]*>.*?</part>", re.DOTALL)
_BNDBOX_RE = re.compile(r"<bndbox\b[^>]*>.*?</bndbox>", re.DOTALL)
_COORD_RE = {c: re.compile(rf"(<{c}>\s*)([^<]*?)(\s*</{c}>)") for c in _COORDS}
_NAME_RE = re.compile(r"(<name>\s*)([^<]*?)(\s*</name>)")
_END_RE = re.compile(r"</annotation>\s*$")


@dataclasses.dataclass
class VocDocument:
    """Raw texts of the XML files (for byte-exact writing), the boxes as read, and each
    object's ``difficult`` flag (``0`` where the file gives none)."""

    root: Path
    xml_files: list[str]
    texts: list[str]
    box_file_index: np.ndarray
    box_object_index: np.ndarray
    boxes: np.ndarray
    difficult: np.ndarray | None = None


def find_voc_root(path: str | os.PathLike[str]) -> tuple[Path, Path]:
    """``(year_folder, annotations_folder)`` for a year folder or an ``Annotations`` folder.

    Raises:
        NoisyboxError: if neither holds XML files.
    """
    path = Path(path)
    if (path / "Annotations").is_dir():
        return path, path / "Annotations"
    if path.is_dir() and any(path.glob("*.xml")):
        return path.parent, path
    raise NoisyboxError(f"Expected a VOC folder with Annotations/*.xml but got {path}")


def _text(elem: ET.Element | None, tag: str) -> str | None:
    child = elem.find(tag) if elem is not None else None
    return child.text.strip() if child is not None and child.text is not None else None


def _utf8(raw: bytes, path: Path) -> str:
    """``raw`` decoded as UTF-8, or one line naming the file and the first bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoisyboxError(
            f"Expected a UTF-8 file but got byte {raw[exc.start]:#04x} at offset {exc.start} "
            f"in {path}"
        ) from None


def read_voc(
    path: str | os.PathLike[str],
    *,
    image_set: str | None = None,
    progress: bool = False,
) -> Annotations:
    """Read a VOC year folder.

    Args:
        path: the year folder (holding ``Annotations/``) or the ``Annotations`` folder.
        image_set: read only the ids listed in ``ImageSets/Main/<image_set>.txt``.
        progress: show a progress bar on stderr.

    Returns:
        :class:`Annotations`; image ids are the running index in sorted file order,
        ``file_names`` are ``JPEGImages/<filename>``, record ids ``file.xml#k`` (k-th
        object), categories index :data:`VOC_CLASSES` (names outside it are appended in
        sorted order); a folder none of whose names is a Pascal VOC class (BCCD) has its
        own names only, in sorted order.

    Raises:
        NoisyboxError: for malformed XML, a file that is not UTF-8, a missing or
            non-positive ``size``, an object without a name or a numeric ``bndbox``, or an
            image-set id without its XML.
    """
    root, ann_dir = find_voc_root(path)
    xml_paths = _xml_paths(root, ann_dir, image_set)
    sizes, file_names, texts = [], [], []
    boxes: list[list[float]] = []
    names: list[str] = []
    box_file, box_obj, record_ids = [], [], []
    difficult: list[bool] = []
    for i, xml_path in progress_enumerate(xml_paths, progress=progress, desc="reading VOC"):
        raw = xml_path.read_bytes()
        try:
            tree = ET.fromstring(raw)
        except ET.ParseError as exc:
            raise NoisyboxError(f"Expected well-formed XML but got {exc} in {xml_path}") from None
        texts.append(_utf8(raw, xml_path))
        sizes.append(_image_size(tree, xml_path))
        file_names.append("JPEGImages/" + (_text(tree, "filename") or f"{xml_path.stem}.jpg"))
        for k, obj in enumerate(tree.findall("object")):
            rid = f"{xml_path.name}#{k}"
            name, box = _object(obj, xml_path, rid)
            boxes.append(box)
            names.append(name)
            difficult.append(_text(obj, "difficult") not in (None, "", "0"))
            box_file.append(i)
            box_obj.append(k)
            record_ids.append(rid)
    extra = sorted(set(names) - set(VOC_CLASSES))
    # a dataset of other classes in VOC layout (BCCD) has its own classes only: no head
    # for the 20 Pascal classes, no relabelling into them
    classes = extra if names and set(names) <= set(extra) else list(VOC_CLASSES) + extra
    cat_of = {n: k for k, n in enumerate(classes)}
    box_arr = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    box_file_arr = np.array(box_file, dtype=np.int64)
    return Annotations(
        image_ids=np.arange(len(xml_paths), dtype=np.int64),
        image_sizes=np.array(sizes, dtype=np.float64).reshape(-1, 2),
        file_names=file_names,
        box_image_index=box_file_arr,
        boxes=box_arr,
        categories=np.array([cat_of[n] for n in names], dtype=np.int64),
        iscrowd=np.zeros(len(boxes), dtype=bool),
        record_ids=record_ids,
        category_names=dict(enumerate(classes)),
        format="voc",
        source=str(Path(path)),
        document=VocDocument(
            root=root,
            xml_files=[p.name for p in xml_paths],
            texts=texts,
            box_file_index=box_file_arr,
            box_object_index=np.array(box_obj, dtype=np.int64),
            boxes=box_arr.copy(),
            difficult=np.array(difficult, dtype=bool),
        ),
    )


def _xml_paths(root: Path, ann_dir: Path, image_set: str | None) -> list[Path]:
    """The XML files to read: those of ``ImageSets/Main/<image_set>.txt``, else every one."""
    if image_set is None:
        return sorted(ann_dir.glob("*.xml"))
    listing = root / "ImageSets" / "Main" / f"{image_set}.txt"
    if not listing.is_file():
        raise NoisyboxError(f"Expected an image set file but got no {listing}")
    stems = [
        line.split()[0]
        for line in _utf8(listing.read_bytes(), listing).splitlines()
        if line.strip()
    ]
    xml_paths = [ann_dir / f"{s}.xml" for s in stems]
    for p in xml_paths:
        if not p.is_file():
            raise NoisyboxError(f"Expected {p.name} listed in {listing} but it does not exist")
    return xml_paths


def _image_size(tree: ET.Element, xml_path: Path) -> list[float]:
    """``[width, height]`` of the ``size`` element, both finite and positive."""
    size = tree.find("size")
    wh = []
    for key in ("width", "height"):
        value = _text(size, key)
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            number = float("nan")
        if not np.isfinite(number) or number <= 0:
            raise NoisyboxError(f"Expected size/{key} > 0 but got {value!r} in {xml_path}")
        wh.append(number)
    return wh


def _object(obj: ET.Element, xml_path: Path, rid: str) -> tuple[str, list[float]]:
    """An object's name and its box, absolute ``xyxy`` (VOC's 1-based ``xmin``/``ymin``)."""
    name = _text(obj, "name")
    if not name:
        raise NoisyboxError(f"Expected an object name but got none in {xml_path} (record {rid})")
    bnd = obj.find("bndbox")
    try:
        xmin, ymin, xmax, ymax = (float(_text(bnd, c)) for c in _COORDS)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise NoisyboxError(
            f"Expected bndbox with numeric xmin, ymin, xmax, ymax but got "
            f"{[_text(bnd, c) for c in _COORDS]} in {xml_path} (record {rid})"
        ) from None
    return name, [xmin - 1.0, ymin - 1.0, xmax, ymax]


def snap_voc(boxes: np.ndarray, image_sizes: np.ndarray) -> np.ndarray:
    """``xyxy`` boxes as they read back after writing integer VOC corners.

    Corners round half up; at least one pixel wide and high; inside the image.

    >>> snap_voc(np.array([[0.4, 1.5, 2.2, 9.9]]), np.array([[10.0, 9.0]]))
    array([[0., 2., 2., 9.]])
    """
    lo = np.floor(boxes[:, 0:2] + 0.5)
    hi = np.floor(boxes[:, 2:4] + 0.5)
    lo = np.clip(lo, 0.0, np.maximum(image_sizes - 1.0, 0.0))
    hi = np.clip(np.maximum(hi, lo + 1.0), 1.0, image_sizes)
    return np.concatenate([lo, hi], axis=1)


def _format_coord(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _rewrite(text: str, objects: dict[int, list[float]], where: str) -> str:
    spans = list(_OBJECT_RE.finditer(text))
    pieces, last = [], 0
    for k, new in sorted(objects.items()):
        if k >= len(spans):
            raise NoisyboxError(
                f"Expected object #{k} in the raw text of {where} but found {len(spans)}"
            )
        match = spans[k]
        block = match.group(0)
        masked = _PART_RE.sub(lambda m: " " * len(m.group(0)), block)
        bnd = _BNDBOX_RE.search(masked)
        if bnd is None:
            raise NoisyboxError(f"Expected a bndbox in object #{k} of {where} but found none")
        inner = block[bnd.start() : bnd.end()]
        values = (new[0] + 1.0, new[1] + 1.0, new[2], new[3])
        for coord, value in zip(_COORDS, values, strict=True):
            text_value = _format_coord(value)
            inner = _COORD_RE[coord].sub(rf"\g<1>{text_value}\g<3>", inner, count=1)
        pieces.append(text[last : match.start()])
        pieces.append(block[: bnd.start()] + inner + block[bnd.end() :])
        last = match.end()
    pieces.append(text[last:])
    return "".join(pieces)


def _object_xml(name: str, box: list[float]) -> str:
    """A new ``<object>`` for a snapped ``xyxy`` box, indented as VOC's own files."""
    xmin, ymin, xmax, ymax = (_format_coord(v) for v in (box[0] + 1, box[1] + 1, box[2], box[3]))
    return (
        f"\t<object>\n\t\t<name>{name}</name>\n\t\t<pose>Unspecified</pose>\n"
        f"\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n"
        f"\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n"
        f"\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n"
        f"\t\t</bndbox>\n\t</object>\n"
    )


def _edit_records(
    text: str, drop: set[int], names: dict[int, str], new: list[str], where: str
) -> str:
    """``text`` with objects dropped, renamed (their own ``<name>``, not a part's) and
    new ``<object>`` blocks added before ``</annotation>``."""
    spans = list(_OBJECT_RE.finditer(text))
    if any(k >= len(spans) for k in drop | set(names)):
        raise NoisyboxError(
            f"Expected the objects of {where} in its raw text but found {len(spans)}"
        )
    pieces, last = [], 0
    for k, match in enumerate(spans):
        if k not in drop and k not in names:
            continue
        start = match.start()
        if k in drop:
            # the object and the indentation and line end around it
            line_start = text.rfind("\n", 0, start) + 1
            if not text[line_start:start].strip():
                start = line_start
            end = match.end()
            if text[end : end + 2] == "\r\n":
                end += 2
            elif text[end : end + 1] == "\n":
                end += 1
            pieces.append(text[last:start])
            last = end
            continue
        block = match.group(0)
        masked = _PART_RE.sub(lambda m: " " * len(m.group(0)), block)
        found = _NAME_RE.search(masked)
        if found is None:
            raise NoisyboxError(f"Expected a name in object #{k} of {where} but found none")
        block = block[: found.start(2)] + names[k] + block[found.end(2) :]
        pieces.append(text[last:start])
        pieces.append(block)
        last = match.end()
    pieces.append(text[last:])
    out = "".join(pieces)
    if new:
        closing = _END_RE.search(out)
        if closing is None:
            raise NoisyboxError(f"Expected </annotation> at the end of {where} but found none")
        head = out[: closing.start()]
        if head and not head.endswith("\n"):
            head += "\n"
        out = head + "".join(new) + out[closing.start() :]
    return out


def write_voc(
    ann: Annotations,
    output_path: str | os.PathLike[str],
    *,
    provenance: dict[str, Any] | None = None,
    progress: bool = False,
    extra_files: dict[str, bytes] | None = None,
    edits: RecordEdits | None = None,
) -> None:
    """Write a VOC year folder at ``output_path``, atomically.

    ``Annotations/`` holds every XML read, with changed boxes snapped by :func:`snap_voc`;
    the other entries of the input year folder (``JPEGImages``, ``ImageSets``, ...) are
    linked (symlinks), ``noisybox-manifest.json`` holds ``provenance``, and
    ``extra_files`` (name -> content) are written beside them. ``edits`` removes dropped
    ``<object>`` elements, renames relabelled ones and adds new ones (``difficult`` 0)
    before ``</annotation>``; the rest of every file is unchanged.
    """
    doc = ann.document
    if not isinstance(doc, VocDocument):
        raise NoisyboxError(
            f"Expected annotations read from a VOC folder but got format {ann.format!r}"
        )
    changed = np.flatnonzero(changed_rows(ann.boxes, doc.boxes))
    written = snap_voc(ann.boxes[changed], ann.box_image_sizes()[changed])
    per_file = group_by_file(changed, doc.box_file_index, doc.box_object_index, written.tolist())
    drops: dict[int, set[int]] = {}
    renames: dict[int, dict[int, str]] = {}
    new: dict[int, list[str]] = {}
    if edits is not None:
        edits.check(ann.num_boxes, ann.num_images)
        for k in np.flatnonzero(~edits.keep).tolist():
            drops.setdefault(int(doc.box_file_index[k]), set()).add(int(doc.box_object_index[k]))
        for k in edits.relabelled(ann.categories).tolist():
            name = ann.category_names.get(int(edits.categories[k]), str(edits.categories[k]))
            renames.setdefault(int(doc.box_file_index[k]), {})[int(doc.box_object_index[k])] = name
        extra = snap_voc(edits.extra_boxes, ann.image_sizes[edits.extra_image_index])
        for box, row, cat in zip(
            extra.tolist(),
            edits.extra_image_index.tolist(),
            edits.extra_categories.tolist(),
            strict=True,
        ):
            new.setdefault(row, []).append(_object_xml(ann.category_names.get(cat, str(cat)), box))
    with atomic_dir(output_path, manifest=MANIFEST_NAME) as tmp:
        out_ann = tmp / "Annotations"
        out_ann.mkdir()
        for i, name in progress_enumerate(doc.xml_files, progress=progress, desc="writing VOC"):
            text = doc.texts[i]
            if i in per_file:
                text = _rewrite(text, per_file[i], name)
            if i in drops or i in renames or i in new:
                text = _edit_records(
                    text, drops.get(i, set()), renames.get(i, {}), new.get(i, []), name
                )
            (out_ann / name).write_bytes(text.encode("utf-8"))
        for entry in sorted(doc.root.iterdir()):
            if entry.name not in ("Annotations", MANIFEST_NAME):
                os.symlink(entry.resolve(), tmp / entry.name)
        if provenance is not None:
            atomic_write_json(tmp / MANIFEST_NAME, provenance, indent=2)
        for name, content in (extra_files or {}).items():
            (tmp / name).write_bytes(content)
