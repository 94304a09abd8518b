"""The grid runner on a tiny real grid: kill and resume, shared noise, launchers, collapse."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner
from torchvision.ops import box_convert, box_iou

from noisybox.cli import main
from noisybox.engine import load_checkpoint
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations
from noisybox.stats import compare_annotations
from noisybox.study.collapse_flags import detect_collapse, find_twin
from noisybox.study.datasets import noisy_annotations, prepare_dataset
from noisybox.study.grid import expand_grid
from noisybox.study.loading import CollapseConfig, load_config
from noisybox.study.results import ResultsFolder, open_results_folder
from noisybox.study.runner import run_benchmark

EPOCHS = 2
TINY = {
    "name": "tiny",
    "dataset": {"builtin": "shapes", "num_train": 8, "num_val": 4, "image_size": 64, "seed": 0},
    "detectors": [{"name": "retinanet", "backbone": "resnet18", "options": {"fpn_channels": 32}}],
    "losses": ["iou", {"name": "alpha-iou", "alpha": 3}],
    "etas": [0.3],
    "seeds": [0],
    "schedule": {"epochs": EPOCHS, "batch_size": 4, "image_size": 64, "workers": 0},
    "device": "cpu",
}
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def coco_boxes(path: Path) -> tuple[list[int], torch.Tensor]:
    doc = json.loads(path.read_text())
    anns = sorted(doc["annotations"], key=lambda a: a["id"])
    boxes = torch.tensor([a["bbox"] for a in anns], dtype=torch.float64)
    return [a["id"] for a in anns], box_convert(boxes, "xywh", "xyxy")


@pytest.mark.slow
def test_kill_mid_cell_and_resume_trains_every_epoch_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, TINY)
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "noisybox.cli",
        "run-benchmark",
        str(config),
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cells_dir = out / "work" / "cells"
    deadline = time.monotonic() + 120
    try:
        while not list(cells_dir.glob("*/last.pt")):
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    folder = ResultsFolder(out)
    before = {r["cell_id"]: r for r in folder.load_records()}
    interrupted = {
        p.parent.name: load_checkpoint(p)["history"]
        for p in cells_dir.glob("*/last.pt")
        if p.parent.name not in before
    }
    assert interrupted, "the kill should land inside a cell"
    assert all(len(h) < EPOCHS for h in interrupted.values())
    # status reads the interrupted folder: the checkpoint's epochs, the cells not started
    status = CliRunner().invoke(main, ["status", str(out), "--json", "--jobs", "1"])
    assert status.exit_code == 0, status.output
    found = json.loads(status.stdout)
    assert found["cells"] == 2 and found["done"] == len(before)
    assert {c["cell_id"]: c["epochs_done"] for c in found["in_progress"]} == {
        k: len(h) for k, h in interrupted.items()
    }
    assert found["not_started"] == 2 - len(before) - len(interrupted)
    assert (found["time_left_s"] is None) == (not before)

    result = CliRunner().invoke(main, ["run-benchmark", str(config), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "| iou |" in result.stdout or "| iou [" in result.stdout
    records = {r["cell_id"]: r for r in folder.load_records()}
    assert sorted(records) == sorted(c.cell_id for c in expand_grid(load_config(TINY)))
    for cell_id, rec in records.items():
        assert [h["epoch"] for h in rec["history"]] == list(range(1, EPOCHS + 1))
        if cell_id in before:  # finished before the kill: not touched
            assert rec["finished_at"] == before[cell_id]["finished_at"]
            assert rec["history"] == before[cell_id]["history"]
        if cell_id in interrupted:  # resumed: the epochs done before the kill are kept as they were
            done = interrupted[cell_id]
            assert rec["history"][: len(done)] == done
    # a third run trains nothing
    result = CliRunner().invoke(main, ["run-benchmark", str(config), "--out", str(out), "--quiet"])
    assert result.exit_code == 0
    assert f"0 cells trained, {len(records)} already done" in result.stderr
    status = CliRunner().invoke(main, ["status", str(out)])
    assert status.exit_code == 0, status.output
    assert status.stdout.startswith(f"tiny ({out.resolve()}): 2 of 2 cells done (0 collapsed)")
    assert status.stdout.rstrip().endswith("nothing left to train")
    status = CliRunner().invoke(main, ["status", str(tmp_path)])
    assert status.exit_code == 1 and "Traceback" not in status.output
    assert (
        status.output.strip()
        == f"Error: Expected a results folder with benchmark.json but got {tmp_path}"
    )

    # both losses trained on the same noisy boxes, generated once; their IoU is measured
    noisy = sorted((out / "work" / "noisy").glob("*/instances_train.json"))
    assert [p.parent.name for p in noisy] == ["eta0.3__s0"]
    ids_c, clean = coco_boxes(out / "work" / "data" / "shapes" / "instances_train.json")
    ids_n, dirty = coco_boxes(noisy[0])
    assert ids_c == ids_n
    expected = float(torch.diagonal(box_iou(clean, dirty)).mean())
    for rec in records.values():
        assert rec["noise"]["file"] == "work/noisy/eta0.3__s0/instances_train.json"
        assert rec["noise"]["mean_iou"] == pytest.approx(expected, rel=1e-9)
        assert rec["train_config"]["train_annotations"] == rec["noise"]["file"]
        assert set(rec["versions"]) >= {"noisybox", "torch", "torchvision", "python"}
        assert rec["benchmark"]["schedule"]["epochs"] == EPOCHS
        assert set(rec["metrics"]) >= {"ap50", "ap95", "map", "map_75_95"}
        assert isinstance(rec["collapsed"], bool)
    assert (out / "report" / "report.md").read_text() == result.stdout.rstrip("\n") + "\n"


@pytest.mark.slow
def test_submitit_local_job_array_and_shards(tmp_path: Path) -> None:
    cfg = load_config({**TINY, "schedule": {**TINY["schedule"], "epochs": 1}})
    all_ids = [c.cell_id for c in expand_grid(cfg)]
    assert len(all_ids) == 2
    # shard 0/2 locally, in this process
    first = run_benchmark(cfg, tmp_path / "out", shard=(0, 2), progress=False)
    assert first.cells == first.trained == [all_ids[0]] and not first.failures
    # the rest as a submitit job array (the local executor stands in for Slurm)
    summary = run_benchmark(
        cfg,
        tmp_path / "out",
        launcher="slurm",
        progress=False,
        slurm_cluster="local",
        slurm_parameters={"timeout_min": 10},
    )
    assert not summary.failures, summary.failures
    assert sorted(summary.skipped) == sorted(first.trained)
    assert sorted(summary.trained) == sorted(set(all_ids) - set(first.trained))
    assert sorted(r["cell_id"] for r in summary.records) == sorted(all_ids)
    assert list((tmp_path / "out" / "work" / "submitit").glob("*_submitted.pkl"))


def test_parallel_jobs_give_the_records_of_the_sequential_run(tmp_path: Path) -> None:
    cfg = load_config({**TINY, "schedule": {**TINY["schedule"], "epochs": 1}})
    seq = run_benchmark(cfg, tmp_path / "seq", progress=False)
    par = run_benchmark(cfg, tmp_path / "par", jobs=2, progress=False)
    assert not par.failures, par.failures
    assert par.trained == seq.trained == par.cells
    for cell_id in par.cells:
        a = json.loads((tmp_path / "seq" / "records" / f"{cell_id}.json").read_text())
        b = json.loads((tmp_path / "par" / "records" / f"{cell_id}.json").read_text())
        # same noise, same init and batches: training is deterministic on the CPU
        assert a["noise"]["mean_iou"] == b["noise"]["mean_iou"]
        assert a["history"][-1]["loss"] == pytest.approx(b["history"][-1]["loss"], rel=1e-4)
        assert a["metrics"] == pytest.approx(b["metrics"], abs=1e-6)
    with pytest.raises(NoisyboxError, match="jobs"):
        run_benchmark(cfg, tmp_path / "seq", jobs=2, launcher="slurm", progress=False)
    # a committed results folder (records, no work/) continues without retraining anything
    shutil.rmtree(tmp_path / "par" / "work")
    again = run_benchmark(cfg, tmp_path / "par", jobs=2, progress=False)
    assert again.trained == [] and sorted(again.skipped) == sorted(par.cells)
    assert not (tmp_path / "par" / "work").exists()
    # the builtin dataset's digest is pinned: data from a changed generator is refused
    bench = tmp_path / "par" / "benchmark.json"
    stored = json.loads(bench.read_text())
    seq_digest = json.loads((tmp_path / "seq" / "benchmark.json").read_text())["dataset_digest"]
    assert stored["dataset_digest"] == seq_digest and len(seq_digest) == 16
    bench.write_text(json.dumps({**stored, "dataset_digest": "0" * 16}))
    (tmp_path / "par" / "records" / f"{par.cells[0]}.json").unlink()
    with pytest.raises(NoisyboxError, match=r"digest 0{16}\) but generated one"):
        run_benchmark(cfg, tmp_path / "par", progress=False)
    assert sorted(p.stem for p in (tmp_path / "par" / "records").glob("*.json")) == par.cells[1:]


# ----------------------------------------------------------------------------- collapse


def rec(loss: str, alpha: float, history: list[dict], ap50: float, seed: int = 0) -> dict:
    return {
        "cell_id": f"{loss}@{alpha}",
        "cell": {
            "detector": "fcos",
            "backbone": "resnet18",
            "loss": loss,
            "alpha": alpha,
            "eta": 0.3,
            "seed": seed,
        },
        "history": history,
        "metrics": {"ap50": ap50},
    }


def epochs(box_losses: list[float], fg_ious: list[float], alpha: float) -> list[dict]:
    return [
        {"epoch": i + 1, "box_loss": b, "fg_iou": f, "alpha": alpha}
        for i, (b, f) in enumerate(zip(box_losses, fg_ious, strict=True))
    ]


def test_collapse_detection_fires_on_a_stalled_alpha_3_cell() -> None:
    # issue 7's failure: 1 - IoU^3 with IoU ~ 0 stays ~1, the matched boxes never overlap
    dead = rec("alpha-iou", 3.0, epochs([0.999, 0.998, 0.998], [0.01, 0.01, 0.02], 3.0), 0.0)
    healthy = rec("iou", 1.0, epochs([0.60, 0.45, 0.38], [0.40, 0.55, 0.62], 1.0), 0.75)
    warm = rec("alpha-iou", 3.0, epochs([0.55, 0.60, 0.48], [0.45, 0.55, 0.63], 3.0), 0.72)
    records = [dead, healthy, warm]
    assert find_twin(dead, records) is healthy
    assert find_twin(healthy, records) is None
    reasons = detect_collapse(dead, healthy, CollapseConfig())
    assert [r.split(":")[0] for r in reasons] == [
        "matched boxes do not overlap their targets",
        "AP50 near zero",
    ]
    assert "(twin iou@1.0)" in reasons[-1]
    assert detect_collapse(healthy, None, CollapseConfig()) == []
    # a warm-up raises 1 - IoU^alpha while the boxes improve: not a collapse
    assert detect_collapse(warm, healthy, CollapseConfig()) == []
    # without the twin only the training signal remains; thresholds come from the config
    assert len(detect_collapse(dead, None, CollapseConfig())) == 1
    assert detect_collapse(dead, None, CollapseConfig(min_fg_iou=0.0)) == []
    # the stock losses record no fg_iou: then the box loss has to fall
    stock = [{"box_loss": b, "alpha": None} for b in (0.50, 0.49, 0.49)]
    assert detect_collapse({"history": stock}, None, CollapseConfig())[0].startswith(
        "box loss did not fall"
    )
    assert detect_collapse({"history": stock}, None, CollapseConfig(min_box_loss_drop=0.01)) == []
    nan = rec("iou", 1.0, epochs([0.6, float("nan")], [0.4, 0.4], 1.0), 0.5)
    assert (
        detect_collapse(nan, None, CollapseConfig())[-1] == "box loss was non-finite in some epochs"
    )


def test_grid_order_keeps_cells_sharing_a_noisy_file_together() -> None:
    cfg = load_config({**TINY, "etas": [0.0, 0.2], "seeds": [0, 1]})
    cells = expand_grid(cfg)
    # seeds vary slowest, losses fastest: cells sharing a noisy file are adjacent
    keys = [(c.eta, c.seed) for c in cells]
    assert keys == sorted(keys, key=lambda k: (k[1], k[0]))
    assert np.unique(np.array(keys), axis=0).shape[0] == 4


def test_noisy_annotations_are_written_once_per_eta_and_seed(tmp_path: Path) -> None:
    """What every cell of an (eta, seed) trains on, and the noise record its record holds."""
    cfg = load_config({**TINY, "etas": [0.0, 0.2], "seeds": [0, 1]})
    folder, stored = open_results_folder(cfg, tmp_path / "out")
    data = prepare_dataset(stored, folder)
    first = {
        (e, s): noisy_annotations(stored, folder, data, e, s) for e in (0.0, 0.2) for s in (0, 1)
    }
    for seed in (0, 1):  # eta 0 trains on the clean file itself
        path, noise, seconds = first[(0.0, seed)]
        assert path == data.train_annotations and noise["file"] == "clean" and seconds == 0.0
    clean = read_annotations(data.train_annotations)
    for seed in (0, 1):
        path, noise, seconds = first[(0.2, seed)]
        assert path == folder.noisy_dir(0.2, seed) / "instances_train.json" and seconds > 0
        stats = compare_annotations(clean, read_annotations(path))
        assert noise == {
            "eta": 0.2, "seed": seed, "model": "uniform", "boundary": "shift", "ratio": 1.0,
            **stats.to_dict(), "file": f"work/noisy/eta0.2__s{seed}/instances_train.json",
        }  # fmt: skip
        assert 0 < noise["mean_iou"] < 1
    assert first[(0.2, 0)][0].read_bytes() != first[(0.2, 1)][0].read_bytes()
    written = {k: v[0].stat().st_mtime_ns for k, v in first.items() if k[0] > 0}
    for (eta, seed), (path, noise, _) in first.items():  # asked again: the cached file
        assert noisy_annotations(stored, folder, data, eta, seed) == (path, noise, 0.0)
    assert {k: first[k][0].stat().st_mtime_ns for k in written} == written


def test_noisy_annotations_with_annotation_corruptions_at_eta(tmp_path: Path) -> None:
    """``noise.corruptions``: missing and extra boxes at the rate of the cell's eta."""
    cfg = load_config(
        {**TINY, "etas": [0.0, 0.2], "seeds": [0],
         "noise": {"model": "oamil", "boundary": "truncate", "corruptions": ["missing", "extra"]}}
    )  # fmt: skip
    folder, stored = open_results_folder(cfg, tmp_path / "out")
    data = prepare_dataset(stored, folder)
    clean = read_annotations(data.train_annotations)
    path, noise, _ = noisy_annotations(stored, folder, data, 0.2, 0)
    assert noise["corruptions"] == ["missing", "extra"] and noise["model"] == "oamil"
    n = clean.num_boxes
    assert noise["num_dropped"] == int(0.2 * n) and noise["num_added"] == round(0.2 * n / 0.8)
    assert read_annotations(path).num_boxes == n - noise["num_dropped"] + noise["num_added"]
    assert noisy_annotations(stored, folder, data, 0.2, 0) == (path, noise, 0.0)
    clean_path, clean_noise, _ = noisy_annotations(stored, folder, data, 0.0, 0)
    assert clean_path == data.train_annotations and clean_noise["file"] == "clean"


