"""The set-up of a training run: data, model, optimiser, schedules, and a resumed checkpoint.

:func:`setup_run` builds the :class:`Run` that the loop's epoch, step and finish phases
share (:mod:`noisybox.engine.loop`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from noisybox._fileio import remove_stale_temporaries
from noisybox.data.dataset import DetectionDataset, build_dataloader
from noisybox.data.transforms import build_transforms
from noisybox.detectors import box_loss_modules
from noisybox.engine.checkpoint import load_checkpoint
from noisybox.engine.config import RESUME_FREE, TrainConfig, upgrade_config
from noisybox.engine.distributed import DistInfo, all_gather_objects
from noisybox.engine.ema import build_ema
from noisybox.engine.model import build_model
from noisybox.engine.schedules import warmup_cosine_factor
from noisybox.engine.steps import autocast_dtype, make_optimizer, set_rng_state
from noisybox.errors import NoisyboxError
from noisybox.losses import resolve_loss_spec
from noisybox.settings import LossSpec

__all__ = ["Run", "drops_single_image_batch", "setup_run"]


@dataclasses.dataclass
class Run:
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
    loss_spec: LossSpec
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
    def target_alpha(self) -> float | None:
        """The box loss's alpha after warm-up (``None``: the stock loss, no alpha)."""
        return self.loss_spec.alpha

    @property
    def eval_model(self) -> nn.Module:
        """The weights that are evaluated: the moving average when there is one."""
        return self.ema.module if self.ema is not None else self.model


def setup_run(cfg: TrainConfig, device: torch.device, info: DistInfo) -> Run:
    """Build data, model, optimiser and schedules, and restore them from a checkpoint."""
    train_set, val_set = _datasets(cfg)
    if len(train_set) == 0:
        raise NoisyboxError(f"Expected training images in {cfg.train_annotations} but got none")

    torch.manual_seed(cfg.seed)  # torchvision initialises with the global generator
    model = build_model(cfg, train_set.num_classes, load_weights=True).to(device)
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
    run = Run(
        cfg=cfg,
        device=device,
        info=info,
        autocast_dtype=amp_dtype,
        train_set=train_set,
        val_set=val_set,
        model=model,
        train_model=model,
        ema=ema,
        loss_spec=_loss_spec(cfg, model),
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


def _restore(run: Run, state: Mapping[str, Any]) -> None:
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


def drops_single_image_batch(num_images: int, batch_size: int, world_size: int = 1) -> bool:
    """Whether :func:`train` drops the last batch of an epoch: it would hold one image.

    Each process gets ``ceil(num_images / world_size)`` images (``DistributedSampler``);
    a set of one image per process is kept (there is nothing else to train on).

    >>> drops_single_image_batch(5, 4), drops_single_image_batch(6, 4), drops_single_image_batch(1, 4)
    (True, False, False)
    """
    per_process = -(-num_images // world_size)
    return batch_size > 1 and per_process > 1 and per_process % batch_size == 1


def _loss_spec(cfg: TrainConfig, model: nn.Module) -> LossSpec:
    """The run's loss spec, resolved (alpha read from the loss registry where unset), so
    that the loop's per-step :meth:`~noisybox.settings.LossSpec.alpha_at` looks nothing up.

    Its alpha is ``None`` where nothing can ramp: the stock loss, or a plugged loss without
    an ``alpha`` attribute.
    """
    spec = resolve_loss_spec(cfg.loss_spec)
    if not any(hasattr(loss, "alpha") for loss in box_loss_modules(model)):
        spec = dataclasses.replace(spec, alpha=None)
    return spec


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
