"""The CPU-sized detector configuration against today's: throughput, FLOPs, time to AP50 0.7.

Compares two FCOS configurations on the embedded shapes data (800 train / 200 clean test
images, 128 px), both read from the benchmark presets so the figures describe what the
studies run:

* ``today``: the ``paper-mini`` preset (ResNet-18 FPN-64, 2-conv heads, fp32);
* ``new``: the ``paper-cpu`` preset (half-width ResNet-18, bf16 autocast where the CPU
  supports it, weight EMA, zoom augmentation).

Printed per configuration, measured in this run, with one thread (how ``run-benchmark
--jobs 2`` trains each cell on 2 cores) and with every thread (one cell alone): training
images/s on pre-loaded batches (median over repeats, alternating the configurations),
GFLOP per image for forward +
backward (``torch.utils.flop_counter``), achieved GFLOP/s, and the same against the
practical limit of this machine: a large fp32 and bf16 matmul timed in the same run. With
``--time-to-ap50`` both are trained on the default shapes data with an evaluation every
epoch, and the wall time of training (evaluation excluded) until the clean AP50 first
reaches 0.7 is printed (``today`` is given ``--today-epochs`` epochs to get there).

Targets (issue 12): new >= 4x the images/s of today, <= 1/3 its time to AP50 0.7.

Usage::

    python benchmarks/bench_cpu_config.py                    # throughput and FLOPs, ~2 min
    python benchmarks/bench_cpu_config.py --time-to-ap50     # + two trainings, ~20 min
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from noisybox.data import DetectionDataset, build_dataloader, build_transforms, make_shapes_dataset
from noisybox.detectors import build_detector
from noisybox.engine import TrainConfig, train
from noisybox.study.loading import load_config


def _settings(preset: str) -> dict[str, Any]:
    cfg = load_config(preset)
    det = cfg.detectors[0]
    return {
        **cfg.schedule,
        **det.options,
        "backbone": det.backbone,
        "detector": det.name,
        "dataset": cfg.dataset,
    }


def _bf16(s: dict[str, Any]) -> bool:
    return s.get("amp") == "bf16"


def _model(s: dict[str, Any], num_classes: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_detector(
        s["detector"],
        num_classes,
        backbone=s["backbone"],
        loss="iou",
        fpn_channels=s["fpn_channels"],
        image_size=s["image_size"],
        **s.get("detector_kwargs", {}),
    )


def _step(model, optimizer, batch, bf16: bool) -> None:
    images, targets = batch
    targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = sum(model(images, targets).values())
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _throughput(s: dict[str, Any], batches: list, num_classes: int) -> float:
    model = _model(s, num_classes).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    _step(model, optimizer, batches[0], _bf16(s))  # warm-up
    start = time.perf_counter()
    for batch in batches[1:]:
        _step(model, optimizer, batch, _bf16(s))
    return sum(len(b[0]) for b in batches[1:]) / (time.perf_counter() - start)


def _gflop_per_image(s: dict[str, Any], batch, num_classes: int) -> float:
    model = _model(s, num_classes).train()
    images, targets = batch
    targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
    with FlopCounterMode(display=False) as counter:
        sum(model(images, targets).values()).backward()
    return counter.get_total_flops() / len(images) / 1e9


def _matmul_gflops(dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def _time_to_ap50(s: dict[str, Any], shapes, out: str, epochs: int, target: float) -> str:
    keys = set(TrainConfig.__dataclass_fields__) - {"train_annotations", "out_dir"}
    values = {k: v for k, v in s.items() if k in keys}
    values.update(epochs=epochs, eval_every=1, workers=0, device="cpu", seed=0, loss="iou")
    cfg = TrainConfig(
        train_annotations=str(shapes.train_annotations),
        test_annotations=str(shapes.val_annotations),
        out_dir=out,
        **values,
    )
    result = train(cfg, progress=False)
    elapsed = 0.0
    for h in result.history:
        elapsed += h["time_s"]
        if h["metrics"]["ap50"] >= target:
            return f"{elapsed:.0f} s (epoch {h['epoch']}, AP50 {h['metrics']['ap50']:.3f})"
    best = max(h["metrics"]["ap50"] for h in result.history)
    return f"not reached in {epochs} epochs ({elapsed:.0f} s; best AP50 {best:.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12, help="timed iterations per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--time-to-ap50", action="store_true")
    parser.add_argument("--target", type=float, default=0.7)
    parser.add_argument("--today-epochs", type=int, default=30)
    args = parser.parse_args()

    configs = {"today": _settings("paper-mini"), "new": _settings("paper-cpu")}
    print(
        f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  "
        f"torch threads: {torch.get_num_threads()}  cpu count: {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        shapes = make_shapes_dataset(
            os.path.join(tmp, "shapes"), **configs["new"]["dataset"].builtin_options
        )
        size = configs["new"]["image_size"]
        dataset = DetectionDataset(
            shapes.train_annotations, transforms=build_transforms(True, size)
        )
        loader = build_dataloader(dataset, batch_size=8, shuffle=True, workers=0, seed=0)
        batches = [b for _, b in zip(range(args.steps + 1), loader, strict=False)]
        gflops = {
            name: _gflop_per_image(s, batches[0], dataset.num_classes)
            for name, s in configs.items()
        }
        all_threads = torch.get_num_threads()
        # one thread per cell is how `run-benchmark --jobs 2` trains on 2 cores
        for threads in sorted({1, all_threads}):
            torch.set_num_threads(threads)
            fp32_peak = _matmul_gflops(torch.float32)
            bf16_peak = _matmul_gflops(torch.bfloat16)
            rates: dict[str, list[float]] = {name: [] for name in configs}
            for _ in range(args.repeats):
                for name, s in configs.items():
                    rates[name].append(_throughput(s, batches, dataset.num_classes))
            ips = {name: statistics.median(r) for name, r in rates.items()}
            print(
                f"-- {threads} thread(s): matmul 2048^3 fp32 {fp32_peak:.0f} GFLOP/s, "
                f"bf16 {bf16_peak:.0f} GFLOP/s"
            )
            for name, s in configs.items():
                achieved = gflops[name] * ips[name]
                peak = bf16_peak if _bf16(s) else fp32_peak
                print(
                    f"{name:5s} {s['backbone']:13s} amp={s.get('amp', 'off'):4s} "
                    f"{ips[name]:6.1f} img/s  {gflops[name]:.2f} GFLOP/img  "
                    f"{achieved:5.0f} GFLOP/s = {100 * achieved / peak:.0f}% of the "
                    f"{'bf16' if _bf16(s) else 'fp32'} matmul"
                )
            print(
                f"images/s new/today with {threads} thread(s): "
                f"{ips['new'] / ips['today']:.2f}x (target >= 4x)"
            )
        torch.set_num_threads(all_threads)
        if args.time_to_ap50:
            t_new = _time_to_ap50(
                configs["new"],
                shapes,
                os.path.join(tmp, "new"),
                configs["new"]["epochs"],
                args.target,
            )
            print(f"time to AP50 {args.target}: new   {t_new}", flush=True)
            t_today = _time_to_ap50(
                configs["today"], shapes, os.path.join(tmp, "today"), args.today_epochs, args.target
            )
            print(f"time to AP50 {args.target}: today {t_today}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
