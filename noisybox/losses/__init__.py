"""Alpha-IoU box-regression losses (He et al., NeurIPS 2021) and their registry.

>>> import torch
>>> loss = get_loss("alpha-giou", reduction="mean")
>>> loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
tensor(0.)
"""

from __future__ import annotations

from noisybox.losses.alpha_iou import AlphaIoULoss, alpha_iou_loss, alpha_iou_term, list_variants
from noisybox.losses.plot import plot_alpha_iou_curves
from noisybox.losses.registry import get_loss, list_losses, register_loss

__all__ = [
    "AlphaIoULoss",
    "alpha_iou_loss",
    "alpha_iou_term",
    "get_loss",
    "list_losses",
    "list_variants",
    "plot_alpha_iou_curves",
    "register_loss",
]