def test_noisy_annotations_with_relocated_boxes_at_eta(tmp_path: Path) -> None:
    """``noise.corruptions: [relocate]``: int(eta N) boxes relocated, reported apart."""
    cfg = load_config(
        {**TINY, "etas": [0.3], "seeds": [0],
         "noise": {"model": "oamil", "boundary": "truncate", "corruptions": ["relocate"]}}
    )  # fmt: skip
    folder, stored = open_results_folder(cfg, tmp_path / "out")
    data = prepare_dataset(stored, folder)
    clean = read_annotations(data.train_annotations)
    path, noise, _ = noisy_annotations(stored, folder, data, 0.3, 0)
    assert noise["corruptions"] == ["relocate"]
    assert noise["relocated"]["num_boxes"] == int(0.3 * clean.num_boxes)
    assert noise["num_boxes"] == clean.num_boxes - noise["relocated"]["num_boxes"]
    assert read_annotations(path).record_ids == clean.record_ids


def test_each_noise_condition_trains_on_its_own_corruption_alone(tmp_path: Path) -> None:
    """``noise:`` a list: one noisy file per condition and (eta, seed); a condition with
    ``model: none`` has its corruption alone (the boxes kept are the clean ones)."""
    conditions = [
        {"model": "uniform"},
        {"model": "none", "corruptions": ["missing"]},
        {"model": "none", "corruptions": ["class_flip"]},
        {"model": "none", "corruptions": ["extra"]},
    ]
    cfg = load_config({**TINY, "etas": [0.0, 0.3], "noise": conditions})
    folder, stored = open_results_folder(cfg, tmp_path / "out")
    data = prepare_dataset(stored, folder)
    clean = read_annotations(data.train_annotations)
    n = clean.num_boxes
    expected = {  # condition: (dropped, relabelled, added)
        "uniform": (0, 0, 0),
        "missing": (int(0.3 * n), 0, 0),
        "class_flip": (0, int(0.3 * n), 0),
        "extra": (0, 0, round(0.3 * n / 0.7)),
    }
    paths = set()
    for cell in expand_grid(stored):
        path, noise, _ = noisy_annotations(
            stored, folder, data, cell.eta, cell.seed, cell.condition
        )
        if cell.eta == 0:
            assert cell.condition is None and path == data.train_annotations
            assert noise["conditions"] == list(expected) and noise["file"] == "clean"
            continue
        label = cell.condition.label
        assert path == folder.noisy_dir(0.3, 0, label) / data.train_annotations.name
        assert noise["condition"] == label
        paths.add(path)
        doc = json.loads(path.read_text())
        manifest = doc["info"]["noisybox"]
        kinds = set(manifest.get("annotation_noise", {})) - {"dropped_records"}
        assert kinds == ({label} if label != "uniform" else set())
        stats = compare_annotations(
            clean,
            read_annotations(path),
            partial=True,
            dropped=manifest.get("annotation_noise", {}).get("dropped_records", []),
        )
        counts = (stats.num_dropped, stats.num_relabelled, stats.num_added)
        assert counts == expected[label]
        assert (noise["num_dropped"], noise["num_relabelled"], noise["num_added"]) == counts
        if label == "uniform":
            assert 0 < stats.mean_iou < 1 and manifest["eta"] == 0.3
        else:  # box noise off: every box kept is its clean box
            assert stats.mean_iou == pytest.approx(1.0) and manifest["eta"] == 0.0
    assert len(paths) == 4


