"""Real photographs on a CPU: does the JPEG pipeline keep the detector fed? (issue 29)

Trains the CPU configuration of the real-image study (FCOS, half-width ResNet-18, FPN-64,
2-conv heads, bf16 autocast, weight EMA, zoom 0.75-1.25, AdamW lr 4e-3, batch 8, 320 px,
``workers 0``) on BCCD's ``trainval`` split, built exactly as ``noisybox train`` builds it
(``TrainConfig`` -> ``setup_run``: ``DetectionDataset`` over the VOC split folder, the
training transforms, ``build_dataloader``; the loop's own training step), fed two ways:

1. ``real``: the data loader decoding and augmenting the JPEGs as it goes;
2. ``pre-decoded``: the same batches (same order, same augmentation draws), decoded once
   and held in memory.

Printed: training images/s of both and ``real_pipeline_ratio`` = real / pre-decoded
(target >= 0.9), the median over repeats, each repeat on two fresh models trained one step
of each in turn (with ``--workers 0``; with loader workers the two run one after the
other, as the workers would read ahead during the other model's turn); the same ratio from
the process's CPU time (``--workers 0``: what other processes' load on a shared machine
changes least); the time the loop waited for the loader per image; the peak RSS
(``resource.getrusage``) of training from JPEGs, and at the end; one clean evaluation of
the test split; and the wall time this gives per training epoch and per cell of
``--epochs`` epochs evaluated every ``--eval-every`` epochs. Absolute figures are for this
machine under its current load (printed). One thread is how ``run-benchmark --jobs 2``
trains each cell on 2 cores: run it with ``OMP_NUM_THREADS=1``.

BCCD is looked for in ``--root``, ``$NOISYBOX_BCCD``, then ``<repo>/../shared/realdata/
bccd/BCCD`` (``git clone https://github.com/Shenggan/BCCD_Dataset``; the devkit is its
``BCCD`` folder); where it is absent the script says so and exits 0.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_real_images.py            # ~2 minutes
    OMP_NUM_THREADS=1 python benchmarks/bench_real_images.py --steps 37 --repeats 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import torch

from noisybox.engine import TrainConfig, evaluate_model
from noisybox.engine.distributed import DistInfo
from noisybox.engine.loop import _train_step
from noisybox.engine.setup import Run, setup_run
from noisybox.engine.steps import to_device

REPO = Path(__file__).resolve().parents[1]
#: What the script reads of a BCCD devkit (the Pascal VOC layout).
BCCD_SPLITS = ("train", "val", "test", "trainval")

#: The CPU configuration of the real-image study (issue 29: a half-width ResNet-18 FCOS,
#: 2-conv heads, FPN-64, bf16, EMA, zoom 0.75-1.25, lr 4e-3, at 320 px).
CPU_CONFIG: dict[str, Any] = {
    "detector": "fcos",
    "backbone": "resnet18_050",
    "fpn_channels": 64,
    "detector_kwargs": {"num_convs": 2},
    "amp": "bf16",
    "ema_decay": 0.999,
    "scale_range": [0.75, 1.25],
    "optimizer": "adamw",
    "lr": 0.004,
    "batch_size": 8,
    "image_size": 320,
    "workers": 0,
    "loss": "iou",
}


def find_bccd(path: str | os.PathLike[str] | None = None) -> tuple[Path | None, str]:
    """The BCCD devkit: ``path``, else ``$NOISYBOX_BCCD``, else
    ``<repo>/../shared/realdata/bccd/BCCD``; ``(None, why)`` where it is absent or incomplete."""
    candidate = path or os.environ.get("NOISYBOX_BCCD") or REPO.parent / "shared/realdata/bccd/BCCD"
    root = Path(candidate)
    needed = ["Annotations", "JPEGImages", *(f"ImageSets/Main/{s}.txt" for s in BCCD_SPLITS)]
    missing = [name for name in needed if not (root / name).exists()]
    if missing:
        return None, f"no BCCD devkit in {root} (missing {missing[0]})"
    return root, str(root)


def bccd_split(root: Path, image_set: str, dest: Path) -> Path:
    """A VOC folder of one split, ``dest/<image_set>``, as the benchmark writes it
    (:func:`noisybox.data.voc_splits.write_voc_split`). BCCD is not modified."""
    from noisybox.data.voc_splits import write_voc_split

    return write_voc_split(root, image_set, dest / image_set)


def _epochs(run: Run) -> Iterator[tuple[list, list]]:
    """The loader's batches from epoch 0 on: the same sequence on every call."""
    epoch = 0
    while True:
        run.loader.sampler.set_epoch(epoch)
        yield from run.loader
        epoch += 1


