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
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from noisybox import __version__
from noisybox._fileio import atomic_write_json
from noisybox._progress import evaluation_line
from noisybox.detectors import LOSS_KEYS, pop_iou_stats, set_box_loss_alpha
from noisybox.engine.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint
from noisybox.engine.collapse import collapse_reasons, stopped_nonfinite
from noisybox.engine.config import TrainConfig
from noisybox.engine.curves import convergence
from noisybox.engine.distributed import (
    all_gather_objects,
    all_reduce_sum,
    barrier,
    cleanup_distributed,
    init_distributed,
    select_device,
)
from noisybox.engine.evaluation import evaluate_model
from noisybox.engine.setup import Run, drops_single_image_batch, setup_run
from noisybox.engine.steps import (
    autocast,
    epoch_record,
    progress_bar,
    rng_state,
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


def train(
    cfg: TrainConfig,
    *,
    progress: bool = True,
    eval_lines: bool | None = None,
    label: str | None = None,
) -> TrainResult:
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
        eval_lines: print each evaluation as one line on stderr as it is computed (epoch,
            AP50, mAP, mAP75:95), so a long run shows its learning curve while it runs
            (default: ``progress``).
        label: the run's name at the start of those lines (a benchmark cell's id).

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
        run = setup_run(cfg, device, dist_info)
        end_epoch = (
            cfg.epochs if cfg.stop_after_epoch is None else min(cfg.epochs, cfg.stop_after_epoch)
        )
        for epoch in range(run.start_epoch, end_epoch):
            if stopped_nonfinite(run.history):
                break  # a resumed run whose weights had become non-finite: nothing to train
            run.history.append(_train_epoch(run, epoch, progress=progress))
            if not _weights_finite(run):
                run.history[-1]["nonfinite_weights"] = True
                _save(run, epoch + 1)
                break
            _evaluate_epoch(run, epoch + 1, progress if eval_lines is None else eval_lines, label)
            _save(run, epoch + 1)
        return _finish(run, start_time)
    finally:
        cleanup_distributed(dist_info)


def _weights_finite(run: Run) -> bool:
    """Whether every floating-point weight and buffer is finite (equal on every rank)."""
    return all(
        bool(torch.isfinite(t).all())
        for t in run.model.state_dict().values()
        if t.is_floating_point()
    )


def _train_epoch(run: Run, epoch: int, *, progress: bool) -> dict[str, Any]:
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
            if run.target_alpha is not None:  # the loss spec's warm-up, step by step
                alpha = run.loss_spec.alpha_at(run.global_step, run.total_steps)
            if alpha is not None:
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
    run: Run, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]
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


def _evaluate_epoch(run: Run, epoch: int, lines: bool = False, label: str | None = None) -> None:
    """Evaluate on the clean test set when due; the result goes into the epoch's history
    (and, with ``lines``, one line on stderr)."""
    if run.val_set is None or not _evaluation_due(run.cfg, epoch):
        return
    start = time.perf_counter()
    metrics = _evaluate(run)
    seconds = time.perf_counter() - start
    run.history[-1]["metrics"] = metrics
    run.history[-1]["eval_time_s"] = seconds
    if lines and run.info.is_main and metrics is not None:
        print(evaluation_line(epoch, run.cfg.epochs, metrics, seconds, label), file=sys.stderr)
    if epoch == run.cfg.epochs:
        run.metrics = metrics


def _evaluate(run: Run, *, store: bool = False) -> dict[str, float] | None:
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


def _save(run: Run, epoch: int) -> None:
    rng_states = all_gather_objects(rng_state(run.device), run.info)
    if run.info.is_main:
        save_checkpoint(_checkpoint_state(run, epoch, rng_states), run.ckpt_path)
    barrier(run.info)


def _finish(run: Run, start_time: float) -> TrainResult:
    """Evaluate a finished run that has no metrics yet, write ``result.json``."""
    cfg, info = run.cfg, run.info
    finished = len(run.history) >= cfg.epochs
    stopped = stopped_nonfinite(run.history) is not None
    if run.val_set is not None and run.metrics is None and finished and not stopped:
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
            collapse_reasons(run.history)
            if (run.target_alpha is not None and finished) or stopped
            else []
        ),
        weights_digests=all_gather_objects(weights_digest(run.model), info),
        convergence=convergence(run.history) if finished else None,
    )
    if info.is_main:
        atomic_write_json(
            Path(cfg.out_dir) / "result.json", result.to_dict(), indent=2, default=str
        )
    barrier(info)
    return result


def _checkpoint_state(run: Run, epoch: int, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
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