@pytest.mark.slow
def test_a_two_condition_grid_runs_and_reports(tmp_path: Path) -> None:
    """Three cells (one shared clean cell, one per condition), one epoch each."""
    cfg = load_config(
        {**TINY, "losses": ["iou"], "etas": [0.0, 0.3],
         "schedule": {**TINY["schedule"], "epochs": 1},
         "noise": [{"model": "uniform"}, {"model": "none", "corruptions": ["missing"]}]}
    )  # fmt: skip
    summary = run_benchmark(cfg, tmp_path / "out", progress=False)
    assert not summary.failures
    assert summary.cells == [
        "retinanet-resnet18__iou__eta0__s0",
        "retinanet-resnet18__iou__uniform__eta0.3__s0",
        "retinanet-resnet18__iou__missing__eta0.3__s0",
    ]
    by_id = {r["cell_id"]: r for r in summary.records}
    assert "condition" not in by_id["retinanet-resnet18__iou__eta0__s0"]["cell"]
    missing = by_id["retinanet-resnet18__iou__missing__eta0.3__s0"]
    assert missing["cell"]["condition"] == "missing" and missing["noise"]["num_dropped"] > 0
    assert missing["noise"]["file"] == "work/noisy/eta0.3__s0__missing/instances_train.json"
    result = CliRunner().invoke(main, ["report", str(tmp_path / "out"), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "## Noise condition `uniform`" in result.stdout
    assert "## Noise condition `missing`" in result.stdout


@pytest.mark.slow
def test_extend_a_one_condition_study_with_another_condition(tmp_path: Path) -> None:
    """--extend with a second noise condition trains only that condition's cell; the first
    condition's noisy cell keeps its training under its labelled id, and the report has a
    section per condition. An interrupted noisy cell stops it before anything moves."""
    tiny = {**TINY, "losses": ["iou"], "etas": [0.0, 0.3],
            "schedule": {**TINY["schedule"], "epochs": 1}}  # fmt: skip
    out = tmp_path / "out"
    first = run_benchmark(load_config(tiny), out, progress=False)
    assert not first.failures and len(first.trained) == 2
    old_id, new_id = (
        "retinanet-resnet18__iou__eta0.3__s0",
        "retinanet-resnet18__iou__uniform__eta0.3__s0",
    )
    folder = ResultsFolder(out.resolve())
    old_record = folder.load_record(old_id)
    extension = write_config(
        tmp_path, {**tiny, "noise": {"model": "none", "corruptions": ["missing"]}}
    )
    cmd = ["run-benchmark", str(extension), "--out", str(out), "--extend", "--quiet"]

    # an interrupted noisy cell (checkpoint, no record) would not resume from a moved file
    saved = folder.record_path(old_id).read_bytes()
    folder.record_path(old_id).unlink()
    before = {p: p.read_bytes() for p in out.rglob("*.json") if "work" not in p.parts}
    result = CliRunner().invoke(main, cmd)
    assert result.exit_code != 0 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and f"but {old_id} was interrupted" in result.stderr
    assert {p: p.read_bytes() for p in out.rglob("*.json") if "work" not in p.parts} == before
    assert folder.cell_dir(old_id).is_dir() and folder.noisy_dir(0.3, 0).is_dir()
    folder.record_path(old_id).write_bytes(saved)

    result = CliRunner().invoke(main, cmd)
    assert result.exit_code == 0, result.output
    stored = folder.load_config()
    assert [n.label for n in stored.conditions] == ["uniform", "missing"]
    assert sorted(p.stem for p in folder.records_dir.glob("*.json")) == [
        "retinanet-resnet18__iou__eta0__s0",
        "retinanet-resnet18__iou__missing__eta0.3__s0",
        new_id,
    ]
    moved = folder.load_record(new_id)
    assert moved["metrics"] == old_record["metrics"]  # not trained again
    assert moved["history"] == old_record["history"]
    assert moved["cell"] == {**old_record["cell"], "condition": "uniform"}
    assert moved["noise"]["condition"] == "uniform"
    assert moved["noise"]["file"] == "work/noisy/eta0.3__s0__uniform/instances_train.json"
    assert moved["train_config"]["out_dir"] == f"work/cells/{new_id}"
    for key in ("train_annotations", "out_dir"):
        assert (out / moved["train_config"][key]).exists()
    assert not folder.cell_dir(old_id).exists() and not folder.noisy_dir(0.3, 0).exists()
    # the moved noisy file is the cache of the uniform condition: not drawn again
    data = prepare_dataset(stored, folder)
    path, noise, seconds = noisy_annotations(stored, folder, data, 0.3, 0, stored.conditions[0])
    assert seconds == 0.0 and noise == {**old_record["noise"], **moved["noise"]}
    assert path == out / moved["noise"]["file"]

    # the stored grid now trains nothing; its report has a section per condition
    again = run_benchmark(stored, out, progress=False)
    assert again.trained == [] and len(again.skipped) == 3
    result = CliRunner().invoke(main, ["report", str(out), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "## Noise condition `uniform`" in result.stdout
    assert "## Noise condition `missing`" in result.stdout
