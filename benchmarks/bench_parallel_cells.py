"""Is ``run-benchmark --jobs N`` worth it? Training images/s of N cells at once vs one.

``run-benchmark --jobs N`` trains N cells at the same time, each in its own process with
``threads // N`` torch threads. This script measures the total training throughput of that
against one process using every thread, on the same model (FCOS ResNet-18 FPN-64 with
2-conv heads, the ``quick``/``paper-mini`` detector) and the same pre-loaded batches of the
shapes dataset, so only the split of the CPU differs. Target: ``parallel_ratio >= 1.0``
(parallel cells must not be slower in total). The two set-ups alternate and the median of
the repeats is reported; this machine is shared, so absolute figures vary (printed).

Usage::

    python benchmarks/bench_parallel_cells.py              # ~2 minutes on 2 idle cores
    python benchmarks/bench_parallel_cells.py --quick      # a smoke run
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

import torch

from noisybox.data import DetectionDataset, build_dataloader, build_transforms, make_shapes_dataset
from noisybox.detectors import build_detector


def _throughput(batches: list, threads: int, steps: int, image_size: int, classes: int) -> float:
    """Images per second of ``steps`` AdamW training iterations with ``threads`` threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_detector(
        "fcos",
        classes,
        loss="iou",
        fpn_channels=64,
        image_size=image_size,
        detector_kwargs={"num_convs": 2},
    )
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    model.train()

    def step(i: int) -> int:
        images, targets = batches[i % len(batches)]
        targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        loss = sum(model(images, targets).values())
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return len(images)

    step(0)  # warm-up: allocations, first-call overheads
    start = time.perf_counter()
    seen = sum(step(i) for i in range(1, steps + 1))
    return seen / (time.perf_counter() - start)


def _ready(_: int) -> int:
    return os.getpid()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="cells at once (default 2)")
    parser.add_argument("--steps", type=int, default=25, help="iterations per timed run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--quick", action="store_true", help="4 steps, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.repeats = 4, 1
    threads = torch.get_num_threads()
    per_job = max(1, threads // args.jobs)
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
        f"torch threads: {threads}  jobs: {args.jobs} x {per_job} thread(s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        shapes = make_shapes_dataset(tmp, num_train=64, num_val=1, image_size=args.image_size)
        dataset = DetectionDataset(
            shapes.train_annotations, transforms=build_transforms(True, args.image_size)
        )
        loader = build_dataloader(dataset, batch_size=8, shuffle=True, workers=0, seed=0)
        batches = list(loader)
        job = (batches, per_job, args.steps, args.image_size, dataset.num_classes)
        ctx = multiprocessing.get_context("spawn")
        one, many = [], []
        with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
            # start every worker (and its imports) before timing anything
            while len(set(pool.map(_ready, range(4 * args.jobs)))) < args.jobs:
                time.sleep(0.1)
            for _ in range(args.repeats):
                # one process with every thread (a pool process, so both sides pay the same)
                one.append(
                    pool.submit(_throughput, batches, threads, args.steps, *job[3:]).result()
                )
                futures = [pool.submit(_throughput, *job) for _ in range(args.jobs)]
                many.append(sum(f.result() for f in futures))
    a, b = statistics.median(one), statistics.median(many)
    print(
        f"parallel_ratio {b / a:.3f}  ({args.jobs} cells x {per_job} thread(s): {b:.1f} img/s; "
        f"1 cell x {threads} threads: {a:.1f} img/s; {args.image_size} px, batch 8; target >= 1.0)"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
