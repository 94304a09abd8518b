"""See the noise: preview grids of images with clean and noisy boxes, and IoU histograms.

Everything returns a matplotlib ``Figure`` drawn on the Agg canvas (no pyplot state, no
window), so it works the same in scripts, tests and notebooks (a ``Figure`` displays itself
in Jupyter); :func:`save_figure` writes one as a PNG atomically. Box outlines are rasterised
onto numpy images by the pure :func:`draw_boxes`.

>>> import numpy as np
>>> img = draw_boxes(np.full((12, 12, 3), 90, np.uint8), np.array([[2.0, 2.0, 10.0, 10.0]]))
>>> img[2, 2].tolist(), img[4, 4].tolist(), img[6, 6].tolist()
([0, 220, 0], [0, 0, 0], [90, 90, 90])
"""

from __future__ import annotations

from noisybox.corrupt import perturb_annotations
from noisybox.formats.images import default_image_root, load_image
from noisybox.stats import align_boxes as align_noisy_boxes
from noisybox.viz.draw import CLEAN_STYLE, NOISY_STYLE, BoxStyle, draw_boxes, outline_mask
from noisybox.viz.histogram import (
    IoUDistribution,
    iou_distribution,
    iou_histogram,
    plot_iou_histogram,
)
from noisybox.viz.preview import (
    describe_noise,
    noise_label,
    plot_preview,
    preview_annotations,
    save_figure,
    select_images,
)
from noisybox.viz.tiles import class_name_map, render_tile

__all__ = [
    "CLEAN_STYLE",
    "NOISY_STYLE",
    "BoxStyle",
    "IoUDistribution",
    "align_noisy_boxes",
    "class_name_map",
    "default_image_root",
    "describe_noise",
    "draw_boxes",
    "iou_distribution",
    "iou_histogram",
    "load_image",
    "noise_label",
    "outline_mask",
    "perturb_annotations",
    "plot_iou_histogram",
    "plot_preview",
    "preview_annotations",
    "render_tile",
    "save_figure",
    "select_images",
]
