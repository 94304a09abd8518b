"""Time per training iteration of Ultralytics YOLO with its stock loss vs the plugged alpha-CIoU.

Usage (needs ``pip install "noisybox[ultralytics]"``)::

    python benchmarks/bench_ultralytics_loss.py [--model yolov8n] [--loss alpha-ciou] [--alpha 3]
        [--image-size 128] [--batch 16] [--rounds 20] [--device cpu]

Two copies of the same randomly initialised model train on the same batches of the
embedded shapes data (exported to YOLO format): one with Ultralytics' own
``v8DetectionLoss`` (CIoU), one with :class:`noisybox.detectors.ultralytics.PluggedDetectionLoss`
holding the noisybox loss. An iteration is forward, loss, backward and an SGD step. The two
are timed round-robin (one iteration each per round, alternating which goes first), so load
from other processes hits both alike; the ratio is the median over rounds of the per-round
ratio. The criterion alone (loss forward + its backward through the predictions) is timed
the same way. Target: the iteration ratio at most 1.02.
"""

from __future__ import annotations

import argparse
import copy
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _batches(root: Path, image_size: int, batch: int, count: int) -> list[dict[str, torch.Tensor]]:
    from PIL import Image

    from noisybox.data import make_shapes_dataset
    from noisybox.formats import read_annotations
    from noisybox.formats.yolo_export import export_yolo_dataset

    ds = make_shapes_dataset(
        root / "coco", num_train=batch * count, num_val=1, image_size=image_size
    )
    train = read_annotations(ds.train_annotations)
    data = export_yolo_dataset({"train": (train, ds.image_root)}, root / "yolo")
    paths = sorted((data.parent / "images" / "train").iterdir())
    out = []
    for start in range(0, len(paths), batch):
        images, idx, rows = [], [], []
        for i, path in enumerate(paths[start : start + batch]):
            pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
            images.append(torch.from_numpy(pixels).permute(2, 0, 1))
            label = data.parent / "labels" / "train" / f"{path.stem}.txt"
            lines = np.loadtxt(label, ndmin=2, dtype=np.float32)
            idx += [i] * len(lines)
            rows.append(lines)
        table = torch.from_numpy(np.concatenate(rows))
        out.append(
            {
                "img": torch.stack(images),
                "batch_idx": torch.tensor(idx, dtype=torch.float32),
                "cls": table[:, :1],
                "bboxes": table[:, 1:],
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="yolov8n")
    parser.add_argument("--loss", default="alpha-ciou")
    parser.add_argument("--alpha", type=float, default=3.0)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--batches", type=int, default=4, help="distinct batches, cycled")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="bench-ultralytics-"))
    try:
        return _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path) -> int:
    from noisybox.detectors.ultralytics_offline import configure_offline

    configure_offline(tmp / "config")
    import ultralytics
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG
    from ultralytics.utils.loss import v8DetectionLoss

    from noisybox.detectors.ultralytics import PluggedDetectionLoss
    from noisybox.losses import get_loss

    device = torch.device(args.device)
    batches = [
        {k: v.to(device) for k, v in b.items()}
        for b in _batches(tmp, args.image_size, args.batch, args.batches)
    ]
    torch.manual_seed(0)
    base = DetectionModel(f"{args.model}.yaml", nc=5, verbose=False)
    base.args = get_cfg(DEFAULT_CFG)
    models: dict[str, Any] = {}
    criteria: dict[str, Any] = {}
    optimizers: dict[str, torch.optim.Optimizer] = {}
    for name in ("stock", "plugged"):
        model = copy.deepcopy(base).to(device).train()
        models[name] = model
        criteria[name] = (
            v8DetectionLoss(model)
            if name == "stock"
            else PluggedDetectionLoss(model, get_loss(args.loss, alpha=args.alpha))
        )
        optimizers[name] = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def iteration(name: str, batch: dict[str, torch.Tensor]) -> tuple[float, float]:
        model, criterion, opt = models[name], criteria[name], optimizers[name]
        sync()
        t0 = time.perf_counter()
        preds = model(batch["img"])
        sync()
        t1 = time.perf_counter()
        loss, _ = criterion(preds, batch)
        sync()
        t2 = time.perf_counter()
        loss.sum().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync()
        t3 = time.perf_counter()
        return t3 - t0, t2 - t1

    for name in models:  # warm-up: allocator, first-call costs
        for batch in batches[:2]:
            iteration(name, batch)
    times: dict[str, list[float]] = {"stock": [], "plugged": []}
    loss_times: dict[str, list[float]] = {"stock": [], "plugged": []}
    ratios, loss_ratios = [], []
    for r in range(args.rounds):
        batch = batches[r % len(batches)]
        order = ("stock", "plugged") if r % 2 == 0 else ("plugged", "stock")
        got = {name: iteration(name, batch) for name in order}
        for name, (total, crit) in got.items():
            times[name].append(total)
            loss_times[name].append(crit)
        ratios.append(got["plugged"][0] / got["stock"][0])
        loss_ratios.append(got["plugged"][1] / got["stock"][1])

    print(
        f"ultralytics {ultralytics.__version__}, torch {torch.__version__}, {args.model} random "
        f"init, {args.image_size} px, batch {args.batch}, {args.rounds} rounds on {args.device} "
        f"(threads {torch.get_num_threads()})"
    )
    print(
        f"{'':<28}{'stock CIoU':>14}{'plugged ' + args.loss + '@' + f'{args.alpha:g}':>24}{'ratio':>8}"
    )
    print(
        f"{'iteration (median, ms)':<28}{statistics.median(times['stock']) * 1e3:>14.1f}"
        f"{statistics.median(times['plugged']) * 1e3:>24.1f}{statistics.median(ratios):>8.3f}"
    )
    print(
        f"{'criterion forward (ms)':<28}{statistics.median(loss_times['stock']) * 1e3:>14.2f}"
        f"{statistics.median(loss_times['plugged']) * 1e3:>24.2f}"
        f"{statistics.median(loss_ratios):>8.3f}"
    )
    ratio = statistics.median(ratios)
    print(
        f"iteration ratio {ratio:.3f} (target <= 1.02): {'ok' if ratio <= 1.02 else 'ABOVE TARGET'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
