"""Box-regression losses: the alpha-IoU family (He et al., NeurIPS 2021), the later IoU-family
losses (Focal-EIoU, Wise-IoU, MPDIoU, Inner-IoU, Shape-IoU, PIoU, NWD) and their registry;
the loss spec (:class:`LossSpec`) and its alpha schedule (:func:`alpha_at_step`), defined in
:mod:`noisybox.settings` so that torch-free code can hold them.

Every loss takes matched ``(pred, target)`` boxes ``Tensor[..., 4]`` and returns one value per
pair (``reduction="none"``), or their mean or sum; the modules from :func:`get_loss` are
what the detectors' heads call.

>>> import torch
>>> loss = get_loss("alpha-giou", reduction="mean")
>>> loss(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[0.0, 0.0, 2.0, 2.0]]))
tensor(0.)
"""

from __future__ import annotations

from noisybox.losses.alpha_iou import AlphaIoULoss, alpha_iou_loss, alpha_iou_term, list_variants
from noisybox.losses.alpha_schedule import DEFAULT_ALPHA_WARMUP, alpha_at_step
from noisybox.losses.focal_eiou import FocalEIoULoss, focal_eiou_loss
from noisybox.losses.mpdiou import MPDIoULoss, mpdiou_loss
from noisybox.losses.nwd import NWDLoss, nwd_loss
from noisybox.losses.plot import plot_alpha_iou_curves, plot_loss_curves
from noisybox.losses.powerful_iou import PowerfulIoULoss, powerful_iou_loss
from noisybox.losses.registry import (
    STOCK_LOSS,
    default_alpha,
    describe_loss,
    get_loss,
    list_detector_losses,
    list_losses,
    register_loss,
    resolve_loss_spec,
)
from noisybox.losses.shape_iou import ShapeIoULoss, shape_iou_loss
from noisybox.losses.wise_iou import WiseIoULoss, wise_iou_loss
from noisybox.settings import LossSpec

__all__ = [
    "DEFAULT_ALPHA_WARMUP",
    "STOCK_LOSS",
    "AlphaIoULoss",
    "FocalEIoULoss",
    "LossSpec",
    "MPDIoULoss",
    "NWDLoss",
    "PowerfulIoULoss",
    "ShapeIoULoss",
    "WiseIoULoss",
    "alpha_at_step",
    "alpha_iou_loss",
    "alpha_iou_term",
    "default_alpha",
    "describe_loss",
    "focal_eiou_loss",
    "get_loss",
    "list_detector_losses",
    "list_losses",
    "list_variants",
    "mpdiou_loss",
    "nwd_loss",
    "plot_alpha_iou_curves",
    "plot_loss_curves",
    "powerful_iou_loss",
    "register_loss",
    "resolve_loss_spec",
    "shape_iou_loss",
    "wise_iou_loss",
]