def _steps(run: Run, batches: Iterator, warmup: int) -> Iterator[tuple[float, ...]]:
    """Train one step per item, after ``warmup`` untimed steps: (seconds, of which waiting
    for the batch, CPU seconds of this process, images)."""
    run.train_model.train()
    for _ in range(warmup):
        _train_step(run, *to_device(*next(batches), run.device))
    while True:
        start, cpu = time.perf_counter(), time.process_time()
        images, targets = next(batches)
        fetched = time.perf_counter()
        _train_step(run, *to_device(images, targets, run.device))
        yield (
            time.perf_counter() - start,
            fetched - start,
            time.process_time() - cpu,
            len(images),
        )


def _measure(real: Iterator, pre: Iterator, steps: int, interleave: bool) -> list[list[float]]:
    """Sums of ``steps`` steps of both, ``[[seconds, waiting, CPU s, images] of real, of pre]``:
    one step of each in turn (``interleave``, so both see the same load of a shared
    machine), else all of ``real``, then all of ``pre``."""
    sums = [[0.0] * 4, [0.0] * 4]
    order = [real, pre] * steps if interleave else [real] * steps + [pre] * steps
    for stepper in order:
        total = sums[0] if stepper is real else sums[1]
        for k, value in enumerate(next(stepper)):
            total[k] += value
    return sums


