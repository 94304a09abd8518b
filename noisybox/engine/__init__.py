"""Training and evaluation: the loop (devices, AMP, DDP, checkpoints, resume) and pycocotools.

``noisybox.engine.train`` is the training *function* (its module is
``noisybox.engine.train`` too; ``from noisybox.engine.train import TrainConfig`` works).
"""

from __future__ import annotations

from noisybox.engine.checkpoint import load_checkpoint, save_checkpoint
from noisybox.engine.distributed import select_device
from noisybox.engine.evaluation import METRIC_NAMES, THRESHOLD_METRICS, coco_evaluate
from noisybox.engine.schedules import alpha_at_step, warmup_cosine_factor
from noisybox.engine.train import (
    DEFAULT_ALPHA_WARMUP,
    TrainConfig,
    TrainResult,
    collapse_reasons,
    evaluate_checkpoint,
    evaluate_model,
    predict,
    train,
)

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
