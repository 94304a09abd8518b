"""The training loop: one detector, one box loss, one dataset, resumable and DDP-ready.

:func:`train` runs a :class:`TrainConfig` end to end: device auto-selection (CUDA, then
MPS, then CPU), optional mixed precision, SGD or AdamW with a linear warm-up and cosine
decay (stepped per iteration), gradient clipping, a guard that skips and counts non-finite
losses, the alpha warm-up of the box loss, a checkpoint after every epoch (atomic
``out_dir/last.pt``) that a later call resumes exactly, and a clean-test evaluation at
the end. Under ``torchrun`` every process runs the same call; the process group is NCCL on
CUDA and gloo on CPU, the data is split with a ``DistributedSampler`` and rank 0 writes the
checkpoint and evaluates.

Randomness: the model is initialised from ``torch.manual_seed(seed)`` (torchvision
initialises, and Faster R-CNN samples RoIs, with torch's global generator, so ``train``
seeds it and saves its state in the checkpoint); data order and augmentation come from
``noisybox.data.build_dataloader(seed=seed)`` per epoch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from noisybox._fileio import atomic_write_text
from noisybox.detectors import (
    LOSS_KEYS,
    box_loss_modules,
    build_detector,
    list_backbones,
    list_detectors,
    pop_iou_stats,
    set_box_loss_alpha,
)
from noisybox.engine.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from noisybox.engine.curves import convergence
from noisybox.engine.distributed import (
    DistInfo,
    all_gather_objects,
    all_reduce_sum,
    barrier,
    cleanup_distributed,
    init_distributed,
    select_device,
)
from noisybox.engine.ema import build_ema
from noisybox.engine.schedules import alpha_at_step, warmup_cosine_factor
from noisybox.errors import NoisyboxError

__all__ = [
    "DEFAULT_ALPHA_WARMUP",
    "TrainConfig",
    "TrainResult",
    "collapse_reasons",
    "drops_single_image_batch",
    "evaluate_checkpoint",
    "evaluate_model",
    "predict",
    "train",
]

#: Default share of the training steps over which alpha ramps from 1 to its target.
#: Measured (FCOS, ResNet-18 FPN-64, random init, 800 shapes images at 128 px, 3 epochs):
#: SGD with ``alpha = 3`` and no ramp collapses (mean matched IoU 0.001, AP50 0.000);
#: with a 0.3 ramp it trains (matched IoU 0.53, AP50 0.078). AdamW does not collapse
#: even without a ramp (its per-parameter step size undoes the small gradient scale).
DEFAULT_ALPHA_WARMUP = 0.3

_OPTIMIZERS = ("sgd", "adamw")
_AMP_MODES = ("auto", "off", "fp16", "bf16")
_DEFAULT_LR = {"sgd": 0.01, "adamw": 0.002}
# Fields that may differ between a checkpoint and the config that resumes it.
_RESUME_FREE = frozenset(
    {"out_dir", "device", "workers", "resume", "eval_batch_size", "stop_after_epoch"}
)


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run (JSON-able through :meth:`to_dict`).

    Attributes:
        train_annotations: training annotation file or folder (COCO json, VOC devkit,
            YOLO folder); may be a noisy file written by ``noisybox corrupt``.
        train_images: image root of the training files (``None``: the format's default).
        val_annotations: clean test annotations evaluated after the last epoch (optional).
        val_images: image root of the test files.
        out_dir: where ``last.pt`` and ``result.json`` go.
        detector: ``fcos``, ``retinanet`` or ``fasterrcnn``.
        backbone: ``resnet18``, ``resnet34``, ``resnet50`` or ``mobilenet_v3_large``.
        loss: a ``noisybox.losses`` name or ``"torchvision"`` (the detector's stock loss).
        alpha: the loss's alpha after warm-up (``None``: the loss's default).
        alpha_warmup: share of the steps over which alpha ramps linearly from 1.
        loss_kwargs: more arguments for ``noisybox.losses.get_loss``.
        epochs: passes over the training set.
        batch_size: images per step and process.
        lr: peak learning rate (``None``: 0.01 for SGD, 0.002 for AdamW).
        optimizer: ``adamw`` (default; it learns a random-init detector faster on the
            shapes data and cannot suffer the alpha > 1 collapse) or ``sgd`` (momentum 0.9).
        weight_decay: L2 (SGD) or decoupled (AdamW) weight decay.
        lr_warmup: share of the steps of linear learning-rate warm-up.
        grad_clip: maximum gradient norm (``0`` disables clipping).
        image_size: training letterbox side; the detector resizes test images to it.
        fpn_channels: FPN width.
        seed: seeds initialisation, data order and augmentation.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1`` or ``mps``.
        amp: ``auto`` (float16 on CUDA, off elsewhere), ``off``, ``fp16`` (CUDA) or
            ``bf16`` (CPU or CUDA autocast).
        workers: data loader processes.
        weights: local detector weights file to start from.
        weights_backbone: local classification weights file for the backbone body.
        noise: online box noise for training (``noisybox.noise.BoxNoise`` options).
        train_format: annotation format of the training files (default: detected).
        val_format: annotation format of the test files.
        detector_kwargs: more arguments for ``noisybox.detectors.build_detector``.
        resume: continue from ``out_dir/last.pt`` when it exists.
        eval_batch_size: images per inference batch.
        stop_after_epoch: end this call once this many epochs are done (the run stays
            resumable; for time-limited jobs). ``None`` trains to ``epochs``.
        eval_every: evaluate the clean test set after every ``eval_every`` epochs (and
            the last) and keep each result in the history: the learning curve. ``0``
            evaluates after the last epoch only.
        ema_decay: keep an exponential moving average of the weights (parameters and
            BatchNorm statistics) with this decay, ramped up over the first steps as
            YOLOv5/YOLOv8 do, and evaluate the average instead of the raw weights. ``0``
            turns it off.
        scale_range: ``[low, high]`` random zoom of each training image after the letterbox
            (see ``noisybox.data.build_transforms``); ``None`` keeps the scale.
    """

    train_annotations: str
    train_images: str | None = None
    val_annotations: str | None = None
    val_images: str | None = None
    out_dir: str = "runs/train"
    detector: str = "fcos"
    backbone: str = "resnet18"
    loss: str = "torchvision"
    alpha: float | None = None
    alpha_warmup: float = DEFAULT_ALPHA_WARMUP
    loss_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    epochs: int = 12
    batch_size: int = 8
    lr: float | None = None
    optimizer: str = "adamw"
    weight_decay: float = 1e-4
    lr_warmup: float = 0.05
    grad_clip: float = 10.0
    image_size: int = 512
    fpn_channels: int = 128
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    workers: int = 2
    weights: str | None = None
    weights_backbone: str | None = None
    noise: dict[str, Any] | None = None
    train_format: str | None = None
    val_format: str | None = None
    detector_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    resume: bool = True
    eval_batch_size: int = 8
    stop_after_epoch: int | None = None
    eval_every: int = 0
    ema_decay: float = 0.0
    scale_range: list[float] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.amp, bool):  # accept amp=True/False
            self.amp = "auto" if self.amp else "off"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (paths as strings).

        >>> TrainConfig("train.json", epochs=2).to_dict()["epochs"]
        2
        """
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainConfig:
        """Build from a dict such as :meth:`to_dict` wrote; unknown keys raise.

        Raises:
            NoisyboxError: an unknown key or a missing ``train_annotations``.

        >>> TrainConfig.from_dict({"train_annotations": "a.json", "loss": "alpha-iou"}).loss
        'alpha-iou'
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise NoisyboxError(
                f"Expected training config keys among {sorted(names)} but got {unknown[0]!r}"
            )
        if not data.get("train_annotations"):
            raise NoisyboxError("Expected train_annotations in the training config but got none")
        values = dict(data)
        for key in ("loss_kwargs", "detector_kwargs"):
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**values)

    @property
    def resolved_lr(self) -> float:
        return float(self.lr) if self.lr is not None else _DEFAULT_LR[self.optimizer]

    def validate(self) -> None:
        """Check every value; raise :class:`~noisybox.errors.NoisyboxError` on the first bad one."""
        checks: list[tuple[bool, str, Any]] = [
            (self.detector in list_detectors(), f"detector in {list_detectors()}", self.detector),
            (self.backbone in list_backbones(), f"backbone in {list_backbones()}", self.backbone),
            (self.optimizer in _OPTIMIZERS, f"optimizer in {list(_OPTIMIZERS)}", self.optimizer),
            (self.amp in _AMP_MODES, f"amp in {list(_AMP_MODES)}", self.amp),
            (int(self.epochs) == self.epochs and self.epochs >= 1, "epochs >= 1", self.epochs),
            (self.batch_size >= 1, "batch_size >= 1", self.batch_size),
            (0 <= self.alpha_warmup <= 1, "alpha_warmup in [0, 1]", self.alpha_warmup),
            (0 <= self.lr_warmup < 1, "lr_warmup in [0, 1)", self.lr_warmup),
            (self.lr is None or self.lr > 0, "lr > 0", self.lr),
            (self.grad_clip >= 0, "grad_clip >= 0", self.grad_clip),
            (self.image_size >= 32, "image_size >= 32", self.image_size),
            (self.workers >= 0, "workers >= 0", self.workers),
            (self.alpha is None or self.alpha >= 0, "alpha >= 0", self.alpha),
            (self.eval_every >= 0, "eval_every >= 0", self.eval_every),
            (0 <= self.ema_decay < 1, "ema_decay in [0, 1)", self.ema_decay),
            (
                self.scale_range is None
                or (len(self.scale_range) == 2 and 0 < self.scale_range[0] <= self.scale_range[1]),
                "scale_range [low, high] with 0 < low <= high",
                self.scale_range,
            ),
        ]
        for ok, expected, got in checks:
            if not ok:
                raise NoisyboxError(f"Expected {expected} but got {got!r}")
        if self.loss != "torchvision":
            from noisybox.losses import list_losses

            if self.loss not in list_losses():
                raise NoisyboxError(
                    f"Expected loss in {['torchvision', *list_losses()]} but got {self.loss!r}"
                )


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns (and writes to ``out_dir/result.json``).

    Attributes:
        config: the run's :class:`TrainConfig` as a dict.
        history: one dict per epoch: ``epoch``, ``loss``, ``box_loss``, ``cls_loss``,
            ``losses`` (every term), ``fg_iou`` (mean IoU of the matched predicted boxes,
            ``None`` with the stock loss), ``alpha`` (at the end of the epoch),
            ``lr``, ``images_per_s``, ``skipped_nonfinite``, ``steps``, ``time_s``.
        checkpoint: path of ``last.pt``.
        wall_time_s: seconds spent in this call.
        metrics: clean-test metrics of ``coco_evaluate`` (``None`` without test files).
        seeds: the seeds used (``seed``, ``init_seed``, ``data_seed``, ``rank_seeds``).
        device: the device trained on.
        world_size: number of processes.
        collapsed: reasons from :func:`collapse_reasons` (empty: trained normally).
        weights_digests: SHA-256 of the final parameters on every rank (equal under DDP).
        convergence: :func:`~noisybox.engine.curves.convergence` of the learning curve
            (``None`` for an unfinished run).
    """

    config: dict[str, Any]
    history: list[dict[str, Any]]
    checkpoint: Path
    wall_time_s: float
    metrics: dict[str, float] | None = None
    seeds: dict[str, Any] = dataclasses.field(default_factory=dict)
    device: str = "cpu"
    world_size: int = 1
    collapsed: list[str] = dataclasses.field(default_factory=list)
    weights_digests: list[str] = dataclasses.field(default_factory=list)
    convergence: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["checkpoint"] = str(self.checkpoint)
        return out


def collapse_reasons(
    history: Sequence[Mapping[str, Any]],
    *,
    ap50: float | None = None,
    reference_ap50: float | None = None,
    min_drop: float = 0.05,
    min_fg_iou: float = 0.2,
    ap50_floor: float = 0.02,
) -> list[str]:
    """Why a run looks collapsed (an empty list when it trained).

    Three signals, any of which marks the run:

    - the matched predicted boxes barely overlap their targets: the last epoch's
      ``fg_iou`` (alpha-free, recorded by the plugged heads) is below ``min_fg_iou``;
    - without ``fg_iou``, and only when alpha was constant over the run (the loss scale
      moves with alpha during a warm-up), the box loss did not fall: the last epoch's
      ``box_loss`` is above ``1 - min_drop`` times the first epoch's;
    - ``ap50`` is below ``ap50_floor`` while the ``reference_ap50`` of its alpha = 1 twin
      is at least twice the floor.

    Args:
        history: :attr:`TrainResult.history`.
        ap50: the run's clean AP50.
        reference_ap50: AP50 of the same cell trained with alpha = 1.
        min_drop: relative fall of the box loss expected over a healthy run.
        min_fg_iou: mean matched IoU below which the regression branch has collapsed.
        ap50_floor: AP50 counted as zero.

    >>> h = [{"box_loss": 1.0, "alpha": 3.0, "fg_iou": 0.01}, {"box_loss": 0.99, "alpha": 3.0, "fg_iou": 0.02}]
    >>> [r.split(":")[0] for r in collapse_reasons(h, ap50=0.0, reference_ap50=0.6)]
    ['matched boxes do not overlap their targets', 'AP50 near zero']
    >>> [r.split(":")[0] for r in collapse_reasons([{"box_loss": 1.0}, {"box_loss": 0.99}])]
    ['box loss did not fall']
    >>> collapse_reasons([{"box_loss": 1.0, "alpha": 1.0}, {"box_loss": 0.5, "alpha": 1.0}])
    []
    """
    reasons: list[str] = []
    fg_iou = history[-1].get("fg_iou") if history else None
    rows = [h for h in history if h.get("box_loss") is not None and math.isfinite(h["box_loss"])]
    if fg_iou is not None:
        if fg_iou < min_fg_iou:
            reasons.append(
                f"matched boxes do not overlap their targets: mean IoU {fg_iou:.3f} < {min_fg_iou}"
            )
    elif len(rows) >= 2 and len({h.get("alpha") for h in rows}) == 1:
        first, last = rows[0]["box_loss"], rows[-1]["box_loss"]
        if last > (1 - min_drop) * first:
            reasons.append(f"box loss did not fall: {first:.4f} -> {last:.4f} over the run")
    if (
        ap50 is not None
        and reference_ap50 is not None
        and ap50 < ap50_floor
        and reference_ap50 >= 2 * ap50_floor
    ):
        reasons.append(f"AP50 near zero: {ap50:.3f} while alpha = 1 reaches {reference_ap50:.3f}")
    return reasons


# ----------------------------------------------------------------------------- helpers


def _build_model(cfg: TrainConfig, num_classes: int, *, load_weights: bool) -> nn.Module:
    kwargs = dict(cfg.detector_kwargs)
    return build_detector(
        cfg.detector,
        num_classes,
        backbone=cfg.backbone,
        loss=cfg.loss,
        alpha=cfg.alpha,
        loss_kwargs=cfg.loss_kwargs,
        weights=cfg.weights if load_weights else None,
        weights_backbone=cfg.weights_backbone if load_weights else None,
        image_size=cfg.image_size,
        fpn_channels=cfg.fpn_channels,
        **kwargs,
    )


def _target_alpha(model: nn.Module) -> float | None:
    for loss in box_loss_modules(model):
        alpha = getattr(loss, "alpha", None)
        if alpha is not None:
            return float(alpha)
    return None


def _autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp in ("auto", "fp16"):
        if device.type != "cuda":
            raise NoisyboxError(f"Expected a CUDA device for amp='fp16' but got {device}")
        return torch.float16
    if device.type == "mps":
        raise NoisyboxError("Expected amp='off' on Apple MPS but got amp='bf16'")
    return torch.bfloat16


def _make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        # no weight decay on norm layers and biases (the detection recipes' convention)
        (no_decay if param.ndim <= 1 or name.endswith(".bias") else decay).append(param)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.resolved_lr, momentum=0.9)
    return torch.optim.AdamW(groups, lr=cfg.resolved_lr)


def _to_device(
    images: list[torch.Tensor], targets: list[dict[str, Any]], device: torch.device
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    non_blocking = device.type == "cuda"
    images = [img.to(device, non_blocking=non_blocking) for img in images]
    moved = []
    for t in targets:
        boxes = t["boxes"].to(device, non_blocking=non_blocking)
        labels = t["labels"].to(device, non_blocking=non_blocking)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        moved.append({"boxes": boxes[keep], "labels": labels[keep]})
    return images, moved


def _rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _check_resumable(stored: Mapping[str, Any], cfg: TrainConfig, path: Path) -> None:
    current = cfg.to_dict()
    for key in sorted(set(stored) | set(current)):
        if key in _RESUME_FREE:
            continue
        if stored.get(key) != current.get(key):
            raise NoisyboxError(
                f"Expected the config to match the checkpoint {path} to resume but got "
                f"{key}={current.get(key)!r} (checkpoint: {stored.get(key)!r}); use another "
                "out_dir or resume=False"
            )


def _datasets(cfg: TrainConfig) -> tuple[Any, Any | None]:
    from noisybox.data import DetectionDataset, build_transforms

    train_set = DetectionDataset(
        cfg.train_annotations,
        cfg.train_images,
        transforms=build_transforms(
            True,
            cfg.image_size,
            cfg.noise,
            scale_range=tuple(cfg.scale_range) if cfg.scale_range else None,  # type: ignore[arg-type]
        ),
        format=cfg.train_format,
    )
    val_set = None
    if cfg.val_annotations:
        val_set = DetectionDataset(
            cfg.val_annotations, cfg.val_images, transforms=None, format=cfg.val_format
        )
    return train_set, val_set


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def _progress_bar(total: int, desc: str, enabled: bool) -> Iterator[Any]:
    from tqdm.auto import tqdm

    bar = tqdm(
        total=total,
        desc=desc,
        file=sys.stderr,
        disable=not enabled,
        leave=False,
        dynamic_ncols=True,
    )
    try:
        yield bar
    finally:
        bar.close()


# ----------------------------------------------------------------------------- train


def train(cfg: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Train ``cfg.detector`` with ``cfg.loss`` and evaluate it on the clean test files.

    Resumes from ``out_dir/last.pt`` when it exists (and ``cfg.resume``): weights, weight
    average, optimizer, scheduler, gradient scaler, RNG states and epoch are restored, so
    ``epochs = 2`` in one call equals ``epochs = 1`` then a resumed call with ``epochs = 2``
    bit for bit on the same device. A finished run is returned without training again.

    With ``cfg.eval_every = k > 0`` the clean test set is evaluated after every k-th epoch
    (and the last), and each evaluation is stored in that epoch's ``history`` entry
    (``metrics``, ``eval_time_s``): the learning curve.

    When an epoch would end with a batch of a single image (``batch_size > 1``), that
    batch is dropped (see :func:`drops_single_image_batch`): BatchNorm in training mode
    cannot normalise one value per channel (a 1x1 feature map of one image), and the
    order is reshuffled every epoch, so each image is still seen.

    Args:
        cfg: the run.
        progress: progress on stderr (rank 0 only) with loss and images/s.

    Returns:
        The :class:`TrainResult` (also written to ``out_dir/result.json`` by rank 0).

    Raises:
        NoisyboxError: bad config, unreadable data, or a checkpoint from another config.
    """
    start_time = time.perf_counter()
    cfg.validate()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    try:
        device = select_device(cfg.device, local_rank=local_rank)
    except ValueError as exc:
        raise NoisyboxError(str(exc)) from None
    dist_info = init_distributed(device)
    try:
        run = _setup(cfg, device, dist_info)
        end_epoch = (
            cfg.epochs if cfg.stop_after_epoch is None else min(cfg.epochs, cfg.stop_after_epoch)
        )
        for epoch in range(run.start_epoch, end_epoch):
            run.history.append(_train_epoch(run, epoch, progress=progress))
            _evaluate_epoch(run, epoch + 1)
            _save(run, epoch + 1)
        return _finish(run, start_time)
    finally:
        cleanup_distributed(dist_info)