def _peak_rss_mib(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="the BCCD devkit folder")
    parser.add_argument("--split", default="trainval", choices=BCCD_SPLITS, help="training split")
    parser.add_argument("--eval-split", default="test", choices=BCCD_SPLITS)
    parser.add_argument("--steps", type=int, default=12, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=CPU_CONFIG["workers"])
    parser.add_argument("--image-size", type=int, default=CPU_CONFIG["image_size"])
    parser.add_argument("--batch-size", type=int, default=CPU_CONFIG["batch_size"])
    parser.add_argument("--epochs", type=int, default=40, help="epochs of the cell estimate")
    parser.add_argument("--eval-every", type=int, default=3, help="of the cell estimate")
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation timing")
    args = parser.parse_args()

    root, where = find_bccd(args.root)
    if root is None:
        print(f"bench_real_images.py needs BCCD: {where}; set NOISYBOX_BCCD or --root. Skipped.")
        return
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
        f"torch threads: {torch.get_num_threads()}  cpu count: {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        values = {
            **CPU_CONFIG,
            "workers": args.workers,
            "image_size": args.image_size,
            "batch_size": args.batch_size,
        }
        cfg = TrainConfig(
            train_annotations=str(bccd_split(root, args.split, Path(tmp))),
            train_format="voc",
            test_annotations=str(bccd_split(root, args.eval_split, Path(tmp))),
            test_format="voc",
            out_dir=str(Path(tmp) / "run"),
            device="cpu",
            epochs=args.epochs,
            eval_every=args.eval_every,
            resume=False,
            seed=0,
            **values,
        )
        cpu = torch.device("cpu")

        def fresh_run() -> Run:
            return setup_run(cfg, cpu, DistInfo())

        run = fresh_run()
        n_train, n_eval = len(run.train_set), len(run.val_set)
        print(
            f"data: BCCD {where}, {args.split} {n_train} images ({run.steps_per_epoch} steps "
            f"of {cfg.batch_size}), {args.eval_split} {n_eval}; {cfg.image_size} px, "
            f"workers={cfg.workers}, amp={cfg.amp}, {cfg.backbone} FPN-{cfg.fpn_channels}"
        )
        # training from JPEGs alone first: its peak RSS, before pre-decoded batches exist
        list(islice(_steps(run, _epochs(run), args.warmup), 2))
        rss_real = _peak_rss_mib()
        # decoded once; the loader's seeded draws make them the batches the real runs see
        predecoded = list(islice(_epochs(fresh_run()), args.warmup + args.steps))
        # with loader workers, a turn of the other model would let them read ahead for free
        interleave = cfg.workers == 0
        real: list[float] = []
        pre: list[float] = []
        ratios: list[float] = []
        cpu_ratios: list[float] = []
        waits: list[float] = []
        for _ in range(args.repeats):
            real_run, pre_run = fresh_run(), fresh_run()
            (sec, wait, cpu_s, n), (pre_sec, _, pre_cpu_s, pre_n) = _measure(
                _steps(real_run, _epochs(real_run), args.warmup),
                _steps(pre_run, iter(predecoded), args.warmup),
                args.steps,
                interleave,
            )
            real.append(n / sec)
            waits.append(wait / n)
            pre.append(pre_n / pre_sec)
            ratios.append(real[-1] / pre[-1])
            cpu_ratios.append((n / cpu_s) / (pre_n / pre_cpu_s))
            run = pre_run
        real_ips, pre_ips = statistics.median(real), statistics.median(pre)
        wait_ms = 1000 * statistics.median(waits)
        print(
            f"real_pipeline_ratio {statistics.median(ratios):.3f}  (real JPEG pipeline "
            f"{real_ips:.1f} img/s, pre-decoded {pre_ips:.1f} img/s; {args.repeats} x "
            f"{args.steps} steps {'step by step in turn' if interleave else 'in turn'}; "
            "target >= 0.9)"
        )
        if cfg.workers == 0:  # loader workers' CPU time would not be counted
            print(
                f"real_pipeline_ratio from CPU time {statistics.median(cpu_ratios):.3f}  "
                "(process CPU seconds: what other processes' load changes least)"
            )
        print(
            f"loader wait {wait_ms:.1f} ms/image = {100 * wait_ms / 1000 * real_ips:.1f}% of "
            f"the real pipeline's step time"
        )
        mb = sum(img.numel() * img.element_size() for imgs, _ in predecoded for img in imgs)
        print(
            f"peak RSS {rss_real:.0f} MiB training from JPEGs; {_peak_rss_mib():.0f} MiB with "
            f"{len(predecoded)} pre-decoded batches ({mb / 2**20:.0f} MiB) held and two models"
            + (
                f"; loader workers {_peak_rss_mib(resource.RUSAGE_CHILDREN):.0f} MiB (largest)"
                if cfg.workers > 0
                else ""
            )
        )
        epoch_s = n_train / real_ips
        # evaluations after every eval_every-th epoch and the last (noisybox train's rule)
        k = args.eval_every
        evals = args.epochs // k + (args.epochs % k > 0) if k > 0 else 1
        if args.no_eval:
            eval_s, eval_text = 0.0, "evaluation not timed (--no-eval)"
        else:
            start = time.perf_counter()
            evaluate_model(
                run.eval_model,
                run.val_set,
                category_ids=run.train_set.category_ids,
                device=cpu,
                batch_size=cfg.eval_batch_size,
                workers=min(cfg.workers, 2),
            )
            eval_s = time.perf_counter() - start
            eval_text = (
                f"{evals} evaluations of {args.eval_split} x {eval_s:.1f} s (timed once, "
                f"on weights of {args.warmup + args.steps} steps)"
            )
        cell_s = args.epochs * epoch_s + evals * eval_s
        print(
            f"epoch of {args.split} ({n_train} images): {epoch_s:.1f} s; cell of "
            f"{args.epochs} epochs: {cell_s / 60:.1f} min = {args.epochs} x {epoch_s:.1f} s "
            f"training + {eval_text}"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
