"""The detector of a training run: built from its config, or restored from a checkpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from noisybox.detectors import build_detector
from noisybox.engine.config import TrainConfig, upgrade_config
from noisybox.engine.ema import build_ema

__all__ = ["build_model", "model_from_checkpoint"]


def build_model(cfg: TrainConfig, num_classes: int, *, load_weights: bool) -> nn.Module:
    """The detector ``cfg`` describes, with its box loss plugged in.

    Args:
        cfg: the run.
        num_classes: classes including background.
        load_weights: start from ``cfg.weights`` / ``cfg.weights_backbone`` (a new run);
            ``False`` leaves the weights random (they come from a checkpoint).
    """
    return build_detector(
        cfg.detector,
        num_classes,
        backbone=cfg.backbone,
        loss=cfg.loss_spec,
        weights=cfg.weights if load_weights else None,
        weights_backbone=cfg.weights_backbone if load_weights else None,
        image_size=cfg.image_size,
        fpn_channels=cfg.fpn_channels,
        **dict(cfg.detector_kwargs),
    )


def model_from_checkpoint(state: Mapping[str, Any]) -> nn.Module:
    """The weights a checkpoint's run evaluates: the moving average when it kept one.

    Args:
        state: a checkpoint read with :func:`noisybox.engine.checkpoint.load_checkpoint`.
    """
    cfg = TrainConfig.from_dict(upgrade_config(state["config"]))
    model = build_model(cfg, int(state["num_classes"]), load_weights=False)
    if state.get("ema") is not None:
        ema = build_ema(model, cfg.ema_decay)
        ema.load_state_dict(state["ema"])
        return ema.module
    model.load_state_dict(state["model"])
    return model
