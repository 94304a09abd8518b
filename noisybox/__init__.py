"""noisybox: robustness of object detectors and box losses to noisy box annotations.

The noise model and losses follow *Alpha-IoU: A Family of Power IoU Losses for Bounding
Box Regression* (He et al., NeurIPS 2021). Public names are imported lazily so that
``import noisybox`` (and the CLI's start-up) stays cheap.

>>> import noisybox
>>> noisybox.perturb_boxes([[10.0, 10.0, 50.0, 50.0]], [[100, 100]], eta=0.0).tolist()
[[10.0, 10.0, 50.0, 50.0]]
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Annotations": "noisybox.formats",
    "read_annotations": "noisybox.formats",
    "write_annotations": "noisybox.formats",
    "perturb_boxes": "noisybox.noise",
    "list_noise_models": "noisybox.noise",
    "BoxNoise": "noisybox.noise",
    "NoiseSpec": "noisybox.noise",
    "corrupt_annotations": "noisybox.corrupt",
    "compare_annotations": "noisybox.stats",
    "NoisyboxError": "noisybox.errors",
    "alpha_iou_loss": "noisybox.losses",
    "AlphaIoULoss": "noisybox.losses",
    "get_loss": "noisybox.losses",
    "list_losses": "noisybox.losses",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'noisybox' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
