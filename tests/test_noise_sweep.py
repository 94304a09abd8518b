"""``noisybox noise-sweep``: every model at every level, against ``corrupt``'s own figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.corrupt import corrupt_annotations
from noisybox.noise import list_noise_models
from noisybox.sweep import SOURCE_BOUNDARY, noise_sweep

DATA = Path(__file__).parent / "data"
COCO_FILE = DATA / "coco" / "instances_tiny.json"
VOC_DIR = DATA / "voc" / "VOC2007"


def test_every_model_at_every_level() -> None:
    result = noise_sweep(COCO_FILE, [0.0, 0.2])
    assert [(r["model"], r["level"]) for r in result.rows] == [
        (m, x) for m in list_noise_models() for x in (0.0, 0.2)
    ]
    for row in result.rows:
        assert row["boundary"] == SOURCE_BOUNDARY.get(row["model"], "shift")
        if row["level"] == 0.0:  # no noise: every box is its clean self
            assert row["mean_iou"] == 1.0 and row["mean_image_iou"] == 1.0
        else:
            assert 0.0 < row["mean_iou"] < 1.0
        assert row["num_boxes"] == 4  # the crowd box is left out, as corrupt does


@pytest.mark.parametrize(("model", "boundary"), [("uniform", "shift"), ("oamil", "truncate")])
def test_figures_are_corrupts_own(model: str, boundary: str, tmp_path: Path) -> None:
    sweep = noise_sweep(VOC_DIR, [0.3], models=[model], seed=7)
    written = corrupt_annotations(
        VOC_DIR, tmp_path / "o", eta=0.3, noise_model=model, boundary=boundary, seed=7
    )
    row = sweep.rows[0]
    assert row["mean_image_iou"] == written.stats.mean_image_iou
    assert row["mean_iou"] == written.stats.mean_iou


def test_one_boundary_for_all() -> None:
    result = noise_sweep(COCO_FILE, [0.1], boundary="truncate")
    assert {row["boundary"] for row in result.rows} == {"truncate"}


def test_cli_table_json_and_plot(tmp_path: Path) -> None:
    plot = tmp_path / "sweep.png"
    run = CliRunner().invoke(
        main,
        [
            "noise-sweep",
            str(COCO_FILE),
            "--levels",
            "0.1,0.3",
            "--model",
            "uniform",
            "--model",
            "edge-jitter",
            "--plot",
            str(plot),
            "-q",
        ],  # fmt: skip
    )
    assert run.exit_code == 0, run.output
    assert "| uniform | shift |" in run.stdout and "| edge-jitter | truncate |" in run.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    run = CliRunner().invoke(main, ["noise-sweep", str(COCO_FILE), "--levels", "0.2", "--json"])
    report = json.loads(run.stdout)
    assert report["levels"] == [0.2] and len(report["rows"]) == len(list_noise_models())
