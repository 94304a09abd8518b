"""The one in-memory model every annotation reader produces.

Code past the readers never sees COCO, VOC or YOLO conventions: boxes are absolute pixel
``xyxy`` floats, images are rows of a table, and the original document is kept as an
opaque handle so that a writer can put perturbed boxes back into it and preserve
everything else exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

__all__ = ["Annotations"]


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
        format: ``"coco"``, ``"voc"`` or ``"yolo"``.
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
