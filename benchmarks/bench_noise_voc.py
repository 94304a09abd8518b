"""Benchmark: the paper's box noise on the real Pascal VOC07+12 trainval boxes.

The Alpha-IoU paper (§4.3) reports the mean IoU of noisy to clean boxes on its training set,
VOC 2007 trainval + VOC 2012 trainval (16,551 images): 0.833 / 0.710 / 0.613 at eta 0.1 /
0.2 / 0.3, averaged per image and then over images (its ``average_iou.py``). This script
corrupts that set the way a user would, with one ``noisybox corrupt`` command per boundary,
eta and seed (all inputs in one command, one seed), each in a fresh process, and prints:

  * per eta, for ``--boundary shift`` (the paper's eq. 5) and ``truncate``: the paper's
    figure, the per-image mean IoU (the paper's statistic) and the per-box mean, each as
    mean ± std over seeds, and the share of noisy boxes touching the image border;
  * the same noise on the same boxes with no image border (eq. 5 never acts): why the
    clamp matters;
  * the per-image mean of each input on its own (the figure a test on a subset checks);
  * the wall time and peak memory (max RSS) of every corrupt run.

Data, in this order: ``--voc-root VOCdevkit`` (your own ``VOCdevkit/VOC2007`` and
``VOC2012`` year folders, read with ``--image-set trainval``); else ``--realdata DIR``, the
``NOISYBOX_REALDATA`` variable or ``<repo>/../shared/realdata`` (its README says where every
file comes from): the VOC2007 trainval XML files, unpacked from their archive into a
temporary year folder and read with the VOC reader, and VOC2012 trainval as two COCO json
files (train, val) read with the COCO reader. Nothing is downloaded.

Usage: python benchmarks/bench_noise_voc.py [--seeds 20] [--etas 0.1 0.2 0.3]
           [--realdata DIR | --voc-root VOCdevkit] [--keep DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PAPER_IOU = {0.1: 0.833, 0.2: 0.710, 0.3: 0.613}
BOUNDARIES = ("shift", "truncate")
BORDER_MARGIN = 1.0
"""Pixels from the image edge within which a box side counts as touching the border: VOC's
1-based corners put a box on the border at ``xmin = 1`` or ``xmax = width``, and annotators
often stopped one pixel short."""

VOC2007_ARCHIVE = "raw/KuiQian_Yolo3-voc-train/VOC2007_trainval_Annotations.tar.gz"
VOC2007_IMAGE_SETS = "raw/KuiQian_Yolo3-voc-train/ImageSets_Main"
VOC2012_JSON = (
    "raw/Edwardwaw_VOC-tools/pascal_train2012.json",
    "raw/Edwardwaw_VOC-tools/pascal_val2012.json",
)


def find_realdata(path: str | os.PathLike[str] | None = None) -> Path | None:
    """The real-VOC annotations folder: ``path``, else ``$NOISYBOX_REALDATA``, else
    ``<repo>/../shared/realdata``; ``None`` if it is not there (or lacks a file used here)."""
    candidate = path or os.environ.get("NOISYBOX_REALDATA") or REPO.parent / "shared" / "realdata"
    root = Path(candidate)
    needed = [VOC2007_ARCHIVE, f"{VOC2007_IMAGE_SETS}/trainval.txt", *VOC2012_JSON]
    return root if all((root / name).is_file() for name in needed) else None


def voc2007_year_folder(realdata: Path, dest: Path, image_set: str = "trainval") -> Path:
    """Unpack the XML files of VOC2007 ``image_set`` from the realdata archive into a VOC
    year folder ``dest/VOC2007`` (``Annotations/``, ``ImageSets/Main/*.txt``) and return it.
    Only the listed files are written; the archive is read, never modified."""
    root = dest / "VOC2007"
    (root / "Annotations").mkdir(parents=True)
    (root / "ImageSets" / "Main").mkdir(parents=True)
    for listing in sorted((realdata / VOC2007_IMAGE_SETS).glob("*.txt")):
        shutil.copyfile(listing, root / "ImageSets" / "Main" / listing.name)
    listing = root / "ImageSets" / "Main" / f"{image_set}.txt"
    wanted = {line.split()[0] for line in listing.read_text().splitlines() if line.strip()}
    with tarfile.open(realdata / VOC2007_ARCHIVE) as archive:
        for member in archive:
            name = Path(member.name)
            if member.isfile() and name.parent.name == "Annotations" and name.stem in wanted:
                content = archive.extractfile(member)
                if content is not None:
                    (root / "Annotations" / name.name).write_bytes(content.read())
    return root


def inputs_of(args: argparse.Namespace, work: Path) -> tuple[list[str], str]:
    """The ``noisybox corrupt`` inputs for VOC07+12 trainval and a description of them."""
    if args.voc_root is not None:
        years = [args.voc_root / "VOC2007", args.voc_root / "VOC2012"]
        return [str(p) for p in years], f"{args.voc_root}: VOC2007 + VOC2012 year folders (XML)"
    realdata = find_realdata(args.realdata)
    if realdata is None:
        sys.exit(
            "Expected the real VOC annotations in --realdata, $NOISYBOX_REALDATA or "
            f"{REPO.parent / 'shared' / 'realdata'} but found none; or pass --voc-root VOCdevkit"
        )
    voc2007 = voc2007_year_folder(realdata, work)
    return [str(voc2007)] + [str(realdata / p) for p in VOC2012_JSON], (
        f"{realdata}: VOC2007 trainval XML (VOC reader) + VOC2012 trainval train/val COCO json "
        "(COCO reader)"
    )


def touches_border(boxes: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``bool[N]``: a side of the ``xyxy`` box lies within :data:`BORDER_MARGIN` of its image's
    edge (``sizes`` is ``float[N, 2]`` ``(width, height)``)."""
    m = BORDER_MARGIN
    return (
        (boxes[:, 0] <= m)
        | (boxes[:, 1] <= m)
        | (boxes[:, 2] >= sizes[:, 0] - m)
        | (boxes[:, 3] >= sizes[:, 1] - m)
    )


def _read_all(paths: list[str], image_set: str | None) -> Any:
    from noisybox.formats import concat_annotations, read_annotations

    return concat_annotations([read_annotations(p, image_set=image_set) for p in paths])


def _child(spec: dict[str, Any]) -> None:
    """One ``noisybox corrupt`` run, in-process as the command line runs it; prints its
    figures, wall time and peak memory as one JSON line."""
    from noisybox.cli import main

    out = Path(spec["out"])
    argv = ["corrupt", *spec["inputs"], "-o", str(out), "--eta", str(spec["eta"])]
    argv += ["--seed", str(spec["seed"]), "--boundary", spec["boundary"]]
    argv += ["--image-set", "trainval", "--json", "-q"]
    captured = io.StringIO()
    start, cpu_start = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(captured):
        main(argv, standalone_mode=False)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    report = json.loads(captured.getvalue())
    written = _read_all([str(out / name) for name in report["source"]], None)
    border = touches_border(written.boxes, written.box_image_sizes())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu_seconds": cpu_seconds,
                "peak_mb": peak_mb,
                "mean_image_iou": report["iou"]["mean_image_iou"],
                "mean_iou": report["iou"]["mean_iou"],
                "num_boxes": report["iou"]["num_boxes"],
                "num_images": report["iou"]["num_images"],
                "border": float(border.mean()),
                "parts": {p["source"]: p["iou"]["mean_image_iou"] for p in report["parts"]},
            }
        )
    )


def _run_child(spec: dict[str, Any], keep: bool) -> dict[str, Any]:
    """Run :func:`_child` in a fresh process; delete its output unless ``keep`` (a run writes
    about 10 MB in 5,000 files)."""
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.exit(f"corrupt run {spec} failed:\n{proc.stderr}")
    if not keep:
        shutil.rmtree(spec["out"])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _mean_std(values: list[float]) -> str:
    arr = np.asarray(values, dtype=np.float64)
    std = arr.std(ddof=1) if arr.size > 1 else float("nan")
    return f"{arr.mean():.4f} ± {std:.4f}"


def no_border_iou(clean: Any, eta: float, seeds: list[int]) -> list[float]:
    """Per-image mean IoU of the same noise on the same boxes in an image too large for any
    box to reach its border: the noise alone, eq. 5's clamp never acting."""
    from noisybox.noise import perturb_boxes
    from noisybox.stats import iou_stats

    far = clean.boxes + 1e5
    out = []
    for seed in seeds:
        noisy = perturb_boxes(far, (1e6, 1e6), eta=eta, rng=seed)
        stats = iou_stats(far, noisy, clean.box_image_index, clean.categories)
        out.append(stats.mean_image_iou)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1 per eta")
    parser.add_argument("--etas", type=float, nargs="+", default=sorted(PAPER_IOU))
    parser.add_argument("--realdata", type=Path, default=None, help="the realdata folder")
    parser.add_argument("--voc-root", type=Path, default=None, help="your own VOCdevkit")
    parser.add_argument("--keep", type=Path, default=None, help="keep the outputs here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(json.loads(args.child))
        return

    seeds = list(range(args.seeds))
    tmp_ctx = tempfile.TemporaryDirectory() if args.keep is None else None
    work = Path(tmp_ctx.name) if tmp_ctx else args.keep
    work.mkdir(parents=True, exist_ok=True)
    try:
        inputs, described = inputs_of(args, work)
        clean = _read_all(inputs, "trainval")
        clean_border = touches_border(clean.boxes, clean.box_image_sizes()).mean()
        print(f"data: {described}")
        print(
            f"VOC07+12 trainval: {clean.num_images} images, {clean.num_boxes} boxes; "
            f"{clean_border * 100:.1f}% of clean boxes touch the image border "
            f"(within {BORDER_MARGIN:g} px)"
        )
        runs: dict[tuple[str, float], list[dict[str, Any]]] = {}
        for boundary in BOUNDARIES:
            for eta in args.etas:
                runs[boundary, eta] = [
                    _run_child(
                        {
                            "inputs": inputs,
                            "out": str(work / f"{boundary}_eta{eta}_s{seed}"),
                            "eta": eta,
                            "seed": seed,
                            "boundary": boundary,
                        },
                        keep=args.keep is not None,
                    )
                    for seed in seeds
                ]
                print(f"  done: boundary {boundary}, eta {eta}", file=sys.stderr)
        _print_tables(args.etas, seeds, runs, clean)
    finally:
        if tmp_ctx:
            tmp_ctx.cleanup()


def _print_tables(
    etas: list[float],
    seeds: list[int],
    runs: dict[tuple[str, float], list[dict[str, Any]]],
    clean: Any,
) -> None:
    print(
        f"\nMean IoU of noisy to clean boxes, mean ± std over seeds {seeds[0]}-{seeds[-1]}; "
        "per image = the paper's statistic; border = share of noisy boxes touching the border.\n"
    )
    print(
        "| eta | paper | shift: per image | per box | border | "
        "truncate: per image | per box | border | no border: per image |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for eta in etas:
        cells = [f"{eta:g}", f"{PAPER_IOU[eta]:.3f}" if eta in PAPER_IOU else "-"]
        for boundary in BOUNDARIES:
            rs = runs[boundary, eta]
            cells += [
                _mean_std([r["mean_image_iou"] for r in rs]),
                _mean_std([r["mean_iou"] for r in rs]),
                f"{np.mean([r['border'] for r in rs]) * 100:.1f}%",
            ]
        cells.append(_mean_std(no_border_iou(clean, eta, seeds)))
        print("| " + " | ".join(cells) + " |")

    names = list(runs[BOUNDARIES[0], etas[0]][0]["parts"])
    print("\nPer-image mean IoU of each input (boundary shift), mean ± std over seeds.\n")
    print("| eta | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for eta in etas:
        rs = runs["shift", eta]
        print(
            f"| {eta:g} | "
            + " | ".join(_mean_std([r["parts"][n] for r in rs]) for n in names)
            + " |"
        )

    print(
        "\nCorrupt runs (one command over all inputs, each in a fresh process): wall and CPU "
        "time of the command in s, median (min-max) over seeds, and the peak RSS of the "
        "process in MB (max over seeds). Wall time counts waiting for a shared CPU; CPU time "
        "does not.\n"
    )
    print("| boundary | eta | wall s | CPU s | peak MB |")
    print("|---|---|---|---|---|")
    for (boundary, eta), rs in runs.items():
        wall = _median_range([r["seconds"] for r in rs])
        cpu = _median_range([r["cpu_seconds"] for r in rs])
        peak = max(r["peak_mb"] for r in rs)
        print(f"| {boundary} | {eta:g} | {wall} | {cpu} | {peak:.0f} |")
    print(f"\nWall time of each run in s, seeds {seeds[0]}-{seeds[-1]}:")
    for (boundary, eta), rs in runs.items():
        print(f"  {boundary} eta {eta:g}: " + " ".join(f"{r['seconds']:.2f}" for r in rs))


def _median_range(values: list[float]) -> str:
    return f"{np.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
