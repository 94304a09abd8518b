"""Any noisybox box loss in the IoU term of Ultralytics YOLO's detection loss, without a fork.

Ultralytics (AGPL-3.0) is an optional extra, ``pip install "noisybox[ultralytics]"``; nothing
else in noisybox imports this module. It uses Ultralytics' public extension points only:

- :class:`PluggedBboxLoss` subclasses ``ultralytics.utils.loss.BboxLoss``: its IoU term
  ``sum((1 - CIoU) * weight) / target_scores_sum`` becomes
  ``sum(box_loss(pred, target) * weight) / target_scores_sum`` on the same matched boxes,
  in input-image pixels (``xyxy``); the DFL (or L1) term is Ultralytics' own code path.
- :class:`PluggedDetectionLoss` is ``v8DetectionLoss`` with that box term; assignment
  (TAL), classification (BCE), gains and normalisation are untouched.
- :class:`PluggedDetectionModel` is a ``DetectionModel`` whose ``init_criterion`` builds it.
- :func:`plugged_trainer` returns a ``DetectionTrainer`` subclass whose ``get_model``
  builds that model, with callbacks that ramp the loss's alpha from 1 (the warm-up of its
  :class:`~noisybox.settings.LossSpec`, :meth:`~noisybox.settings.LossSpec.alpha_at`, per
  training batch) and record the matched boxes' mean IoU per epoch.

Paste into an Ultralytics script (``trainer=`` is ``YOLO.train``'s own argument)::

    from ultralytics import YOLO
    from noisybox.detectors.ultralytics import plugged_trainer
    from noisybox.settings import DEFAULT_ALPHA_WARMUP, LossSpec

    trainer = plugged_trainer(LossSpec("alpha-ciou", alpha=3.0, alpha_warmup=0.3))
    YOLO("yolov8n.yaml").train(data="data.yaml", trainer=trainer, epochs=100)

Checkpoints of such a run hold a :class:`PluggedDetectionModel` (Ultralytics strips the
criterion before saving), so loading them needs noisybox importable; predictions are
Ultralytics' own. :func:`configure_offline` turns off everything in Ultralytics that would
reach the network; it lives in :mod:`noisybox.detectors.ultralytics_offline`, which does
not import Ultralytics, because it must run before the first ``import ultralytics``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn
from ultralytics.models.yolo.detect import DetectionTrainer  # type: ignore[import-untyped]
from ultralytics.nn.tasks import DetectionModel  # type: ignore[import-untyped]
from ultralytics.utils import DEFAULT_CFG  # type: ignore[import-untyped]
from ultralytics.utils.loss import BboxLoss, v8DetectionLoss  # type: ignore[import-untyped]
from ultralytics.utils.tal import bbox2dist  # type: ignore[import-untyped]
from ultralytics.utils.torch_utils import unwrap_model  # type: ignore[import-untyped]

from noisybox.detectors.loss_plug import matched_iou_sum
from noisybox.detectors.registry import build_box_loss
from noisybox.errors import NoisyboxError
from noisybox.losses import resolve_loss_spec
from noisybox.settings import DEFAULT_ALPHA_WARMUP, LossSpec

__all__ = [
    "PluggedBboxLoss",
    "PluggedDetectionLoss",
    "PluggedDetectionModel",
    "plugged_box_loss",
    "plugged_trainer",
]


class PluggedBboxLoss(BboxLoss):  # type: ignore[misc]
    """``BboxLoss`` whose IoU term is ``box_loss`` on the matched boxes.

    The matched predicted and assigned target boxes (the grid-unit ``xyxy`` boxes of
    ``BboxLoss.forward``) are scaled by their level's stride to input-image pixels, so
    scale-dependent losses (NWD, MPDIoU) see pixels; ``box_loss`` gives one value per box,
    weighted by the box's summed classification target and divided by
    ``target_scores_sum`` exactly as Ultralytics weights ``1 - CIoU``. The DFL (or L1)
    term is ``BboxLoss``'s own. An empty foreground gives 0 and keeps the graph.

    Args:
        reg_max: DFL bins (``Detect.reg_max``).
        box_loss: per-pair loss ``(Tensor[N, 4], Tensor[N, 4]) -> Tensor[N]``; ``.alpha``
            on it is what the trainer's warm-up ramps.

    Attributes:
        track_iou: when true, ``iou_stats`` accumulates the matched boxes' summed IoU and
            count (detached) over the calls, for the trainer's per-epoch ``fg_iou``.
        last_matched: when ``keep_matched`` is true, ``(pred, target, weight)`` of the
            last call in pixels (detached), for tests and diagnostics.
    """

    def __init__(self, reg_max: int, box_loss: nn.Module) -> None:
        super().__init__(reg_max)
        self.box_loss = box_loss
        self.track_iou = False
        self.keep_matched = False
        self.iou_stats: Tensor | None = None
        self.last_matched: tuple[Tensor, Tensor, Tensor] | None = None

    def forward(
        self,
        pred_dist: Tensor,
        pred_bboxes: Tensor,
        anchor_points: Tensor,
        target_bboxes: Tensor,
        target_scores: Tensor,
        target_scores_sum: Tensor,
        fg_mask: Tensor,
        imgsz: Tensor,
        stride: Tensor,
    ) -> tuple[Tensor, Tensor]:
        fg = fg_mask.nonzero(as_tuple=True)
        weight = target_scores[fg].sum(-1)
        scale = stride[fg[1]]  # [N, 1]: each matched anchor's stride
        pred = pred_bboxes[fg] * scale
        target = target_bboxes[fg] * scale
        if hasattr(self.box_loss, "image_size"):  # MPDIoU: (width, height) of the input
            self.box_loss.image_size = imgsz.flip(0)
        if pred.shape[0] == 0:
            loss_iou = 0.0 * pred_bboxes.sum()
        else:
            loss_iou = (self.box_loss(pred, target) * weight).sum() / target_scores_sum
        if self.track_iou:
            stats = matched_iou_sum(pred, target)
            self.iou_stats = stats if self.iou_stats is None else self.iou_stats + stats
        if self.keep_matched:
            self.last_matched = (pred.detach(), target.detach(), weight.detach())
        return loss_iou, self._distribution_loss(
            pred_dist,
            anchor_points,
            target_bboxes,
            weight[:, None],
            target_scores_sum,
            fg,
            imgsz,
            stride,
        )

    def _distribution_loss(
        self,
        pred_dist: Tensor,
        anchor_points: Tensor,
        target_bboxes: Tensor,
        weight: Tensor,
        target_scores_sum: Tensor,
        fg: tuple[Tensor, ...],
        imgsz: Tensor,
        stride: Tensor,
    ) -> Tensor:
        """``BboxLoss.forward``'s DFL (``reg_max > 1``) or L1 term, as Ultralytics computes it."""
        if self.dfl_loss:
            target_ltrb = bbox2dist(anchor_points, target_bboxes, self.dfl_loss.reg_max - 1)
            loss = (
                self.dfl_loss(pred_dist[fg].view(-1, self.dfl_loss.reg_max), target_ltrb[fg])
                * weight
            )
            return loss.sum() / target_scores_sum
        target_ltrb = bbox2dist(anchor_points, target_bboxes) * stride
        target_ltrb[..., 0::2] /= imgsz[1]
        target_ltrb[..., 1::2] /= imgsz[0]
        pred_dist = pred_dist * stride
        pred_dist[..., 0::2] /= imgsz[1]
        pred_dist[..., 1::2] /= imgsz[0]
        loss = nn.functional.l1_loss(pred_dist[fg], target_ltrb[fg], reduction="none").mean(
            -1, keepdim=True
        )
        return (loss * weight).sum() / target_scores_sum

    def pop_iou_stats(self) -> Tensor | None:
        """The accumulated ``[IoU sum, count]`` since the last call, cleared."""
        stats, self.iou_stats = self.iou_stats, None
        return stats


