"""Forward + backward time of every alpha-IoU variant against torchvision's matching loss,
and of the IoU-loss zoo (issue 18) against torchvision's CIoU.

Usage::

    python benchmarks/bench_losses.py [--n 1000000] [--repeats 15] [--device cpu] [--dtype float32]
        [--variants iou giou ...] [--zoo focal-eiou wiou-v3 ...]

For each variant and alpha in (1, 3) it times ``loss(pred, target).sum().backward()`` on
``n`` box pairs (about 80 % overlapping, the rest disjoint), together with a reference
measured in the same run:

* ``giou``, ``diou``, ``ciou``: ``torchvision.ops.*_box_iou_loss``;
* ``iou``: torchvision has no plain IoU loss, so the reference is ``1 - inter / (union +
  eps)`` built from torchvision's own loss helper ``torchvision.ops._utils._loss_inter_union``
  (exactly the IoU part of its GIoU loss);
* ``eiou``, ``siou``, ``log-iou``: no torchvision counterpart; compared with torchvision's
  CIoU (its most complete loss) and marked ``(vs ciou)``.
* the zoo (``focal-eiou``, ``wiou-v1``, ``wiou-v3``, ``mpdiou``, ``inner-iou``,
  ``inner-ciou``, ``shape-iou``, ``piou``, ``piou-v2``, ``nwd``): the registered module with
  its defaults (MPDIoU with a 640 px input, as a detector sets it; Wise-IoU v3 in training
  mode, updating its running mean), against torchvision's CIoU; targets: time and memory
  saved for backward each at most 1.5x CIoU's.

All configurations are timed round-robin (one call each per round), so load from other
processes hits every column alike; a ratio is the median over rounds of the per-round
ratio, times are medians. Memory: on CUDA the peak allocated memory of one call; on CPU the
bytes autograd saves for backward (the memory that scales with ``n`` while the graph is
alive), counted once per storage.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torchvision.ops import complete_box_iou_loss, distance_box_iou_loss, generalized_box_iou_loss
from torchvision.ops._utils import _loss_inter_union

from noisybox.losses import alpha_iou_loss, get_loss, list_variants

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ZOO = [
    "focal-eiou",
    "wiou-v1",
    "wiou-v3",
    "mpdiou",
    "inner-iou",
    "inner-ciou",
    "shape-iou",
    "piou",
    "piou-v2",
    "nwd",
]
ZOO_KWARGS = {"mpdiou": {"image_size": 640.0}}


def torchvision_iou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    inter, union = _loss_inter_union(pred, target)
    return 1 - inter / (union + 1e-7)


REFERENCES: dict[str, tuple[str, LossFn]] = {
    "iou": ("tv _loss_inter_union", torchvision_iou_loss),
    "giou": ("tv giou", generalized_box_iou_loss),
    "diou": ("tv diou", distance_box_iou_loss),
    "ciou": ("tv ciou", complete_box_iou_loss),
}


def make_boxes(n: int, device: str, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    xy = torch.rand(n, 2, generator=gen) * 600
    wh = torch.rand(n, 2, generator=gen) * 120 + 2
    target = torch.cat([xy, xy + wh], dim=1)
    jitter = (torch.rand(n, 2, generator=gen) - 0.5) * 2.2 * wh  # ~80 % still overlap
    pred_wh = wh * (0.5 + torch.rand(n, 2, generator=gen))
    pred = torch.cat([xy + jitter, xy + jitter + pred_wh], dim=1)
    return pred.to(device, dtype), target.to(device, dtype)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_once(fn: LossFn, pred: torch.Tensor, target: torch.Tensor, device: str) -> float:
    leaf = pred.detach().clone().requires_grad_(True)
    sync(device)
    start = time.perf_counter()
    fn(leaf, target).sum().backward()
    sync(device)
    return time.perf_counter() - start


def memory_bytes(fn: LossFn, pred: torch.Tensor, target: torch.Tensor, device: str) -> int:
    leaf = pred.detach().clone().requires_grad_(True)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn(leaf, target).sum().backward()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = fn(leaf, target).sum()
    loss.backward()
    # the leaf and target are inputs the caller holds anyway
    storages.pop(leaf.untyped_storage().data_ptr(), None)
    storages.pop(target.untyped_storage().data_ptr(), None)
    return sum(storages.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--variants", nargs="*", help="restrict to these variants (default all)")
    parser.add_argument("--zoo", nargs="*", help="restrict to these zoo losses (default all)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd ours")
    args = parser.parse_args(argv)

    pred, target = make_boxes(args.n, args.device, getattr(torch, args.dtype))
    configs: dict[str, LossFn] = {}
    for name, (_, fn) in REFERENCES.items():
        configs[f"ref:{name}"] = fn
    zoo = ZOO if args.zoo is None else args.zoo
    if args.variants is not None:
        needed = {v if v in REFERENCES else "ciou" for v in args.variants}
        needed |= {"iou"} if "log-iou" in args.variants else set()
        needed |= {"ciou"} if zoo else set()
        configs = {k: v for k, v in configs.items() if k.split(":")[1] in needed}

    def ours(variant: str, alpha: float) -> LossFn:
        return lambda p, t: alpha_iou_loss(p, t, variant=variant, alpha=alpha)

    rows = [(v, v) for v in list_variants()] + [("log-iou", "iou")]
    if args.variants is not None:
        rows = [row for row in rows if row[0] in args.variants]
    for label, variant in rows:
        for alpha in (1.0, 3.0):
            if label == "log-iou":
                configs["ours:log-iou:0"] = ours("iou", 0.0)
                break
            configs[f"ours:{label}:{alpha:g}"] = ours(variant, alpha)
    for name in zoo:
        configs[f"zoo:{name}"] = get_loss(name, **ZOO_KWARGS.get(name, {}))
    if args.compile:
        for label, variant in rows:
            if label == "log-iou":
                continue
            configs[f"compiled:{label}:1"] = torch.compile(ours(variant, 1.0), dynamic=False)

    for fn in configs.values():  # warm-up (and compilation)
        time_once(fn, pred, target, args.device)
    times: dict[str, list[float]] = {key: [] for key in configs}
    for _ in range(args.repeats):
        for key, fn in configs.items():
            times[key].append(time_once(fn, pred, target, args.device))

    def ratio(num: str, den: str) -> float:
        return statistics.median(a / b for a, b in zip(times[num], times[den], strict=True))

    def ms(key: str) -> float:
        return statistics.median(times[key]) * 1e3

    print(
        f"# bench_losses: n={args.n:,} pairs, {args.dtype}, device={args.device}, "
        f"threads={torch.get_num_threads()}, repeats={args.repeats}, torch {torch.__version__}"
    )
    header = (
        f"{'variant':8} {'reference':22} {'ref ms':>7} {'a=1 ms':>7} {'a=1/ref':>8} "
        f"{'a=3 ms':>7} {'a=3/a=1':>8} {'saved MB a=1/a=3 (ref)':>24}"
    )
    print(header)
    worst_1, worst_3 = 0.0, 0.0
    for label, variant in rows:
        ref_variant = variant if variant in REFERENCES else "ciou"
        ref_name = REFERENCES[ref_variant][0] + ("" if variant in REFERENCES else " (vs ciou)")
        ref_key = f"ref:{ref_variant}"
        if label == "log-iou":
            key = "ours:log-iou:0"
            ref_name = REFERENCES["iou"][0]
            ref_key = "ref:iou"
            mem = memory_bytes(configs[key], pred, target, args.device) / 2**20
            print(
                f"{label:8} {ref_name:22} {ms(ref_key):7.1f} {ms(key):7.1f} "
                f"{ratio(key, ref_key):8.2f} {'-':>7} {'-':>8} {mem:12.1f}"
            )
            continue
        k1, k3 = f"ours:{label}:1", f"ours:{label}:3"
        r1, r3 = ratio(k1, ref_key), ratio(k3, k1)
        if variant in REFERENCES:
            worst_1 = max(worst_1, r1)
        worst_3 = max(worst_3, r3)
        mem1 = memory_bytes(configs[k1], pred, target, args.device) / 2**20
        mem3 = memory_bytes(configs[k3], pred, target, args.device) / 2**20
        memr = memory_bytes(configs[ref_key], pred, target, args.device) / 2**20
        print(
            f"{label:8} {ref_name:22} {ms(ref_key):7.1f} {ms(k1):7.1f} {r1:8.2f} "
            f"{ms(k3):7.1f} {r3:8.2f} {mem1:8.1f} /{mem3:6.1f} ({memr:.1f})"
        )
    if args.compile:
        for label, _ in rows:
            if label == "log-iou":
                continue
            key = f"compiled:{label}:1"
            print(
                f"compiled {label:5}: {ms(key):7.1f} ms, {ratio(key, f'ours:{label}:1'):.2f}x eager a=1"
            )
    print(
        f"# worst a=1/torchvision (iou, giou, diou, ciou): {worst_1:.2f} (target <= 1.0); "
        f"worst a=3/a=1: {worst_3:.2f} (target <= 1.2)"
    )
    if zoo:
        print("# the zoo: registered modules at their defaults, against torchvision's CIoU")
        print(f"{'loss':12} {'ms':>7} {'ms/ciou':>8} {'saved MB':>9} {'MB/ciou':>8}")
        mem_ref = memory_bytes(configs["ref:ciou"], pred, target, args.device)
        worst_t, worst_m = 0.0, 0.0
        for name in zoo:
            key = f"zoo:{name}"
            r = ratio(key, "ref:ciou")
            mem = memory_bytes(configs[key], pred, target, args.device)
            worst_t, worst_m = max(worst_t, r), max(worst_m, mem / mem_ref)
            print(f"{name:12} {ms(key):7.1f} {r:8.2f} {mem / 2**20:9.1f} {mem / mem_ref:8.2f}")
        print(
            f"# tv ciou: {ms('ref:ciou'):.1f} ms, {mem_ref / 2**20:.1f} MB saved; worst zoo "
            f"time/ciou {worst_t:.2f}, memory/ciou {worst_m:.2f} (targets <= 1.5)"
        )
    if torch.cuda.is_available() is False and args.device != "cpu":
        sys.exit("CUDA requested but not available")


if __name__ == "__main__":
    main()
