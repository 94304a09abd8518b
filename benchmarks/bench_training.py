"""Training throughput: is the data pipeline a bottleneck, and does the alpha-IoU plug cost time?

Two figures, both measured on FCOS (ResNet-18 FPN) on the embedded shapes dataset:

1. ``data_pipeline_ratio``: training images/s fed by the real pipeline
   (``DetectionDataset`` + albumentations + ``build_dataloader`` workers) divided by the
   images/s of the same model fed the same batches pre-loaded in memory. Target >= 0.9.
2. ``loss_plug_cost``: seconds per training iteration (forward, backward, optimiser step)
   with the plugged alpha-IoU loss divided by the same with torchvision's stock FCOS loss,
   on identical pre-loaded batches. Target <= 1.02 (the paper: no extra training time).

Runs alternate between the variants and the median over repeats is reported, which keeps
the ratios honest on a shared machine; absolute figures still depend on the load (printed).

Usage::

    python benchmarks/bench_training.py            # ~3-4 minutes on 2 idle cores
    python benchmarks/bench_training.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Iterable

import torch

from noisybox.data import DetectionDataset, build_dataloader, build_transforms, make_shapes_dataset
from noisybox.detectors import build_detector


def _step_loop(model, optimizer, batches: Iterable, steps: int) -> tuple[float, int]:
    """Train ``steps`` iterations; (seconds, images)."""
    model.train()
    images_seen = 0
    it = iter(batches)
    start = time.perf_counter()
    for _ in range(steps):
        images, targets = next(it)
        targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        losses = model(images, targets)
        loss = sum(losses.values())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        images_seen += len(images)
    return time.perf_counter() - start, images_seen


def _model(loss: str, num_classes: int, image_size: int, alpha: float | None = None):
    torch.manual_seed(0)
    model = build_detector(
        "fcos", num_classes, loss=loss, alpha=alpha, fpn_channels=64, image_size=image_size
    )
    return model, torch.optim.SGD(model.parameters(), lr=0.005, momentum=0.9)


def _cycle(loader):
    while True:
        yield from loader


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="iterations per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="5 steps, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 5, 1

    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
        f"torch threads: {torch.get_num_threads()}  cpu count: {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        shapes = make_shapes_dataset(tmp, num_train=200, num_val=1, image_size=args.image_size)
        dataset = DetectionDataset(
            shapes.train_annotations, transforms=build_transforms(True, args.image_size)
        )
        loader = build_dataloader(
            dataset, batch_size=args.batch_size, shuffle=True, workers=args.workers, seed=0
        )
        n_batches = args.steps + 2
        preloaded = [batch for _, batch in zip(range(n_batches), _cycle(loader), strict=False)]

        # warm up: first iterations allocate and start the workers
        model, opt = _model("torchvision", dataset.num_classes, args.image_size)
        _step_loop(model, opt, _cycle(loader), 2)

        real, pre = [], []
        for _ in range(args.repeats):
            model, opt = _model("torchvision", dataset.num_classes, args.image_size)
            sec, n = _step_loop(model, opt, _cycle(loader), args.steps)
            real.append(n / sec)
            model, opt = _model("torchvision", dataset.num_classes, args.image_size)
            sec, n = _step_loop(model, opt, _cycle(preloaded), args.steps)
            pre.append(n / sec)
        real_ips, pre_ips = statistics.median(real), statistics.median(pre)
        print(
            f"data_pipeline_ratio {real_ips / pre_ips:.3f}  (real pipeline {real_ips:.1f} img/s, "
            f"pre-loaded {pre_ips:.1f} img/s; workers={args.workers}, batch={args.batch_size}, "
            f"{args.image_size} px; target >= 0.9)"
        )

        for loss, alpha in (("alpha-iou", 3.0), ("alpha-ciou", 3.0)):
            stock_t, plug_t = [], []
            for _ in range(args.repeats):
                model, opt = _model("torchvision", dataset.num_classes, args.image_size)
                sec, _ = _step_loop(model, opt, _cycle(preloaded), args.steps)
                stock_t.append(sec / args.steps)
                model, opt = _model(loss, dataset.num_classes, args.image_size, alpha)
                sec, _ = _step_loop(model, opt, _cycle(preloaded), args.steps)
                plug_t.append(sec / args.steps)
            s, p = statistics.median(stock_t), statistics.median(plug_t)
            print(
                f"loss_plug_cost {loss}(alpha={alpha:g})/torchvision {p / s:.3f}x  "
                f"({p * 1000:.1f} ms vs {s * 1000:.1f} ms per iteration; target <= 1.02)"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
