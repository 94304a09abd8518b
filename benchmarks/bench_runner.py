"""The benchmark runner's own overhead as a share of the grid's wall time (target < 5%).

Runs a benchmark (default: the ``quick`` preset, end to end, into a fresh folder) and
splits its wall time into the training epochs (``time_s`` of every epoch in the records'
histories) and everything else the runner adds around them: generating the dataset,
corrupting the annotations, building models and data loaders, evaluating on the clean
test set, writing records, the report and the plots.

    python benchmarks/bench_runner.py                 # quick preset, prints the shares
    python benchmarks/bench_runner.py --preset alpha-sweep --out /tmp/sweep
    python benchmarks/bench_runner.py --config my.yaml --keep

Prints one ``key: value`` line per figure; ``overhead_share`` is the figure to watch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from noisybox.report.writer import write_report
from noisybox.study.loading import load_config
from noisybox.study.runner import run_benchmark


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--config", default=None, help="a YAML benchmark file instead of a preset")
    parser.add_argument(
        "--out", default=None, help="results folder (default: a fresh temporary one)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary results folder")
    parser.add_argument("--progress", action="store_true", help="show progress bars")
    args = parser.parse_args()

    cfg = load_config(args.config or args.preset)
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_runner_"))
    fresh = not any((out / "records").glob("*.json"))
    start = time.perf_counter()
    summary = run_benchmark(cfg, out, progress=args.progress)
    run_s = time.perf_counter() - start
    start = time.perf_counter()
    report = write_report(out)
    report_s = time.perf_counter() - start
    wall = run_s + report_s

    records = [r for r in summary.records if r["cell_id"] in set(summary.trained)]
    epochs_s = sum(float(r["timing"]["epochs_s"]) for r in records)
    train_call_s = sum(float(r["timing"]["train_call_s"]) for r in records)
    cell_total_s = sum(float(r["timing"]["total_s"]) for r in records)
    corrupt_s = sum(float(r["timing"]["corrupt_s"]) for r in records)
    overhead = wall - epochs_s
    images = sum(
        sum(h.get("images_per_s", 0.0) * h.get("time_s", 0.0) for h in r["history"])
        for r in records
    )
    print(f"config: {cfg.name} ({cfg.source})")
    print(f"fresh_run: {fresh}")
    print(
        f"cells_trained: {len(records)} of {len(summary.cells)} (skipped {len(summary.skipped)}, failed {len(summary.failures)})"
    )
    print(f"cpu_count: {os.cpu_count()}  load_average_1min: {os.getloadavg()[0]:.2f}")
    print(f"grid_wall_s: {wall:.1f}")
    print(f"training_epochs_s: {epochs_s:.1f}  ({images / max(epochs_s, 1e-9):.1f} images/s)")
    print(f"corrupt_s: {corrupt_s:.2f}")
    print(
        f"per_cell_setup_and_eval_s: {train_call_s - epochs_s:.1f}  (model/data build, clean-test evaluation)"
    )
    print(
        f"per_cell_bookkeeping_s: {cell_total_s - train_call_s - corrupt_s:.2f}  (records, configs)"
    )
    print(
        f"grid_bookkeeping_s: {run_s - cell_total_s:.1f}  (dataset generation, folder checks, flags)"
    )
    print(f"report_s: {report_s:.1f}  (tables and plots)")
    print(f"overhead_s: {overhead:.1f}")
    print(f"overhead_share: {100 * overhead / max(wall, 1e-9):.2f}%  (target < 5%)")
    collapsed = [r["cell_id"] for r in summary.records if r.get("collapsed")]
    print(f"collapsed_cells: {len(collapsed)} {json.dumps(collapsed)}")
    print(f"report: {out / 'report' / 'report.md'} ({len(report.files)} files)")
    if args.out is None and not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    return 1 if summary.failures else 0


if __name__ == "__main__":
    sys.exit(main())