@dataclasses.dataclass
class _Run:
    """The state of one training run, shared by the setup, epoch, step and finish phases."""

    cfg: TrainConfig
    device: torch.device
    info: DistInfo
    autocast_dtype: torch.dtype | None
    train_set: Any
    val_set: Any
    model: nn.Module
    train_model: nn.Module
    ema: Any
    target_alpha: float | None
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    loader: Any
    steps_per_epoch: int
    total_steps: int
    seeds: dict[str, Any]
    history: list[dict[str, Any]]
    start_epoch: int = 0
    global_step: int = 0
    metrics: dict[str, float] | None = None

    @property
    def ckpt_path(self) -> Path:
        return Path(self.cfg.out_dir) / "last.pt"

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model


def _setup(cfg: TrainConfig, device: torch.device, info: DistInfo) -> _Run:
    """Build data, model, optimiser and schedules, and restore them from a checkpoint."""
    from torch.nn.parallel import DistributedDataParallel
    from torch.utils.data.distributed import DistributedSampler

    from noisybox.data import build_dataloader

    train_set, val_set = _datasets(cfg)
    if len(train_set) == 0:
        raise NoisyboxError(f"Expected training images in {cfg.train_annotations} but got none")

    torch.manual_seed(cfg.seed)  # torchvision initialises with the global generator
    model = _build_model(cfg, train_set.num_classes, load_weights=True).to(device)
    target_alpha = _target_alpha(model)
    optimizer = _make_optimizer(cfg, model)
    ema = build_ema(model, cfg.ema_decay) if cfg.ema_decay > 0 else None

    sampler: DistributedSampler | None = None
    if info.enabled:
        sampler = DistributedSampler(
            train_set, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed
        )
    loader = build_dataloader(
        train_set,
        batch_size=cfg.batch_size,
        shuffle=True,
        workers=cfg.workers,
        seed=cfg.seed,
        pin_memory=device.type == "cuda",
        sampler=sampler,
        drop_last=drops_single_image_batch(len(train_set), cfg.batch_size, info.world_size),
    )
    steps_per_epoch = len(loader)
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = int(round(cfg.lr_warmup * total_steps))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: warmup_cosine_factor(step, total_steps, warmup_steps)
    )
    autocast_dtype = _autocast_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype == torch.float16)
    seeds = {
        "seed": cfg.seed,
        "init_seed": cfg.seed,
        "data_seed": cfg.seed,
        "rank_seeds": all_gather_objects(cfg.seed + info.rank, info),
    }
    run = _Run(
        cfg=cfg,
        device=device,
        info=info,
        autocast_dtype=autocast_dtype,
        train_set=train_set,
        val_set=val_set,
        model=model,
        train_model=model,
        ema=ema,
        target_alpha=target_alpha,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=scaler,
        loader=loader,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        seeds=seeds,
        history=[],
    )
    if cfg.resume and run.ckpt_path.exists():
        _restore(run, load_checkpoint(run.ckpt_path))
    else:
        # each rank its own stream for anything sampled during training (RoI sampling)
        torch.manual_seed(cfg.seed + info.rank)
    if info.enabled:
        run.train_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    return run


