"""The box-regression loss plug: torchvision heads whose ``compute_loss`` takes any box loss.

Nothing in torchvision is forked or patched. Each class below subclasses the stock head and
overrides only its loss method; the rest of the detector (matching, sampling, inference) is
torchvision's. The box loss sees decoded absolute ``xyxy`` boxes and returns one value per
box; the normalisation is torchvision's own for each detector:

- FCOS: sum over foreground locations of the batch / ``max(1, num_foreground)``.
- RetinaNet: per image, sum over foreground anchors / ``max(1, num_foreground)``, then the
  mean over images.
- Faster R-CNN (box head): the deltas of the positive RoIs are decoded against their
  proposals; sum over positives / number of sampled RoIs (``labels.numel()``).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor, nn
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.retinanet import RetinaNetRegressionHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import sigmoid_focal_loss

from noisybox.boxes import elementwise_box_iou

__all__ = [
    "BoxLoss",
    "PluggedFCOSHead",
    "PluggedRetinaNetRegressionHead",
    "PluggedRoIHeads",
    "matched_iou_sum",
    "pop_iou_stats",
    "reduce_box_loss",
]


class BoxLoss(Protocol):
    """A box-regression loss: ``(pred Tensor[N, 4], target Tensor[N, 4]) -> Tensor[N]``.

    Every module of ``noisybox.losses.get_loss`` fits: matched absolute ``xyxy`` pairs in,
    one value per pair out (they also take an optional per-pair ``weight``, for heads that
    weight boxes, e.g. by their classification target). Such a module is a submodule of
    the head, so it follows ``model.train()``/``model.eval()`` and its buffers (Wise-IoU
    v3's running mean) are in the detector's ``state_dict``; ``image_size`` (MPDIoU) is set
    by ``build_detector``.
    """

    def __call__(self, pred: Tensor, target: Tensor) -> Tensor: ...


def matched_iou_sum(pred: Tensor, target: Tensor) -> Tensor:
    """``Tensor[2]``: the summed IoU of matched ``xyxy`` box pairs and their count (detached).

    An alpha-free measure of how well the regression branch does; the training loop reports
    its mean per epoch (``fg_iou``), which stays near 0 when the branch has collapsed.

    >>> matched_iou_sum(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), torch.tensor([[0.0, 0.0, 2.0, 1.0]]))
    tensor([0.5000, 1.0000])
    """
    with torch.no_grad():
        iou = elementwise_box_iou(pred.detach().float(), target.detach().float())
        return torch.stack([iou.sum(), torch.tensor(float(iou.numel()), device=iou.device)])


def reduce_box_loss(box_loss: BoxLoss, pred: Tensor, target: Tensor) -> Tensor:
    """Sum of ``box_loss`` over the boxes; ``0 * pred.sum()`` (keeps the graph) for none.

    Args:
        box_loss: per-box loss on absolute ``xyxy`` boxes.
        pred: ``Tensor[N, 4]`` decoded predicted boxes.
        target: ``Tensor[N, 4]`` matched ground-truth boxes.

    Returns:
        A scalar tensor in float32 or wider.

    >>> from torchvision.ops import generalized_box_iou_loss
    >>> b = torch.tensor([[0.0, 0.0, 2.0, 2.0]])
    >>> reduce_box_loss(generalized_box_iou_loss, b, b).item()
    0.0
    """
    if pred.numel() == 0:
        return 0.0 * pred.sum()
    loss = box_loss(pred, target)
    return loss.sum() if loss.dim() > 0 else loss


class PluggedFCOSHead(FCOSHead):
    """``FCOSHead`` whose regression term is ``box_loss`` instead of the GIoU loss.

    Classification (focal) and centre-ness (BCE) terms are computed exactly as in
    ``torchvision.models.detection.fcos.FCOSHead.compute_loss``.

    Args:
        in_channels: FPN channels.
        num_anchors: anchors per location (1 for FCOS).
        num_classes: classes including background.
        box_loss: per-box loss module; ``alpha`` on it is ramped by the training loop.
        box_loss_weight: multiplier of the regression term.
        num_convs: conv layers per branch.
    """

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        num_classes: int,
        box_loss: nn.Module,
        *,
        box_loss_weight: float = 1.0,
        num_convs: int = 4,
    ) -> None:
        super().__init__(in_channels, num_anchors, num_classes, num_convs)
        self.box_loss = box_loss
        self.box_loss_weight = box_loss_weight

    def compute_loss(
        self,
        targets: list[dict[str, Tensor]],
        head_outputs: dict[str, Tensor],
        anchors: list[Tensor],
        matched_idxs: list[Tensor],
    ) -> dict[str, Tensor]:
        cls_logits = head_outputs["cls_logits"]  # [N, HWA, C]
        bbox_regression = head_outputs["bbox_regression"]  # [N, HWA, 4]
        bbox_ctrness = head_outputs["bbox_ctrness"]  # [N, HWA, 1]

        gt_classes, gt_boxes = [], []
        for targets_per_image, matched in zip(targets, matched_idxs, strict=True):
            if len(targets_per_image["labels"]) == 0:
                classes = targets_per_image["labels"].new_zeros((len(matched),))
                boxes = targets_per_image["boxes"].new_zeros((len(matched), 4))
            else:
                classes = targets_per_image["labels"][matched.clip(min=0)]
                boxes = targets_per_image["boxes"][matched.clip(min=0)]
            classes[matched < 0] = -1
            gt_classes.append(classes)
            gt_boxes.append(boxes)
        all_gt_boxes = torch.stack(gt_boxes)
        all_gt_classes = torch.stack(gt_classes)
        all_anchors = torch.stack(anchors)

        foreground = all_gt_classes >= 0
        num_foreground = foreground.sum().item()

        gt_classes_targets = torch.zeros_like(cls_logits)
        gt_classes_targets[foreground, all_gt_classes[foreground]] = 1.0
        loss_cls = sigmoid_focal_loss(cls_logits, gt_classes_targets, reduction="sum")

        pred_boxes = self.box_coder.decode(bbox_regression, all_anchors)
        fg_pred, fg_gt = pred_boxes[foreground], all_gt_boxes[foreground]
        loss_box = reduce_box_loss(self.box_loss, fg_pred, fg_gt)
        self.iou_stats = matched_iou_sum(fg_pred, fg_gt)

        reg_targets = self.box_coder.encode(all_anchors, all_gt_boxes)
        if len(reg_targets) == 0:
            gt_ctrness = reg_targets.new_zeros(reg_targets.size()[:-1])
        else:
            left_right = reg_targets[:, :, [0, 2]]
            top_bottom = reg_targets[:, :, [1, 3]]
            gt_ctrness = torch.sqrt(
                (left_right.min(dim=-1)[0] / left_right.max(dim=-1)[0])
                * (top_bottom.min(dim=-1)[0] / top_bottom.max(dim=-1)[0])
            )
        loss_ctrness = nn.functional.binary_cross_entropy_with_logits(
            bbox_ctrness.squeeze(dim=2)[foreground], gt_ctrness[foreground], reduction="sum"
        )
        norm = max(1, num_foreground)
        return {
            "classification": loss_cls / norm,
            "bbox_regression": self.box_loss_weight * loss_box / norm,
            "bbox_ctrness": loss_ctrness / norm,
        }


class PluggedRetinaNetRegressionHead(RetinaNetRegressionHead):
    """``RetinaNetRegressionHead`` applying ``box_loss`` to boxes decoded from the anchors.

    Args:
        in_channels: FPN channels.
        num_anchors: anchors per location.
        box_loss: per-box loss module.
        box_loss_weight: multiplier of the regression term.
        norm_layer: optional normalisation of the head convs (torchvision's argument).
    """

    def __init__(
        self,
        in_channels: int,
        num_anchors: int,
        box_loss: nn.Module,
        *,
        box_loss_weight: float = 1.0,
        norm_layer: type[nn.Module] | None = None,
    ) -> None:
        super().__init__(in_channels, num_anchors, norm_layer=norm_layer)
        self.box_loss = box_loss
        self.box_loss_weight = box_loss_weight

    def compute_loss(  # type: ignore[override]
        self,
        targets: list[dict[str, Tensor]],
        head_outputs: dict[str, Tensor],
        anchors: list[Tensor],
        matched_idxs: list[Tensor],
    ) -> Tensor:
        losses = []
        iou_stats = []
        bbox_regression = head_outputs["bbox_regression"]
        for targets_per_image, regression, anchors_per_image, matched in zip(
            targets, bbox_regression, anchors, matched_idxs, strict=True
        ):
            fg = torch.where(matched >= 0)[0]
            gt = targets_per_image["boxes"][matched[fg]]
            pred = self.box_coder.decode_single(regression[fg, :], anchors_per_image[fg, :])
            losses.append(reduce_box_loss(self.box_loss, pred, gt) / max(1, fg.numel()))
            iou_stats.append(matched_iou_sum(pred, gt))
        self.iou_stats = torch.stack(iou_stats).sum(dim=0)
        total = losses[0]
        for item in losses[1:]:
            total = total + item
        return self.box_loss_weight * total / max(1, len(targets))


class PluggedRoIHeads(RoIHeads):
    """Faster R-CNN ``RoIHeads`` whose box term is ``box_loss`` on decoded boxes.

    The positive RoIs' class-specific deltas are decoded against their proposals (the
    stock ``BoxCoder`` with weights ``(10, 10, 5, 5)``) and compared with the matched
    ground-truth boxes; the classification term is torchvision's cross-entropy. Inference is
    the stock ``RoIHeads.forward``.

    Build it from a stock ``RoIHeads`` with :meth:`from_stock`.
    """

    box_loss: nn.Module
    box_loss_weight: float

    @classmethod
    def from_stock(
        cls, stock: RoIHeads, box_loss: nn.Module, *, box_loss_weight: float = 1.0
    ) -> PluggedRoIHeads:
        """Same pooler, box head, predictor and thresholds as ``stock``."""
        head = cls(
            box_roi_pool=stock.box_roi_pool,
            box_head=stock.box_head,
            box_predictor=stock.box_predictor,
            fg_iou_thresh=stock.proposal_matcher.high_threshold,
            bg_iou_thresh=stock.proposal_matcher.low_threshold,
            batch_size_per_image=stock.fg_bg_sampler.batch_size_per_image,
            positive_fraction=stock.fg_bg_sampler.positive_fraction,
            bbox_reg_weights=stock.box_coder.weights,
            score_thresh=stock.score_thresh,
            nms_thresh=stock.nms_thresh,
            detections_per_img=stock.detections_per_img,
        )
        head.box_loss = box_loss
        head.box_loss_weight = box_loss_weight
        return head

    def forward(  # type: ignore[override]
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        if not self.training:
            return super().forward(features, proposals, image_shapes, targets)
        if targets is None:
            raise ValueError("Expected targets in training mode but got None")
        proposals, matched_idxs, labels, _ = self.select_training_samples(proposals, targets)
        box_features = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        class_logits, box_regression = self.box_predictor(box_features)
        loss_classifier, loss_box_reg = self.decoded_box_loss(
            class_logits, box_regression, proposals, matched_idxs, labels, targets
        )
        return [], {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}

    def decoded_box_loss(
        self,
        class_logits: Tensor,
        box_regression: Tensor,
        proposals: list[Tensor],
        matched_idxs: list[Tensor],
        labels: list[Tensor],
        targets: list[dict[str, Tensor]],
    ) -> tuple[Tensor, Tensor]:
        """Cross-entropy and the plugged box loss, normalised like ``fastrcnn_loss``."""
        matched_gt = []
        for matched, targets_per_image in zip(matched_idxs, targets, strict=True):
            gt = targets_per_image["boxes"]
            if gt.numel() == 0:
                gt = gt.new_zeros((1, 4))
            matched_gt.append(gt[matched.clamp(min=0)])
        all_labels = torch.cat(labels, dim=0)
        all_gt = torch.cat(matched_gt, dim=0)
        all_proposals = torch.cat(proposals, dim=0)
        loss_classifier = nn.functional.cross_entropy(class_logits, all_labels)

        positive = torch.where(all_labels > 0)[0]
        n = class_logits.shape[0]
        deltas = box_regression.reshape(n, box_regression.size(-1) // 4, 4)
        pred = self.box_coder.decode_single(
            deltas[positive, all_labels[positive]], all_proposals[positive]
        )
        loss_box = reduce_box_loss(self.box_loss, pred, all_gt[positive])
        self.iou_stats = matched_iou_sum(pred, all_gt[positive])
        return loss_classifier, self.box_loss_weight * loss_box / all_labels.numel()


def pop_iou_stats(model: nn.Module) -> Tensor | None:
    """Summed IoU and count of the last training forward's matched boxes; cleared after.

    ``None`` for a detector with the stock loss (its heads do not record it).
    """
    total: Tensor | None = None
    for module in model.modules():
        stats = module.__dict__.pop("iou_stats", None)
        if isinstance(stats, Tensor):
            total = stats if total is None else total + stats
    return total
