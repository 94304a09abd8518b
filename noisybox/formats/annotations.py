"""The one in-memory model every annotation reader produces.

Code past the readers never sees COCO, VOC or YOLO conventions: boxes are absolute pixel
``xyxy`` floats, images are rows of a table, and the original document is kept as an
opaque handle so that a writer can put perturbed boxes back into it and preserve
everything else exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from noisybox.errors import NoisyboxError

__all__ = ["Annotations", "category_ids", "concat_annotations", "names_by_category"]


@dataclasses.dataclass
class Annotations:
    """Parallel arrays describing one annotation set.

    Images (``M`` rows):
        image_ids: ``int64[M]`` the format's image id (COCO ``id``; VOC/YOLO: a stable
            running index in sorted file order).
        image_sizes: ``float64[M, 2]`` ``(width, height)`` in pixels.
        file_names: ``M`` image file names relative to the image root.

    Boxes (``N`` rows):
        box_image_index: ``int64[N]`` row of the image each box belongs to.
        boxes: ``float64[N, 4]`` absolute pixel ``xyxy``.
        categories: ``int64[N]`` category id (COCO ``category_id``; VOC: index into
            ``category_names``; YOLO: the class column).
        iscrowd: ``bool[N]`` COCO crowd flag (``False`` for other formats).
        record_ids: ``N`` ids naming each box in error messages and stats (COCO
            annotation id; VOC ``file.xml#object-index``; YOLO ``file.txt:line``).

    Other:
        category_names: category id -> name.
        format: ``"coco"``, ``"voc"`` or ``"yolo"`` (``"mixed"`` for a
            :func:`concat_annotations` of several formats).
        source: the path the annotations were read from.
        document: the parsed original (format specific), used by the writer.
    """

    image_ids: np.ndarray
    image_sizes: np.ndarray
    file_names: list[str]
    box_image_index: np.ndarray
    boxes: np.ndarray
    categories: np.ndarray
    iscrowd: np.ndarray
    record_ids: list[Any]
    category_names: dict[int, str]
    format: str
    source: str
    document: Any = None

    @property
    def num_images(self) -> int:
        return int(self.image_ids.shape[0])

    @property
    def num_boxes(self) -> int:
        return int(self.boxes.shape[0])

    def box_image_sizes(self) -> np.ndarray:
        """``float64[N, 2]`` the ``(width, height)`` of the image of every box."""
        return self.image_sizes[self.box_image_index]

    def with_boxes(self, boxes: np.ndarray) -> Annotations:
        """A copy sharing everything but ``boxes`` (which must have the same shape)."""
        boxes = np.asarray(boxes, dtype=np.float64)
        if boxes.shape != self.boxes.shape:
            raise ValueError(f"Expected boxes of shape {self.boxes.shape} but got {boxes.shape}")
        return dataclasses.replace(self, boxes=boxes)


def concat_annotations(parts: Sequence[Annotations]) -> Annotations:
    """Several annotation sets as one, to measure them together.

    Images and boxes follow in the order of ``parts``; images of different parts are
    different images even where their ids repeat (rows, not ids, name images, as everywhere
    past the readers). Categories are matched by name, so VOC's ``aeroplane`` (id 0) and a
    COCO file's ``aeroplane`` (id 1) are one category, numbered in order of first
    appearance. Record ids become ``"<part file name>:<record id>"``. The result has no
    ``document``: it is for measuring, not for writing back.

    Args:
        parts: one or more :class:`Annotations`.

    Returns:
        :class:`Annotations` with ``format`` the parts' common format (``"mixed"`` if they
        differ) and ``source`` their paths joined by ``" + "``.

    Raises:
        ValueError: if ``parts`` is empty.

    >>> a = Annotations(np.array([1]), np.array([[10.0, 10]]), ["a.jpg"], np.array([0]),
    ...     np.array([[0.0, 0, 5, 5]]), np.array([0]), np.array([False]), ["a.xml#0"],
    ...     {0: "cat"}, "voc", "VOC2007")
    >>> b = Annotations(np.array([1]), np.array([[20.0, 20]]), ["b.jpg"], np.array([0, 0]),
    ...     np.array([[1.0, 1, 4, 4], [2, 2, 9, 9]]), np.array([7, 8]), np.array([False, False]),
    ...     [1, 2], {7: "dog", 8: "cat"}, "coco", "train.json")
    >>> both = concat_annotations([a, b])
    >>> both.box_image_index.tolist(), both.categories.tolist(), both.category_names
    ([0, 1, 1], [0, 1, 0], {0: 'cat', 1: 'dog'})
    >>> both.record_ids, both.format, both.source
    (['VOC2007:a.xml#0', 'train.json:1', 'train.json:2'], 'mixed', 'VOC2007 + train.json')
    """
    if not parts:
        raise ValueError("Expected at least one annotation set but got none")
    names: dict[str, int] = {}
    categories: list[np.ndarray] = []
    image_index: list[np.ndarray] = []
    record_ids: list[str] = []
    offset = 0
    for part in parts:
        label = Path(part.source).name
        ids = np.asarray(part.categories, dtype=np.int64)
        lookup: dict[int, int] = {}
        for cid in sorted(set(part.category_names) | set(ids.tolist())):
            name = part.category_names.get(int(cid), str(cid))
            lookup[int(cid)] = names.setdefault(name, len(names))
        categories.append(np.array([lookup[c] for c in ids.tolist()], dtype=np.int64))
        record_ids.extend(f"{label}:{rid}" for rid in part.record_ids)
        image_index.append(np.asarray(part.box_image_index, dtype=np.int64) + offset)
        offset += part.num_images
    formats = {part.format for part in parts}
    return Annotations(
        image_ids=np.concatenate([np.asarray(p.image_ids, dtype=np.int64) for p in parts]),
        image_sizes=np.concatenate(
            [np.asarray(p.image_sizes, dtype=np.float64).reshape(-1, 2) for p in parts]
        ),
        file_names=[name for p in parts for name in p.file_names],
        box_image_index=np.concatenate(image_index),
        boxes=np.concatenate([np.asarray(p.boxes, dtype=np.float64).reshape(-1, 4) for p in parts]),
        categories=np.concatenate(categories),
        iscrowd=np.concatenate([np.asarray(p.iscrowd, dtype=bool) for p in parts]),
        record_ids=record_ids,
        category_names={k: name for name, k in names.items()},
        format=formats.pop() if len(formats) == 1 else "mixed",
        source=" + ".join(str(p.source) for p in parts),
    )


def category_ids(ann: Annotations) -> list[int]:
    """The sorted category ids of ``ann``: those of its boxes and those it names."""
    return sorted({int(c) for c in ann.categories.tolist()} | {int(c) for c in ann.category_names})


def names_by_category(ann: Annotations, names: Sequence[str]) -> dict[int, str]:
    """Category id -> name for a list of class names, by the rule of ``ann``'s format.

    YOLO: name ``k`` is class ``k`` (the ``names`` of a ``data.yaml``). COCO and VOC: the
    names follow the sorted category ids (the order of the detectors' labels ``1..K``).

    Args:
        ann: the annotations.
        names: the class names.

    Returns:
        A dict holding every id of :func:`category_ids`.

    Raises:
        NoisyboxError: fewer names than the format needs.

    >>> ann = Annotations(np.array([1]), np.ones((1, 2)), ["a"], np.array([0, 0]),
    ...     np.ones((2, 4)), np.array([3, 7]), np.zeros(2, bool), [1, 2], {}, "coco", "x")
    >>> names_by_category(ann, ["dog", "bus"])
    {3: 'dog', 7: 'bus'}
    >>> names_by_category(dataclasses.replace(ann, format="yolo"), list("abcdefgh"))
    {3: 'd', 7: 'h'}
    """
    ids = category_ids(ann)
    names = [str(n) for n in names]
    if ann.format == "yolo":
        needed = max(ids) + 1 if ids else 0
        if len(names) < needed:
            raise NoisyboxError(
                f"Expected at least {needed} class names (YOLO classes 0..{needed - 1} in "
                f"{ann.source}) but got {len(names)}"
            )
        return {c: names[c] for c in ids}
    if len(names) < len(ids):
        raise NoisyboxError(
            f"Expected {len(ids)} class names (one per category id {ids} of {ann.source}) "
            f"but got {len(names)}"
        )
    return dict(zip(ids, names[: len(ids)], strict=True))