def _restore(run: _Run, state: Mapping[str, Any]) -> None:
    _check_resumable(state["config"], run.cfg, run.ckpt_path)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        run.scaler.load_state_dict(state["scaler"])
    if run.ema is not None:
        run.ema.load_state_dict(state["ema"])
    run.start_epoch, run.global_step = int(state["epoch"]), int(state["global_step"])
    run.history = list(state["history"])
    run.metrics = state.get("metrics")
    rng = state["rng"]
    rank = run.info.rank
    _set_rng_state(rng[rank] if rank < len(rng) else rng[0], run.device)


def _train_epoch(run: _Run, epoch: int, *, progress: bool) -> dict[str, Any]:
    """One pass over the training set; returns the epoch's history entry."""
    cfg, info, device = run.cfg, run.info, run.device
    run.train_model.train()
    run.loader.sampler.set_epoch(epoch)
    sums: dict[str, torch.Tensor] = {}
    iou_sum = torch.zeros(2, dtype=torch.float64, device=device)
    counts = torch.zeros(3, dtype=torch.float64, device=device)  # steps, skipped, images
    epoch_start = time.perf_counter()
    alpha = None
    desc = f"epoch {epoch + 1}/{cfg.epochs}"
    with _progress_bar(run.steps_per_epoch, desc, progress and info.is_main) as bar:
        for step_in_epoch, (images, targets) in enumerate(run.loader):
            if run.target_alpha is not None:
                alpha = alpha_at_step(
                    run.global_step, run.total_steps, run.target_alpha, cfg.alpha_warmup
                )
                set_box_loss_alpha(run.model, alpha)
            images, targets = _to_device(images, targets, device)
            loss_dict, loss, skipped = _train_step(run, images, targets)
            counts += torch.tensor(
                [1.0, float(skipped), len(images)], dtype=torch.float64, device=device
            )
            stats = pop_iou_stats(run.model)
            if not skipped:
                for key, value in loss_dict.items():
                    sums[key] = sums.get(key, 0.0) + value.detach().to(torch.float64)
                sums["__total__"] = sums.get("__total__", 0.0) + loss.detach().to(torch.float64)
                if stats is not None:
                    iou_sum += stats.to(torch.float64)
            if step_in_epoch % 10 == 0 or step_in_epoch == run.steps_per_epoch - 1:
                seen = counts[2].item() * info.world_size
                bar.set_postfix(
                    loss=f"{loss.detach().item():.3f}",
                    img_s=f"{seen / max(1e-9, time.perf_counter() - epoch_start):.1f}",
                )
            bar.update(1)
    box_key, cls_key = LOSS_KEYS[cfg.detector]
    return _epoch_record(
        epoch,
        sums,
        iou_sum,
        counts,
        info,
        box_key,
        cls_key,
        alpha,
        run.scheduler,
        time.perf_counter() - epoch_start,
    )


