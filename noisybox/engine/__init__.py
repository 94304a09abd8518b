"""Training and evaluation: the loop (devices, AMP, DDP, checkpoints, resume) and pycocotools.

Rooms: ``config`` (:class:`TrainConfig`, its defaults, choices and sources), ``loop`` (the
training loop, :func:`train`), ``model`` (the detector of a run or a checkpoint),
``evaluation`` (predictions and the one pycocotools wrapper), ``checkpoint``,
``distributed``, ``schedules``, ``ema``, ``curves`` (learning curves), ``collapse``
(collapse signals of a history). ``python -m noisybox.engine --config FILE`` trains one
config file: the entry point ``torchrun`` starts on every rank. Public names are imported
lazily, so that the pure-Python rooms (``collapse``, ``curves``, ``evaluation``'s metric
names) load without torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from noisybox.engine.checkpoint import load_checkpoint, save_checkpoint
    from noisybox.engine.collapse import collapse_reasons
    from noisybox.engine.config import DEFAULT_ALPHA_WARMUP, TrainConfig
    from noisybox.engine.distributed import select_device
    from noisybox.engine.evaluation import (
        METRIC_NAMES,
        THRESHOLD_METRICS,
        coco_evaluate,
        evaluate_checkpoint,
        evaluate_model,
        predict,
    )
    from noisybox.engine.loop import TrainResult, train
    from noisybox.engine.schedules import alpha_at_step, warmup_cosine_factor

__all__ = [
    "DEFAULT_ALPHA_WARMUP",
    "METRIC_NAMES",
    "THRESHOLD_METRICS",
    "TrainConfig",
    "TrainResult",
    "alpha_at_step",
    "coco_evaluate",
    "collapse_reasons",
    "evaluate_checkpoint",
    "evaluate_model",
    "load_checkpoint",
    "predict",
    "save_checkpoint",
    "select_device",
    "train",
    "warmup_cosine_factor",
]


_EXPORTS: dict[str, str] = {
    "load_checkpoint": "noisybox.engine.checkpoint",
    "save_checkpoint": "noisybox.engine.checkpoint",
    "collapse_reasons": "noisybox.engine.collapse",
    "DEFAULT_ALPHA_WARMUP": "noisybox.engine.config",
    "TrainConfig": "noisybox.engine.config",
    "select_device": "noisybox.engine.distributed",
    "METRIC_NAMES": "noisybox.engine.evaluation",
    "THRESHOLD_METRICS": "noisybox.engine.evaluation",
    "coco_evaluate": "noisybox.engine.evaluation",
    "evaluate_checkpoint": "noisybox.engine.evaluation",
    "evaluate_model": "noisybox.engine.evaluation",
    "predict": "noisybox.engine.evaluation",
    "TrainResult": "noisybox.engine.loop",
    "train": "noisybox.engine.loop",
    "alpha_at_step": "noisybox.engine.schedules",
    "warmup_cosine_factor": "noisybox.engine.schedules",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'noisybox.engine' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(__all__)
