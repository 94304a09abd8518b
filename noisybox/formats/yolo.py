"""YOLO txt folders: one ``labels/<name>.txt`` per image with lines ``class cx cy w h``
normalised to ``[0, 1]``.

Layouts read: a dataset folder holding ``images/`` and ``labels/`` (any sub-folders, e.g.
``train/``, mirrored between the two), or a ``labels`` folder whose sibling ``images``
folder holds the images (``image_root`` overrides where images are looked for). Image sizes
come from the image headers (Pillow reads only the header). Class names come from
``classes.txt`` or a ``*.yaml`` with ``names`` in the dataset folder, when present.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from noisybox._fileio import atomic_dir, atomic_write_json
from noisybox.boxes import box_convert
from noisybox.errors import NoisyboxError
from noisybox.formats._io import (
    MANIFEST_NAME,
    changed_rows,
    group_by_file,
    progress_enumerate,
)
from noisybox.formats.annotations import Annotations
from noisybox.formats.edits import RecordEdits

__all__ = [
    "IMAGE_SUFFIXES",
    "YOLO_DECIMALS",
    "YoloDocument",
    "find_yolo_dirs",
    "read_yolo",
    "snap_yolo",
    "write_yolo",
]

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
YOLO_DECIMALS = 6


@dataclasses.dataclass
class YoloDocument:
    """Raw label texts and where every box sits in them."""

    dataset_dir: Path | None
    labels_dir: Path
    images_dir: Path
    label_files: list[str]
    texts: list[str]
    box_file_index: np.ndarray
    box_line_index: np.ndarray
    boxes: np.ndarray


def find_yolo_dirs(
    path: str | os.PathLike[str], image_root: str | os.PathLike[str] | None = None
) -> tuple[Path | None, Path, Path]:
    """``(dataset_dir or None, labels_dir, images_dir)`` for a YOLO path.

    Raises:
        NoisyboxError: if no labels or images folder is found.
    """
    path = Path(path)
    if (path / "labels").is_dir():
        dataset, labels = path, path / "labels"
        images = Path(image_root) if image_root is not None else path / "images"
    elif path.is_dir():
        dataset, labels = None, path
        if image_root is not None:
            images = Path(image_root)
        else:
            parts = list(path.parts)
            if "labels" not in parts:
                raise NoisyboxError(
                    f"Expected a YOLO folder with labels/ and images/ (or --image-root) but got {path}"
                )
            idx = len(parts) - 1 - parts[::-1].index("labels")
            images = Path(*parts[:idx], "images", *parts[idx + 1 :])
    else:
        raise NoisyboxError(f"Expected a YOLO dataset folder but got {path}")
    if not images.is_dir():
        raise NoisyboxError(f"Expected an images folder for {path} but got no folder {images}")
    return dataset, labels, images


def _read_text(path: Path, what: str) -> str:
    """A UTF-8 text file, or one line naming it."""
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoisyboxError(
            f"Expected a UTF-8 {what} but got byte {exc.object[exc.start]:#04x} at offset "
            f"{exc.start} in {path}"
        ) from None
    except OSError as exc:
        raise NoisyboxError(f"Expected a readable {what} but got {exc.strerror}: {path}") from None


def _class_names(dataset: Path | None, labels: Path) -> tuple[dict[int, str], Path | None]:
    """Class names and the file they came from (``classes.txt`` or a ``*.yaml``)."""
    for folder in (dataset, labels):
        if folder is not None and (folder / "classes.txt").is_file():
            text = _read_text(folder / "classes.txt", "class list")
            lines = [s.strip() for s in text.splitlines()]
            return {k: s for k, s in enumerate(lines) if s}, folder / "classes.txt"
    if dataset is not None:
        for cfg in sorted(dataset.glob("*.yaml")):
            try:
                names = (yaml.safe_load(_read_text(cfg, "YAML file")) or {}).get("names")
            except (yaml.YAMLError, AttributeError, NoisyboxError):
                continue
            if isinstance(names, list):
                return {k: str(n) for k, n in enumerate(names)}, cfg
            if isinstance(names, dict):
                try:
                    return {int(k): str(n) for k, n in names.items()}, cfg
                except (TypeError, ValueError):
                    continue
    return {}, None


def read_yolo(
    path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> Annotations:
    """Read a YOLO dataset.

    One pass over the images and their label files, kept in one loop so that every file
    is read once; the parts are :func:`_pair_files`, :func:`_label_line` and
    :func:`_category_names`.

    Args:
        path: dataset folder (with ``labels/`` and ``images/``) or a ``labels`` folder.
        image_root: the images folder, if not the sibling ``images``.
        progress: show a progress bar on stderr.

    Returns:
        :class:`Annotations`; images in sorted relative-path order (image id = that index),
        ``file_names`` relative to the images folder, record ids ``<label file>:<line>``
        (1-based), categories the class column. Images without a label file have no boxes.

    Raises:
        NoisyboxError: for a label file without its image, a line that is not
            ``class cx cy w h`` with an integer class and numbers, a negative class or
            one missing from ``classes.txt`` (or the yaml's ``names``) when there is one,
            a label file that is not UTF-8, or an unreadable image.
    """
    dataset, labels_dir, images_dir = find_yolo_dirs(path, image_root)
    images, label_of_row = _pair_files(labels_dir, images_dir)
    sizes = np.empty((len(images), 2), dtype=np.float64)
    texts: list[str] = []
    doc_files: list[str] = []
    norm: list[list[float]] = []
    cls: list[int] = []
    box_img, box_file, box_line, record_ids = [], [], [], []
    for i, rel in progress_enumerate(images, progress=progress, desc="reading YOLO", unit="image"):
        try:
            with Image.open(images_dir / rel) as im:
                sizes[i] = im.size
        except OSError as exc:
            raise NoisyboxError(
                f"Expected a readable image but got {exc} for {images_dir / rel}"
            ) from None
        if i not in label_of_row:
            continue
        label_rel = label_of_row[i]
        text = _read_text(labels_dir / label_rel, "label file")
        fidx = len(doc_files)
        doc_files.append(label_rel)
        texts.append(text)
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.split():
                continue
            rid = f"{label_rel}:{lineno}"
            k, values = _label_line(line, labels_dir / label_rel, rid)
            cls.append(k)
            norm.append(values)
            box_img.append(i)
            box_file.append(fidx)
            box_line.append(lineno - 1)
            record_ids.append(rid)
    box_img_arr = np.array(box_img, dtype=np.int64)
    n = np.array(norm, dtype=np.float64).reshape(-1, 4)
    boxes = _to_absolute_xyxy(n, sizes[box_img_arr])
    categories = np.array(cls, dtype=np.int64)
    names = _category_names(dataset, labels_dir, categories, record_ids)
    return Annotations(
        image_ids=np.arange(len(images), dtype=np.int64),
        image_sizes=sizes,
        file_names=images,
        box_image_index=box_img_arr,
        boxes=boxes,
        categories=categories,
        iscrowd=np.zeros(len(cls), dtype=bool),
        record_ids=record_ids,
        category_names=dict(sorted(names.items())),
        format="yolo",
        source=str(Path(path)),
        document=YoloDocument(
            dataset_dir=dataset,
            labels_dir=labels_dir,
            images_dir=images_dir,
            label_files=doc_files,
            texts=texts,
            box_file_index=np.array(box_file, dtype=np.int64),
            box_line_index=np.array(box_line, dtype=np.int64),
            boxes=boxes.copy(),
        ),
    )


def _pair_files(labels_dir: Path, images_dir: Path) -> tuple[list[str], dict[int, str]]:
    """The images (sorted relative paths) and the label file of each image row that has one.

    Raises:
        NoisyboxError: a label file without its image.
    """
    images = sorted(
        p.relative_to(images_dir).as_posix()
        for p in images_dir.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    stem_to_row = {os.path.splitext(rel)[0]: i for i, rel in enumerate(images)}
    label_files = sorted(
        p.relative_to(labels_dir).as_posix()
        for p in labels_dir.rglob("*.txt")
        if p.name != "classes.txt" and _regular_label_file(p)
    )
    label_of_row: dict[int, str] = {}
    for rel in label_files:
        row = stem_to_row.get(os.path.splitext(rel)[0])
        if row is None:
            raise NoisyboxError(
                f"Expected an image for label file {labels_dir / rel} but found none in {images_dir}"
            )
        label_of_row[row] = rel
    return images, label_of_row


def _regular_label_file(path: Path) -> bool:
    """``True`` for a label file; a ``*.txt`` that is not one is refused, never skipped
    (skipping it would drop that image's boxes from the output without a word).

    Raises:
        NoisyboxError: a folder, a loop of links, a link to nothing or a special file.
    """
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        kind = "a loop of links" if exc.errno == errno.ELOOP else "a link to nothing"
        raise NoisyboxError(f"Expected a regular label file but got {kind}: {path}") from None
    if stat.S_ISREG(mode):
        return True
    kind = "a folder" if stat.S_ISDIR(mode) else "a special file"
    raise NoisyboxError(f"Expected a regular label file but got {kind}: {path}")


def _label_line(line: str, label_path: Path, rid: str) -> tuple[int, list[float]]:
    """``(class, [cx, cy, w, h])`` of a ``class cx cy w h`` line.

    Raises:
        NoisyboxError: not five fields, a class that is not an integer >= 0, or a
            non-numeric value.
    """
    tokens = line.split()
    try:
        if len(tokens) != 5:
            raise ValueError
        k = int(tokens[0])
        values = [float(t) for t in tokens[1:]]
    except ValueError:
        raise NoisyboxError(
            f"Expected 'class cx cy w h' but got {line.strip()[:80]!r} in {label_path} (record {rid})"
        ) from None
    if not 0 <= k < 2**31:
        raise NoisyboxError(
            f"Expected a class id >= 0 (and below 2**31) but got {tokens[0][:40]!r} in "
            f"{label_path} (record {rid})"
        )
    return k, values


def _category_names(
    dataset: Path | None, labels_dir: Path, categories: np.ndarray, record_ids: list[str]
) -> dict[int, str]:
    """Class id -> name from ``classes.txt`` or the yaml, the id itself for unnamed ones.

    Raises:
        NoisyboxError: a class id missing from a names file that exists.
    """
    names, names_file = _class_names(dataset, labels_dir)
    if names_file is not None and names:
        unknown = np.flatnonzero(~np.isin(categories, list(names)))
        if unknown.size:
            k = int(unknown[0])
            raise NoisyboxError(
                f"Expected a class id listed in {names_file} (0..{max(names)}) but got "
                f"{categories[k]} in {labels_dir / record_ids[k].rsplit(':', 1)[0]} (record {record_ids[k]})"
            )
    for k in np.unique(categories).tolist():
        names.setdefault(int(k), str(k))
    return names


def _written_norm(boxes: np.ndarray, image_sizes: np.ndarray) -> tuple[np.ndarray, list[list[str]]]:
    # Sizes round down and centres are kept where the rounded box stays inside the image,
    # so that what is written lies inside the image like the noisy box does.
    scale = 10.0**YOLO_DECIMALS
    size = np.concatenate([image_sizes, image_sizes], axis=1)
    cxcywh = box_convert(boxes[:, :4], "xyxy", "cxcywh") / size
    centre, extent = cxcywh[:, 0:2], cxcywh[:, 2:4]
    extent = np.clip(np.floor(extent * scale + 1e-6), 1.0, scale) / scale
    lo = np.ceil(extent / 2 * scale - 1e-6) / scale
    hi = np.floor((1.0 - extent / 2) * scale + 1e-6) / scale
    centre = np.clip(np.round(centre * scale) / scale, lo, np.maximum(hi, lo))
    norm = np.concatenate([centre, extent], axis=1).reshape(-1, 4)
    texts = [[f"{v:.{YOLO_DECIMALS}f}" for v in row] for row in norm.tolist()]
    return np.array(texts, dtype=np.float64).reshape(-1, 4), texts


def snap_yolo(boxes: np.ndarray, image_sizes: np.ndarray) -> np.ndarray:
    """``xyxy`` boxes as they read back after writing :data:`YOLO_DECIMALS` decimals.

    >>> snap_yolo(np.array([[10.0, 10.0, 20.0, 30.0]]), np.array([[30.0, 30.0]])).round(4)
    array([[10., 10., 20., 30.]])
    """
    n, _ = _written_norm(boxes, image_sizes)
    return _to_absolute_xyxy(n, image_sizes)


def _to_absolute_xyxy(norm: np.ndarray, image_sizes: np.ndarray) -> np.ndarray:
    """Normalised ``cxcywh`` ``float[N, 4]`` -> absolute ``xyxy`` in images of ``(w, h)``."""
    return box_convert(norm, "cxcywh", "xyxy") * np.tile(image_sizes[:, :2], 2)


def _record_edits(
    ann: Annotations, doc: YoloDocument, edits: RecordEdits | None
) -> tuple[dict[int, set[int]], dict[int, dict[int, int]], dict[str, list[str]]]:
    """``(drops, classes, appended)`` of ``edits``: per label file, the lines to empty and
    the lines given a new class; per label path, the new lines to append."""
    drops: dict[int, set[int]] = {}
    classes: dict[int, dict[int, int]] = {}
    appended: dict[str, list[str]] = {}
    if edits is None:
        return drops, classes, appended
    edits.check(ann.num_boxes, ann.num_images)
    for k in np.flatnonzero(~edits.keep).tolist():
        drops.setdefault(int(doc.box_file_index[k]), set()).add(int(doc.box_line_index[k]))
    for k in edits.relabelled(ann.categories).tolist():
        at = int(doc.box_line_index[k])
        classes.setdefault(int(doc.box_file_index[k]), {})[at] = int(edits.categories[k])
    sizes = ann.image_sizes[edits.extra_image_index]
    _, extra_texts = _written_norm(edits.extra_boxes, sizes)
    for row, cat, values in zip(
        edits.extra_image_index.tolist(),
        edits.extra_categories.tolist(),
        extra_texts,
        strict=True,
    ):
        label = os.path.splitext(ann.file_names[row])[0] + ".txt"
        appended.setdefault(label, []).append(f"{cat} {' '.join(values)}")
    return drops, classes, appended


def _edit_lines(
    text: str, boxes: dict[int, list[str]], classes: dict[int, int], drops: set[int]
) -> str:
    """``text`` with new box values (``boxes``: line -> values), new classes and emptied
    lines; line endings, leading space and the other lines kept."""
    lines = text.splitlines(keepends=True)
    for lineno, values in boxes.items():
        line = lines[lineno]
        body = line.rstrip("\r\n")
        ending = line[len(body) :]
        lead = body[: len(body) - len(body.lstrip())]
        cls_token = body.split()[0]
        lines[lineno] = f"{lead}{cls_token} {' '.join(values)}{ending}"
    for lineno, cat in classes.items():
        line = lines[lineno]
        start = len(line) - len(line.lstrip())
        token = line[start:].split()[0]
        lines[lineno] = f"{line[:start]}{cat}{line[start + len(token) :]}"
    for lineno in drops:
        # an empty line keeps the line numbers, the ids of the records after it
        line = lines[lineno]
        lines[lineno] = line[len(line.rstrip("\r\n")) :]
    return "".join(lines)


def write_yolo(
    ann: Annotations,
    output_path: str | os.PathLike[str],
    *,
    provenance: dict[str, Any] | None = None,
    progress: bool = False,
    edits: RecordEdits | None = None,
) -> None:
    """Write a YOLO dataset folder at ``output_path``, atomically.

    ``labels/`` mirrors every label file read, changed lines rewritten as
    ``<class token> cx cy w h`` with :data:`YOLO_DECIMALS` decimals (other lines, line
    endings and files byte-identical); ``images`` is a symlink to the images folder;
    ``classes.txt`` and ``*.yaml`` of the dataset folder are copied;
    ``noisybox-manifest.json`` holds ``provenance``. ``edits`` empties the lines of dropped
    records (so that the others keep their line numbers, their record ids), writes the new class of relabelled ones and appends new records to their
    image's label file (created beside the others if the image had none).
    """
    doc = ann.document
    if not isinstance(doc, YoloDocument):
        raise NoisyboxError(
            f"Expected annotations read from a YOLO folder but got format {ann.format!r}"
        )
    changed = np.flatnonzero(changed_rows(ann.boxes, doc.boxes))
    _, texts = _written_norm(ann.boxes[changed], ann.box_image_sizes()[changed])
    per_file = group_by_file(changed, doc.box_file_index, doc.box_line_index, texts)
    drops, classes, appended = _record_edits(ann, doc, edits)
    with atomic_dir(output_path, manifest=MANIFEST_NAME) as tmp:
        labels = tmp / "labels"
        labels.mkdir()
        files = list(doc.label_files) + sorted(set(appended) - set(doc.label_files))
        for i, rel in progress_enumerate(files, progress=progress, desc="writing YOLO"):
            text = doc.texts[i] if i < len(doc.texts) else ""
            if i in per_file or i in drops or i in classes:
                text = _edit_lines(
                    text, per_file.get(i, {}), classes.get(i, {}), drops.get(i, set())
                )
            if rel in appended:
                ending = "\r\n" if "\r\n" in text else "\n"
                if text and not text.endswith("\n"):
                    text += ending
                text += "".join(line + ending for line in appended[rel])
            target = labels / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8"))
        os.symlink(doc.images_dir.resolve(), tmp / "images")
        for folder in (doc.dataset_dir, doc.labels_dir):
            if folder is not None and (folder / "classes.txt").is_file():
                shutil.copyfile(
                    folder / "classes.txt",
                    (tmp if folder == doc.dataset_dir else labels) / "classes.txt",
                )
        if doc.dataset_dir is not None:
            for cfg in sorted(doc.dataset_dir.glob("*.yaml")):
                shutil.copyfile(cfg, tmp / cfg.name)
        if provenance is not None:
            atomic_write_json(tmp / MANIFEST_NAME, provenance, indent=2)