def _train_step(
    run: _Run, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
) -> tuple[dict[str, torch.Tensor], torch.Tensor, bool]:
    """Forward, backward and optimiser step; ``skipped`` when the loss was not finite."""
    cfg, scaler, optimizer = run.cfg, run.scaler, run.optimizer
    with _autocast(run.device, run.autocast_dtype):
        loss_dict = run.train_model(images, targets)
    loss = sum(loss_dict.values())
    assert isinstance(loss, torch.Tensor)
    finite = torch.isfinite(loss.detach()).to(torch.float64).reshape(1)
    all_reduce_sum(finite, run.info)
    skipped = bool(finite.item() < run.info.world_size)
    if not skipped:
        scaler.scale(loss).backward()
        if cfg.grad_clip > 0:
            scaler.unscale_(optimizer)
            norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), cfg.grad_clip)
            if not torch.isfinite(norm) and not scaler.is_enabled():
                skipped = True
        if not skipped:
            scaler.step(optimizer)
            if run.ema is not None:
                run.ema.update_parameters(run.model)
        scaler.update()
    optimizer.zero_grad(set_to_none=True)
    with warnings.catch_warnings():
        # a skipped first step makes torch warn about the call order
        warnings.simplefilter("ignore", UserWarning)
        run.scheduler.step()
    run.global_step += 1
    return loss_dict, loss, skipped