class PluggedDetectionLoss(v8DetectionLoss):  # type: ignore[misc]
    """Ultralytics' ``v8DetectionLoss`` with :class:`PluggedBboxLoss` as its box loss.

    Args:
        model: the (de-paralleled) ``DetectionModel``.
        box_loss: per-pair box loss (see :class:`PluggedBboxLoss`).
        tal_topk: the task-aligned assigner's top-k (Ultralytics' default 10).
    """

    def __init__(self, model: nn.Module, box_loss: nn.Module, tal_topk: int = 10) -> None:
        super().__init__(model, tal_topk=tal_topk)
        self.bbox_loss = PluggedBboxLoss(self.reg_max, box_loss).to(self.device)


def plugged_box_loss(model: Any) -> PluggedBboxLoss | None:
    """The :class:`PluggedBboxLoss` of ``model``'s criterion (built if not yet), or ``None``."""
    inner = unwrap_model(model)
    if not isinstance(inner, PluggedDetectionModel):
        return None
    if getattr(inner, "criterion", None) is None:
        inner.criterion = inner.init_criterion()
    bbox = inner.criterion.bbox_loss
    return bbox if isinstance(bbox, PluggedBboxLoss) else None


class PluggedDetectionModel(DetectionModel):  # type: ignore[misc]
    """``DetectionModel`` whose ``init_criterion`` builds :class:`PluggedDetectionLoss`.

    The loss is kept as its name and arguments (plain, picklable attributes); the module
    is built with the criterion, on the model's device.

    Args:
        cfg: model YAML path or dict, as ``DetectionModel``.
        loss: a name of ``noisybox.losses.list_losses()``, or a
            :class:`~noisybox.settings.LossSpec` (then no ``alpha`` or ``loss_kwargs``).
        alpha: the loss's alpha (``None``: its registered default).
        loss_kwargs: further ``get_loss`` arguments.
        **kwargs: ``DetectionModel``'s (``ch``, ``nc``, ``verbose``).

    Raises:
        NoisyboxError: an end-to-end (one-to-one) head, whose criterion is not
            ``v8DetectionLoss``.
    """

    def __init__(
        self,
        cfg: str | dict[str, Any] = "yolov8n.yaml",
        *,
        loss: str | LossSpec = "ciou",
        alpha: float | None = None,
        loss_kwargs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(cfg, **kwargs)
        head = self.model[-1]  # type: ignore[index]
        if getattr(head, "one2one_cv2", None) is not None:
            raise NoisyboxError(
                f"Expected a YOLO model with a one-to-many Detect head (v5u, v8, 11) but got "
                f"an end-to-end head in {cfg!r}"
            )
        build_box_loss(loss, alpha=alpha, loss_kwargs=loss_kwargs)  # fail early
        if isinstance(loss, LossSpec):
            spec = loss
            loss, alpha, loss_kwargs = spec.name, spec.alpha, spec.kwargs
        # plain attributes, so that a checkpoint unpickles without the spec's class
        self.box_loss_name = loss
        self.box_loss_alpha = alpha
        self.box_loss_kwargs = dict(loss_kwargs or {})

    def init_criterion(self) -> v8DetectionLoss:
        box_loss = build_box_loss(
            self.box_loss_name, alpha=self.box_loss_alpha, loss_kwargs=self.box_loss_kwargs
        )
        if box_loss is None:  # the stock name: Ultralytics' own criterion
            return super().init_criterion()  # type: ignore[no-any-return]
        return PluggedDetectionLoss(self, box_loss)


class _PluggedTrainer(DetectionTrainer):  # type: ignore[misc]
    """``DetectionTrainer`` building a :class:`PluggedDetectionModel`; see :func:`plugged_trainer`."""

    loss_spec: LossSpec = LossSpec("ciou")
    loss_name: str = "ciou"
    loss_alpha: float | None = None
    loss_alpha_warmup: float = DEFAULT_ALPHA_WARMUP
    loss_kwargs: dict[str, Any] = {}

    def __init__(
        self, cfg: Any = DEFAULT_CFG, overrides: Any = None, _callbacks: Any = None
    ) -> None:
        super().__init__(cfg, overrides, _callbacks)
        # alpha read from the loss registry once, not at every batch
        self.resolved_loss = resolve_loss_spec(self.loss_spec)
        self.target_alpha: float | None = None
        self.box_alpha: float | None = None
        self.fg_iou_history: list[float] = []
        self._batch_in_epoch = 0
        self.add_callback("on_train_epoch_start", _epoch_start)
        self.add_callback("on_train_batch_start", _batch_start)
        self.add_callback("on_train_epoch_end", _epoch_end)

    def get_model(
        self, cfg: Any = None, weights: Any = None, verbose: bool = True
    ) -> PluggedDetectionModel:
        model = PluggedDetectionModel(
            cfg,
            loss=self.loss_spec,
            nc=self.data["nc"],
            ch=self.data["channels"],
            verbose=verbose and int(os.environ.get("RANK", "-1")) in (-1, 0),
        )
        model = self.set_model_names_for_load(model)
        if weights:
            model.load(weights)
        return model


def _epoch_start(trainer: _PluggedTrainer) -> None:
    trainer._batch_in_epoch = 0
    box = plugged_box_loss(trainer.model)
    if box is not None:
        box.track_iou = True
        box.pop_iou_stats()
        if trainer.target_alpha is None and hasattr(box.box_loss, "alpha"):
            trainer.target_alpha = trainer.resolved_loss.alpha


def _batch_start(trainer: _PluggedTrainer) -> None:
    if trainer.target_alpha is not None:
        steps_per_epoch = len(trainer.train_loader)
        step = trainer.epoch * steps_per_epoch + trainer._batch_in_epoch
        alpha = trainer.resolved_loss.alpha_at(step, trainer.epochs * steps_per_epoch)
        for model in (trainer.model, getattr(trainer.ema, "ema", None)):
            box = None if model is None else plugged_box_loss(model)
            if box is not None and hasattr(box.box_loss, "alpha"):
                setattr(box.box_loss, "alpha", alpha)  # noqa: B010 (a plain attribute)
        trainer.box_alpha = alpha
    trainer._batch_in_epoch += 1


def _epoch_end(trainer: _PluggedTrainer) -> None:
    box = plugged_box_loss(trainer.model)
    stats = None if box is None else box.pop_iou_stats()
    if stats is not None and float(stats[1]) > 0:
        trainer.fg_iou_history.append(float(stats[0] / stats[1]))
    else:
        trainer.fg_iou_history.append(math.nan)


def plugged_trainer(
    loss: str | LossSpec,
    *,
    alpha: float | None = None,
    alpha_warmup: float | None = None,
    **loss_kwargs: Any,
) -> type[DetectionTrainer]:
    """A ``DetectionTrainer`` class training with ``loss`` in the box term; for ``YOLO.train``.

    Each training batch sets the loss's alpha to the spec's
    ``alpha_at(batch, epochs * batches_per_epoch)`` (linear from 1 over the first
    ``alpha_warmup`` share of the batches; Ultralytics' own learning-rate warm-up is
    unchanged). The trainer's ``fg_iou_history`` holds each epoch's mean IoU of the matched
    boxes and ``box_alpha`` the last alpha used.

    Args:
        loss: a :class:`~noisybox.settings.LossSpec` (then nothing else), or a name of
            ``noisybox.losses.list_losses()`` with the settings below; ``"torchvision"``
            (noisybox's name for a detector's stock loss) gives Ultralytics' own trainer
            and loss.
        alpha: the loss's alpha after warm-up (``None``: its registered default).
        alpha_warmup: share of the training batches over which alpha ramps from 1
            (``None``: :data:`~noisybox.settings.DEFAULT_ALPHA_WARMUP`).
        **loss_kwargs: further ``noisybox.losses.get_loss`` arguments.

    Raises:
        ValueError: unknown loss name or bad arguments (raised here, not in training).

    >>> trainer = plugged_trainer(LossSpec("alpha-ciou", alpha=3.0))
    >>> trainer.__name__, trainer.loss_alpha, trainer.loss_spec.id_label
    ('PluggedTrainer', 3.0, 'alpha-ciou@3')
    >>> plugged_trainer("alpha-ciou", alpha=3.0).loss_spec == trainer.loss_spec
    True
    """
    spec = _loss_spec(loss, alpha, alpha_warmup, loss_kwargs)
    if build_box_loss(spec) is None:
        return DetectionTrainer  # type: ignore[no-any-return]
    return type(
        "PluggedTrainer",
        (_PluggedTrainer,),
        {
            "loss_spec": spec,
            "loss_name": spec.name,
            "loss_alpha": spec.alpha,
            "loss_alpha_warmup": spec.resolved_warmup,
            "loss_kwargs": spec.kwargs,
            "__module__": __name__,
        },
    )


def _loss_spec(
    loss: str | LossSpec,
    alpha: float | None,
    alpha_warmup: float | None,
    loss_kwargs: Mapping[str, Any],
) -> LossSpec:
    """The spec of :func:`plugged_trainer`'s arguments (bounds checked by the spec)."""
    if not isinstance(loss, LossSpec):
        return LossSpec(loss, alpha, alpha_warmup, loss_kwargs)
    beside = {"alpha": alpha, "alpha_warmup": alpha_warmup, **loss_kwargs}
    given = {k: v for k, v in beside.items() if v is not None}
    if given:
        key = next(iter(given))
        raise NoisyboxError(
            f"Expected {key} inside the loss spec {loss.id_label} but got {key}="
            f"{given[key]!r} beside it"
        )
    return loss
