"""Data: the embedded shapes dataset, the detection dataset over any annotation format,
augmentation pipelines and data loaders.

The torch-dependent parts are imported on first use, so ``noisybox make-dataset`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from noisybox.data.synthetic import (
    SHAPE_CLASSES,
    ShapesDataset,
    draw_shapes_image,
    make_shapes_dataset,
)

if TYPE_CHECKING:
    from noisybox.data.dataset import DetectionDataset, build_dataloader, collate_fn
    from noisybox.data.transforms import build_transforms

__all__ = [
    "SHAPE_CLASSES",
    "DetectionDataset",
    "ShapesDataset",
    "build_dataloader",
    "build_transforms",
    "collate_fn",
    "draw_shapes_image",
    "make_shapes_dataset",
]

_LAZY = {
    "DetectionDataset": "noisybox.data.dataset",
    "build_dataloader": "noisybox.data.dataset",
    "collate_fn": "noisybox.data.dataset",
    "build_transforms": "noisybox.data.transforms",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'noisybox.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