def _evaluation_due(cfg: TrainConfig, epoch: int) -> bool:
    """Whether the clean test set is evaluated after ``epoch`` (1-based).

    >>> [e for e in range(1, 11) if _evaluation_due(TrainConfig("t.json", epochs=10, eval_every=4,
    ...                                                         val_annotations="v.json"), e)]
    [4, 8, 10]
    """
    if not cfg.val_annotations:
        return False
    return epoch == cfg.epochs or (cfg.eval_every > 0 and epoch % cfg.eval_every == 0)


def _evaluate_epoch(run: _Run, epoch: int) -> None:
    """Evaluate on the clean test set when due; the result goes into the epoch's history."""
    if run.val_set is None or not _evaluation_due(run.cfg, epoch):
        return
    start = time.perf_counter()
    metrics = None
    if run.info.is_main:
        metrics = evaluate_model(
            run.eval_model,
            run.val_set,
            category_ids=run.train_set.category_ids,
            device=run.device,
            batch_size=run.cfg.eval_batch_size,
            workers=min(run.cfg.workers, 2),
        )
    metrics = all_gather_objects(metrics, run.info)[0]
    run.history[-1]["metrics"] = metrics
    run.history[-1]["eval_time_s"] = time.perf_counter() - start
    if epoch == run.cfg.epochs:
        run.metrics = metrics


