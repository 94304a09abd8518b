"""The parts of a training step and epoch: optimiser, mixed precision, batches on the
device, RNG state, progress, and the epoch's statistics summed over steps and processes."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from noisybox import _progress
from noisybox.engine.config import TrainConfig
from noisybox.engine.distributed import DistInfo, all_reduce_sum
from noisybox.errors import NoisyboxError

__all__ = [
    "autocast",
    "autocast_dtype",
    "epoch_record",
    "make_optimizer",
    "progress_bar",
    "rng_state",
    "set_rng_state",
    "to_device",
    "weights_digest",
]


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "off" or (amp == "auto" and device.type != "cuda"):
        return None
    if amp in ("auto", "fp16"):
        if device.type != "cuda":
            raise NoisyboxError(f"Expected a CUDA device for amp='fp16' but got {device}")
        return torch.float16
    if device.type == "mps":
        raise NoisyboxError("Expected amp='off' on Apple MPS but got amp='bf16'")
    return torch.bfloat16


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
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
    try:
        # one fused kernel per step instead of a Python loop over the parameters: 7 % more
        # training images/s for the half-width FCOS on one CPU thread (measured, issue 12)
        return torch.optim.AdamW(groups, lr=cfg.resolved_lr, fused=True)
    except (RuntimeError, TypeError):  # no fused kernel for this device or torch (< 2.4 on CPU)
        return torch.optim.AdamW(groups, lr=cfg.resolved_lr)


def to_device(
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


def rng_state(device: torch.device) -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Mapping[str, Any], device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


@contextlib.contextmanager
def progress_bar(total: int, desc: str, enabled: bool) -> Iterator[Any]:
    """The epoch's bar: live on a terminal, one line per epoch (or per few seconds) elsewhere."""
    bar = _progress.progress_bar(total, desc, enabled=enabled, unit="step", leave=False)
    try:
        yield bar
    finally:
        bar.close()


def epoch_record(
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
