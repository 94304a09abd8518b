"""GPU training throughput: one FCOS and one YOLOv8n epoch with AMP (issue 29).

Where CUDA is present, trains on BCCD's ``trainval`` split (or, where BCCD is absent, the
embedded shapes dataset at the same image size):

* FCOS through ``noisybox.engine.train``, in the real-image study's configuration
  (half-width ResNet-18, FPN-64, 2-conv heads, EMA, zoom, batch 8, 320 px; see
  ``bench_real_images.py``) with float16 autocast (``--amp``), for ``--epochs`` epochs;
* YOLOv8n through Ultralytics' trainer, built from its model YAML (random init, nothing
  downloaded), ``amp=True``, batch 16, the same images exported as a YOLO folder.

Printed for each: training images/s of the epoch (the last, when there are several; the
first includes CUDA's first-use costs), timed between ``torch.cuda.synchronize`` calls,
and the peak GPU memory (``torch.cuda.max_memory_allocated``, and what the caching
allocator reserved). Under 5 minutes on one GPU. On a machine without CUDA it says so and
exits 0.

Ultralytics stays offline (``configure_offline``); its AMP check, which downloads a
pretrained ``yolo26n.pt`` to compare float16 and float32 outputs, is replaced by one that
accepts AMP on CUDA, so AMP is on without a download.

Usage::

    python benchmarks/bench_gpu.py                       # FCOS and YOLOv8n, one epoch each
    python benchmarks/bench_gpu.py --epochs 3 --only fcos
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from bench_real_images import BCCD_SPLITS, CPU_CONFIG, bccd_split, find_bccd

from noisybox.engine import TrainConfig, select_device, train


@dataclasses.dataclass
class Data:
    """The training and validation sets both detectors read."""

    described: str
    train_annotations: Path
    val_annotations: Path
    format: str
    num_train: int


@dataclasses.dataclass
class Measured:
    """One detector's epoch."""

    images: int
    seconds: float
    peak_allocated: int | None  # bytes; None off CUDA
    peak_reserved: int | None

    def line(self, name: str, detail: str) -> str:
        memory = (
            f"peak GPU memory {self.peak_allocated / 2**30:.2f} GiB allocated "
            f"({self.peak_reserved / 2**30:.2f} GiB reserved)"
            if self.peak_allocated is not None and self.peak_reserved is not None
            else "no GPU memory figure off CUDA"
        )
        return (
            f"{name:8s} {self.images / self.seconds:7.1f} img/s  ({self.images} images in "
            f"{self.seconds:.1f} s; {detail})  {memory}"
        )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peaks(device: torch.device) -> tuple[int | None, int | None]:
    if device.type != "cuda":
        return None, None
    return torch.cuda.max_memory_allocated(device), torch.cuda.max_memory_reserved(device)


def _data(args: argparse.Namespace, tmp: Path) -> Data:
    """BCCD's ``--split`` and ``--val-split`` folders, else the embedded shapes dataset."""
    root, where = find_bccd(args.root)
    if root is not None:
        train_dir = bccd_split(root, args.split, tmp)
        val_dir = bccd_split(root, args.val_split, tmp)
        count = len(list((train_dir / "Annotations").glob("*.xml")))
        return Data(f"BCCD {where} ({args.split})", train_dir, val_dir, "voc", count)
    from noisybox.data import make_shapes_dataset

    shapes = make_shapes_dataset(
        tmp / "shapes", num_train=args.shapes_train, num_val=64, image_size=args.image_size
    )
    return Data(
        f"embedded shapes ({where})",
        shapes.train_annotations,
        shapes.val_annotations,
        "coco",
        shapes.num_train,
    )


def fcos_epoch(data: Data, device: torch.device, args: argparse.Namespace, out: Path) -> Measured:
    """Train FCOS with ``noisybox.engine.train``; the last epoch's images/s and the peak."""
    values = {
        **CPU_CONFIG,
        "image_size": args.image_size,
        "batch_size": args.fcos_batch,
        "workers": args.workers,
        "amp": args.amp if device.type == "cuda" else "off",
    }
    cfg = TrainConfig(
        train_annotations=str(data.train_annotations),
        train_format=data.format,
        out_dir=str(out),
        device=str(device),
        epochs=args.epochs,
        resume=False,
        seed=0,
        **values,
    )
    _sync(device)
    _reset_peak(device)
    result = train(cfg, progress=False)
    _sync(device)
    last = result.history[-1]
    # train() reads the epoch's clock after a .item() of the last step's loss: synchronised
    return Measured(
        int(round(last["images_per_s"] * last["time_s"])), last["time_s"], *_peaks(device)
    )


def _amp_check_without_download(model: torch.nn.Module) -> bool:
    """Ultralytics' ``check_amp`` without its download: AMP on CUDA, off elsewhere."""
    return next(model.parameters()).device.type == "cuda"


