"""torchvision detectors with the box-regression loss plugged in by name.

>>> list_detectors()
['fasterrcnn', 'fcos', 'retinanet']
"""

from noisybox.detectors.backbones import build_fpn_backbone, list_backbones
from noisybox.detectors.loss_plug import (
    PluggedFCOSHead,
    PluggedRetinaNetRegressionHead,
    PluggedRoIHeads,
    matched_iou_sum,
    pop_iou_stats,
    reduce_box_loss,
)
from noisybox.detectors.registry import (
    LOSS_KEYS,
    STOCK_LOSS,
    box_loss_modules,
    build_box_loss,
    build_detector,
    list_detectors,
    load_detector_weights,
    register_detector,
    set_box_loss_alpha,
)

__all__ = [
    "LOSS_KEYS",
    "STOCK_LOSS",
    "PluggedFCOSHead",
    "PluggedRetinaNetRegressionHead",
    "PluggedRoIHeads",
    "box_loss_modules",
    "build_box_loss",
    "build_detector",
    "build_fpn_backbone",
    "list_backbones",
    "list_detectors",
    "load_detector_weights",
    "matched_iou_sum",
    "pop_iou_stats",
    "reduce_box_loss",
    "register_detector",
    "set_box_loss_alpha",
]