def _save(run: _Run, epoch: int) -> None:
    rng_states = all_gather_objects(_rng_state(run.device), run.info)
    if run.info.is_main:
        save_checkpoint(_checkpoint_state(run, epoch, rng_states), run.ckpt_path)
    barrier(run.info)


def _finish(run: _Run, start_time: float) -> TrainResult:
    """Evaluate a finished run that has no metrics yet, write ``result.json``."""
    cfg, info = run.cfg, run.info
    finished = len(run.history) >= cfg.epochs
    if run.val_set is not None and run.metrics is None and finished:
        # a run finished before its final evaluation was stored (older checkpoints)
        if info.is_main:
            run.metrics = evaluate_model(
                run.eval_model,
                run.val_set,
                category_ids=run.train_set.category_ids,
                device=run.device,
                batch_size=cfg.eval_batch_size,
                workers=min(cfg.workers, 2),
            )
            state = load_checkpoint(run.ckpt_path)
            state["metrics"] = run.metrics
            save_checkpoint(state, run.ckpt_path)
        run.metrics = all_gather_objects(run.metrics, info)[0]
    result = TrainResult(
        config=cfg.to_dict(),
        history=run.history,
        checkpoint=run.ckpt_path,
        wall_time_s=time.perf_counter() - start_time,
        metrics=run.metrics,
        seeds=run.seeds,
        device=str(run.device),
        world_size=info.world_size,
        collapsed=(
            collapse_reasons(run.history) if run.target_alpha is not None and finished else []
        ),
        weights_digests=all_gather_objects(weights_digest(run.model), info),
        convergence=convergence(run.history) if finished else None,
    )
    if info.is_main:
        _atomic_write_json(Path(cfg.out_dir) / "result.json", result.to_dict())
    barrier(info)
    return result