def yolo_epoch(data: Data, device: torch.device, args: argparse.Namespace, out: Path) -> Measured:
    """Train YOLOv8n from its YAML with Ultralytics' trainer; the last epoch, timed by callbacks."""
    from noisybox.detectors.ultralytics_offline import configure_offline
    from noisybox.study.ultralytics_cell import _ultralytics_quiet

    configure_offline(out / "ultralytics-config", quiet=True)
    import ultralytics.engine.trainer
    from ultralytics import YOLO

    from noisybox.formats import read_annotations
    from noisybox.formats.images import default_image_root
    from noisybox.formats.yolo_export import export_yolo_dataset, yolo_class_ids

    ultralytics.engine.trainer.check_amp = _amp_check_without_download
    train_ann = read_annotations(str(data.train_annotations), data.format)
    val_ann = read_annotations(str(data.val_annotations), data.format)
    data_yaml = export_yolo_dataset(
        {
            "train": (train_ann, default_image_root(train_ann)),
            "val": (val_ann, default_image_root(val_ann)),
        },
        out / "yolo-data",
        class_ids=yolo_class_ids({"train": train_ann, "val": val_ann}),
    )
    clock: dict[str, Any] = {}

    def on_epoch_start(trainer: Any) -> None:
        _sync(device)
        _reset_peak(device)
        clock["start"] = time.perf_counter()

    def on_epoch_end(trainer: Any) -> None:
        _sync(device)
        clock["seconds"] = time.perf_counter() - clock["start"]
        clock["images"] = len(trainer.train_loader.dataset)
        clock["peaks"] = _peaks(device)
        clock["amp"] = bool(trainer.amp)

    model = YOLO(f"{args.yolo_model}.yaml")  # the architecture only: random init
    model.add_callback("on_train_epoch_start", on_epoch_start)
    model.add_callback("on_train_epoch_end", on_epoch_end)
    with _ultralytics_quiet():
        model.train(
            data=str(data_yaml),
            epochs=args.epochs,
            imgsz=args.image_size,
            batch=args.yolo_batch,
            workers=args.workers,
            device=str(device.index or 0) if device.type == "cuda" else device.type,
            amp=device.type == "cuda",
            seed=0,
            deterministic=True,
            project=str(out / "yolo-run"),
            name="train",
            exist_ok=True,
            val=False,
            plots=False,
            verbose=False,
        )
    if not clock.get("amp") and device.type == "cuda":
        print("warning: Ultralytics trained without AMP")
    return Measured(clock["images"], clock["seconds"], *clock["peaks"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="a CUDA device (default: cuda)")
    parser.add_argument("--root", type=Path, default=None, help="the BCCD devkit folder")
    parser.add_argument("--split", default="trainval", choices=BCCD_SPLITS)
    parser.add_argument("--val-split", default="test", choices=BCCD_SPLITS)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=CPU_CONFIG["image_size"])
    parser.add_argument("--fcos-batch", type=int, default=CPU_CONFIG["batch_size"])
    parser.add_argument("--yolo-batch", type=int, default=16)
    parser.add_argument("--yolo-model", default="yolov8n", help="an Ultralytics model YAML")
    parser.add_argument("--amp", default="fp16", choices=["fp16", "bf16"], help="FCOS autocast")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--shapes-train", type=int, default=800, help="without BCCD")
    parser.add_argument("--only", choices=["fcos", "yolo"], default=None)
    args = parser.parse_args()

    if not torch.cuda.is_available():
        print(
            f"bench_gpu.py needs CUDA: torch {torch.__version__} sees no CUDA device on this "
            "machine; nothing measured."
        )
        return
    device = select_device(args.device)
    if device.type != "cuda":
        parser.error(f"Expected a CUDA device but got --device {args.device}")
    torch.cuda.set_device(device)
    torch.zeros(1, device=device).sum().item()  # the CUDA context, before any clock starts
    props = torch.cuda.get_device_properties(device)
    print(
        f"device: {props.name} ({props.total_memory / 2**30:.0f} GiB), torch {torch.__version__}, "
        f"CUDA {torch.version.cuda}; {args.workers} loader workers, {args.image_size} px, "
        f"{args.epochs} epoch(s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = _data(args, Path(tmp))
        print(f"data: {data.described}, {data.num_train} training images")
        if args.only in (None, "fcos"):
            m = fcos_epoch(data, device, args, Path(tmp) / "fcos")
            print(
                m.line(
                    "fcos",
                    f"{CPU_CONFIG['backbone']} FPN-{CPU_CONFIG['fpn_channels']}, batch "
                    f"{args.fcos_batch}, amp {args.amp}",
                ),
                flush=True,
            )
        if args.only in (None, "yolo"):
            m = yolo_epoch(data, device, args, Path(tmp) / "yolo")
            print(m.line(args.yolo_model, f"batch {args.yolo_batch}, amp fp16"), flush=True)


if __name__ == "__main__":
    main()
