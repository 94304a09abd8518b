"""Record-level edits a writer applies besides new box coordinates: records dropped,
records given another category, and new records (annotation-level noise, see
:mod:`noisybox.noise.annotation`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from noisybox.errors import NoisyboxError

__all__ = ["RecordEdits"]


@dataclasses.dataclass
class RecordEdits:
    """Changes to the records of an :class:`~noisybox.formats.Annotations` of ``N`` boxes.

    Attributes:
        keep: ``bool[N]`` records written (``False``: dropped from the file).
        categories: ``int64[N]`` the category each record is written with.
        extra_boxes: ``float64[M, 4]`` new records' boxes, absolute ``xyxy``.
        extra_image_index: ``int64[M]`` image row of each new record.
        extra_categories: ``int64[M]`` category of each new record.
    """

    keep: np.ndarray
    categories: np.ndarray
    extra_boxes: np.ndarray
    extra_image_index: np.ndarray
    extra_categories: np.ndarray

    def check(self, num_boxes: int, num_images: int) -> None:
        """Raise :class:`NoisyboxError` unless the shapes fit a set of ``num_boxes`` boxes."""
        m = self.extra_boxes.shape[0]
        if (
            self.keep.shape != (num_boxes,)
            or self.categories.shape != (num_boxes,)
            or self.extra_boxes.shape != (m, 4)
            or self.extra_image_index.shape != (m,)
            or self.extra_categories.shape != (m,)
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