def drops_single_image_batch(num_images: int, batch_size: int, world_size: int = 1) -> bool:
    """Whether :func:`train` drops the last batch of an epoch: it would hold one image.

    Each process gets ``ceil(num_images / world_size)`` images (``DistributedSampler``);
    a set of one image per process is kept (there is nothing else to train on).

    >>> drops_single_image_batch(5, 4), drops_single_image_batch(6, 4), drops_single_image_batch(1, 4)
    (True, False, False)
    """
    per_process = -(-num_images // world_size)
    return batch_size > 1 and per_process > 1 and per_process % batch_size == 1


def weights_digest(model: nn.Module) -> str:
    """SHA-256 over the model's parameters (names, dtypes, shapes and values).

    Buffers are left out: under DDP BatchNorm running statistics are rank-local between
    DDP's broadcasts (rank 0's are the ones checkpointed).
    """
    digest = hashlib.sha256()
    for name, tensor in model.named_parameters():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _epoch_record(
    epoch: int,
    sums: dict[str, Any],
    iou_sum: torch.Tensor,
    counts: torch.Tensor,
    info: DistInfo,
    box_key: str,
    cls_key: str,
    alpha: float | None,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    epoch_time: float,
) -> dict[str, Any]:
    keys = sorted(sums)
    values = (
        torch.stack([torch.as_tensor(sums[k], dtype=torch.float64) for k in keys]) if keys else None
    )
    packed = torch.cat(
        [
            counts.cpu(),
            iou_sum.cpu(),
            values.cpu() if values is not None else torch.zeros(0, dtype=torch.float64),
        ]
    )
    if info.enabled:
        packed = packed.to(counts.device)
        all_reduce_sum(packed, info)
        packed = packed.cpu()
    steps, skipped, images = (float(v) for v in packed[:3])
    iou_total, iou_count = (float(v) for v in packed[3:5])
    good_steps = max(1.0, steps - skipped)
    means = {k: float(v) / good_steps for k, v in zip(keys, packed[5:], strict=True)}
    total = means.pop("__total__", float("nan"))
    return {
        "epoch": epoch + 1,
        "loss": total,
        "box_loss": means.get(box_key, float("nan")),
        "cls_loss": means.get(cls_key, float("nan")),
        "losses": means,
        "fg_iou": iou_total / iou_count if iou_count > 0 else None,
        "alpha": alpha,
        "lr": float(scheduler.get_last_lr()[0]),
        "images_per_s": images / max(epoch_time, 1e-9),
        "skipped_nonfinite": int(skipped),
        "steps": int(steps / info.world_size),
        "time_s": epoch_time,
    }


def _checkpoint_state(run: _Run, epoch: int, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
    from noisybox import __version__

    return {
        "format": CHECKPOINT_FORMAT,
        "noisybox_version": __version__,
        "config": run.cfg.to_dict(),
        "model": run.model.state_dict(),
        "ema": run.ema.state_dict() if run.ema is not None else None,
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict() if run.scaler.is_enabled() else None,
        "epoch": epoch,
        "global_step": run.global_step,
        "history": run.history,
        "rng": rng_states,
        "num_classes": int(run.train_set.num_classes),
        "category_ids": [int(c) for c in run.train_set.category_ids],
        "category_names": [str(c) for c in run.train_set.category_names],
        "seeds": run.seeds,
        "metrics": run.metrics,
    }


# ----------------------------------------------------------------------------- evaluation


@torch.no_grad()
def predict(
    model: nn.Module,
    dataset: Any,
    *,
    category_ids: Sequence[int],
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    workers: int = 0,
) -> list[dict[str, Any]]:
    """COCO result dicts (``image_id``, ``category_id``, ``bbox`` xywh, ``score``) for ``dataset``.

    Args:
        model: a torchvision detector; it is put in eval mode.
        dataset: a ``DetectionDataset`` without geometric transforms, so boxes come back
            in original image pixels (torchvision detectors resize internally and map
            their detections back).
        category_ids: label ``k`` is category ``category_ids[k - 1]`` (the training set's).
        device: where to run.
        batch_size: images per forward.
        workers: data loader processes.
    """
    from noisybox.data import build_dataloader

    device = torch.device(device)
    model.eval()
    loader = build_dataloader(
        dataset, batch_size=batch_size, shuffle=False, workers=workers, seed=0
    )
    results: list[dict[str, Any]] = []
    for images, targets in loader:
        outputs = model([img.to(device) for img in images])
        for target, out in zip(targets, outputs, strict=True):
            boxes = out["boxes"].float().cpu()
            if boxes.numel() == 0:
                continue
            xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()
            for box, score, label in zip(
                xywh, out["scores"].tolist(), out["labels"].tolist(), strict=True
            ):
                if not 1 <= label <= len(category_ids):
                    continue
                results.append(
                    {
                        "image_id": int(target["image_id"]),
                        "category_id": int(category_ids[label - 1]),
                        "bbox": [round(v, 3) for v in box],
                        "score": round(float(score), 5),
                    }
                )
    return results


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    *,
    category_ids: Sequence[int],
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    workers: int = 0,
) -> dict[str, float]:
    """Clean-test metrics of ``model`` on ``dataset`` (see :func:`coco_evaluate`)."""
    from noisybox.engine.evaluation import coco_evaluate

    names = set(dataset.category_ids)
    missing = [c for c in category_ids if c not in names]
    if missing:
        raise NoisyboxError(
            f"Expected the test annotations {dataset.annotations.source} to have the trained "
            f"categories {list(category_ids)} but got none with id {missing[0]}"
        )
    detections = predict(
        model,
        dataset,
        category_ids=category_ids,
        device=device,
        batch_size=batch_size,
        workers=workers,
    )
    was_training = model.training
    metrics = coco_evaluate(dataset.annotations, detections)
    model.train(was_training)
    return metrics


def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    annotations: Any,
    images: str | os.PathLike[str] | None,
    *,
    device: str = "auto",
    batch_size: int = 8,
    format: str | None = None,
    workers: int = 0,
) -> dict[str, float]:
    """Evaluate a training checkpoint on (clean) test annotations.

    Args:
        checkpoint: ``last.pt`` written by :func:`train` (read with ``weights_only=True``).
        annotations: test annotations (path or ``Annotations``).
        images: their image root (``None``: the format's default).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        batch_size: images per forward.
        format: annotation format (default: detected).
        workers: data loader processes.

    Returns:
        ``coco_evaluate``'s metrics (``ap50`` ... ``ap95``, ``map``, ``map_75_95``, ...).

    Raises:
        NoisyboxError: unreadable checkpoint or annotations, or categories that do not match.
    """
    from noisybox.data import DetectionDataset

    state = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_dict(state["config"])
    try:
        dev = select_device(device)
    except ValueError as exc:
        raise NoisyboxError(str(exc)) from None
    model = _build_model(cfg, int(state["num_classes"]), load_weights=False)
    if state.get("ema") is not None:  # the moving average is what training evaluated
        ema = build_ema(model, cfg.ema_decay)
        ema.load_state_dict(state["ema"])
        model = ema.module
    else:
        model.load_state_dict(state["model"])
    model.to(dev)
    dataset = DetectionDataset(annotations, images, transforms=None, format=format)
    return evaluate_model(
        model,
        dataset,
        category_ids=state["category_ids"],
        device=dev,
        batch_size=batch_size,
        workers=workers,
    )
