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

import dataclasses
import json
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from noisybox._fileio import atomic_write_text, remove_stale_temporaries
from noisybox.detectors import LOSS_KEYS, box_loss_modules, pop_iou_stats, set_box_loss_alpha
from noisybox.engine.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from noisybox.engine.collapse import collapse_reasons
from noisybox.engine.config import RESUME_FREE, TrainConfig, upgrade_config
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
from noisybox.engine.evaluation import evaluate_model
from noisybox.engine.model import build_model
from noisybox.engine.schedules import alpha_at_step, warmup_cosine_factor
from noisybox.engine.steps import (
    autocast,
    autocast_dtype,
    epoch_record,
    make_optimizer,
    progress_bar,
    rng_state,
    set_rng_state,
    to_device,
    weights_digest,
)
from noisybox.errors import NoisyboxError

__all__ = ["TrainResult", "drops_single_image_batch", "train"]


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


# ----------------------------------------------------------------------------- helpers


def _target_alpha(model: nn.Module) -> float | None:
    for loss in box_loss_modules(model):
        alpha = getattr(loss, "alpha", None)
        if alpha is not None:
            return float(alpha)
    return None


def _atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")


def _check_resumable(stored: Mapping[str, Any], cfg: TrainConfig, path: Path) -> None:
    stored = upgrade_config(stored)  # a checkpoint written before the val_* -> test_* rename
    current = cfg.to_dict()
    for key in sorted(set(stored) | set(current)):
        if key in RESUME_FREE:
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
    if cfg.test_annotations:
        val_set = DetectionDataset(
            cfg.test_annotations, cfg.test_images, transforms=None, format=cfg.test_format
        )
    return train_set, val_set


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
    model = build_model(cfg, train_set.num_classes, load_weights=True).to(device)
    target_alpha = _target_alpha(model)
    optimizer = make_optimizer(cfg, model)
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
    amp_dtype = autocast_dtype(cfg.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
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
        autocast_dtype=amp_dtype,
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
    if info.is_main:  # a run killed while writing its checkpoint leaves a temporary file
        remove_stale_temporaries(run.ckpt_path)
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
    set_rng_state(rng[rank] if rank < len(rng) else rng[0], run.device)


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
    with progress_bar(run.steps_per_epoch, desc, progress and info.is_main) as bar:
        for step_in_epoch, (images, targets) in enumerate(run.loader):
            if run.target_alpha is not None:
                alpha = alpha_at_step(
                    run.global_step, run.total_steps, run.target_alpha, cfg.alpha_warmup
                )
                set_box_loss_alpha(run.model, alpha)
            images, targets = to_device(images, targets, device)
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
    return epoch_record(
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
    with autocast(run.device, run.autocast_dtype):
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
    ...                                                         test_annotations="v.json"), e)]
    [4, 8, 10]
    """
    if not cfg.test_annotations:
        return False
    return epoch == cfg.epochs or (cfg.eval_every > 0 and epoch % cfg.eval_every == 0)


def _evaluate_epoch(run: _Run, epoch: int) -> None:
    """Evaluate on the clean test set when due; the result goes into the epoch's history."""
    if run.val_set is None or not _evaluation_due(run.cfg, epoch):
        return
    start = time.perf_counter()
    metrics = _evaluate(run)
    run.history[-1]["metrics"] = metrics
    run.history[-1]["eval_time_s"] = time.perf_counter() - start
    if epoch == run.cfg.epochs:
        run.metrics = metrics


def _evaluate(run: _Run, *, store: bool = False) -> dict[str, float] | None:
    """The clean-test metrics of the evaluated weights: computed on rank 0, shared with all.

    With ``store`` they are also written into the checkpoint.
    """
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
        if store:
            state = load_checkpoint(run.ckpt_path)
            state["metrics"] = metrics
            save_checkpoint(state, run.ckpt_path)
    return all_gather_objects(metrics, run.info)[0]


def _save(run: _Run, epoch: int) -> None:
    rng_states = all_gather_objects(rng_state(run.device), run.info)
    if run.info.is_main:
        save_checkpoint(_checkpoint_state(run, epoch, rng_states), run.ckpt_path)
    barrier(run.info)


def _finish(run: _Run, start_time: float) -> TrainResult:
    """Evaluate a finished run that has no metrics yet, write ``result.json``."""
    cfg, info = run.cfg, run.info
    finished = len(run.history) >= cfg.epochs
    if run.val_set is not None and run.metrics is None and finished:
        # a run finished before its final evaluation was stored (older checkpoints)
        run.metrics = _evaluate(run, store=True)
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
