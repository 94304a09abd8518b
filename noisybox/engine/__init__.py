"""Training and evaluation: the loop (devices, AMP, DDP, checkpoints, resume) and pycocotools.

Rooms: ``config`` (:class:`TrainConfig`, its defaults, choices and sources), ``loop`` (the
training loop, :func:`train`), ``model`` (the detector of a run or a checkpoint),
``evaluation`` (predictions and the one pycocotools wrapper), ``checkpoint``,
``distributed``, ``schedules``, ``ema``, ``curves`` (learning curves), ``collapse``
(collapse signals of a history). ``python -m noisybox.engine --config FILE`` trains one
config file: the entry point ``torchrun`` starts on every rank.
"""

from __future__ import annotations

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
