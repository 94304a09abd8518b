"""Two claims proven end to end (issue 13, items 10 and 11).

* A benchmark killed with SIGKILL at several points and re-run ends with the same records
  (metrics, every epoch's losses) and the same final weights as an uninterrupted run.
* A cell whose box regression really collapses (SGD, no warm-ups, alpha = 3 on a
  random-init FCOS, issue 7) is flagged in its record and in the report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from noisybox.engine import load_checkpoint
from noisybox.study.runner import ResultsFolder

CLI = [sys.executable, "-c", "from noisybox.cli import main; main()"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

PAIR = {
    "name": "pair",
    "dataset": {"builtin": "shapes", "num_train": 8, "num_val": 4, "image_size": 64, "seed": 0},
    "detectors": [
        {
            "name": "fcos",
            "backbone": "resnet18_025",
            "options": {"fpn_channels": 32, "detector_kwargs": {"num_convs": 1}},
        }
    ],
    "losses": ["iou", {"name": "alpha-iou", "alpha": 3}],
    "etas": [0.3],
    "seeds": [0],
    "schedule": {
        "epochs": 3,
        "batch_size": 4,
        "image_size": 64,
        "workers": 0,
        "eval_every": 1,
        "ema_decay": 0.9,
    },
    "device": "cpu",
}


def _run(config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "run-benchmark", str(config), "--out", str(out), "--quiet"],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _finish(config: Path, out: Path) -> None:
    proc = _run(config, out)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()


def _final_state(out: Path) -> tuple[dict, dict]:
    records = {r["cell_id"]: r for r in ResultsFolder(out).load_records()}
    weights = {cid: load_checkpoint(out / "work" / "cells" / cid / "last.pt") for cid in records}
    return records, weights


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_equals_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    config = tmp_path / "pair.yaml"
    config.write_text(yaml.safe_dump(PAIR))
    _finish(config, tmp_path / "straight")
    ref_records, ref_weights = _final_state(tmp_path / "straight")
    assert len(ref_records) == 2

    out = tmp_path / "killed"
    cells = out / "work" / "cells"
    # kill points: while the noisy file is written, inside the first cell (after its
    # first checkpoint), inside the second cell; each after a seeded random delay
    events: list[Callable[[], bool]] = [
        lambda: (out / "work" / "noisy").is_dir(),
        lambda: any(cells.glob("*/last.pt")),
        lambda: len(list((out / "records").glob("*.json"))) >= 1,
    ]
    rng = np.random.default_rng(13)
    kills = 0
    for event in events:
        proc = _run(config, out)
        deadline = time.monotonic() + 180
        while not event() and proc.poll() is None:
            assert time.monotonic() < deadline, "kill point not reached within 180 s"
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.5)))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2, "the run ended before most kill points: make the grid longer"
    _finish(config, out)

    records, weights = _final_state(out)
    assert records.keys() == ref_records.keys()
    for cid, rec in records.items():
        ref = ref_records[cid]
        assert rec["metrics"] == ref["metrics"], cid
        assert [h["losses"] for h in rec["history"]] == [h["losses"] for h in ref["history"]]
        assert [h.get("metrics") for h in rec["history"]] == [
            h.get("metrics") for h in ref["history"]
        ]
        for part in ("model", "ema"):
            a, b = weights[cid][part], ref_weights[cid][part]
            assert a.keys() == b.keys()
            assert all(torch.equal(a[k], b[k]) for k in a), (cid, part)
    # a checkpoint half-written at a kill is removed when the cell resumes (the small
    # JSON files of records and results can also be left as .tmp by a kill; readers ignore them)
    assert list(out.rglob(".last.pt.*.tmp")) == []


COLLAPSE = {
    "name": "collapse",
    "dataset": {
        "builtin": "shapes",
        "num_train": 16,
        "num_val": 4,
        "image_size": 64,
        "seed": 0,
    },
    "detectors": [{"name": "fcos", "backbone": "resnet18", "options": {"fpn_channels": 64}}],
    "losses": ["iou", {"name": "alpha-iou", "alpha": 3, "alpha_warmup": 0.0}],
    "etas": [0.0],
    "seeds": [0],
    "schedule": {
        "epochs": 6,
        "batch_size": 4,
        "image_size": 64,
        "workers": 0,
        "optimizer": "sgd",
        "lr": 0.02,
        "lr_warmup": 0.0,
    },
    "device": "cpu",
}


@pytest.mark.slow
def test_a_cell_that_really_collapses_is_flagged_in_record_and_report(tmp_path: Path) -> None:
    config = tmp_path / "collapse.yaml"
    config.write_text(yaml.safe_dump(COLLAPSE))
    out = tmp_path / "out"
    _finish(config, out)
    records = {r["cell"]["loss"]: r for r in ResultsFolder(out).load_records()}
    collapsed, healthy = records["alpha-iou"], records["iou"]
    assert collapsed["collapsed"] is True
    assert any("do not overlap" in r for r in collapsed["collapse_reasons"])
    assert collapsed["history"][-1]["fg_iou"] < 0.05
    assert healthy["collapsed"] is False and healthy["history"][-1]["fg_iou"] > 0.3
    report = (out / "report" / "report.md").read_text(encoding="utf-8")
    assert "## Collapsed cells (1)" in report
    assert collapsed["cell_id"] in report
    row = next(line for line in report.splitlines() if line.startswith("| alpha-iou@3"))
    assert "collapsed" in row
    summary = json.loads((out / "benchmark.json").read_text())
    assert summary["config"]["name"] == "collapse"
