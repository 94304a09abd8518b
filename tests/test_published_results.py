"""The published studies stay honest: their reports regenerate from their records, and the
cells of a paired comparison really are paired (same start, same batches, same noisy file).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from noisybox.report.writer import write_report
from noisybox.study.datasets import noisy_annotations, prepare_dataset
from noisybox.study.grid import expand_grid
from noisybox.study.loading import load_config
from noisybox.study.results import open_results_folder
from noisybox.study.runner import build_train_config

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
STUDIES = sorted(p.parent.name for p in RESULTS.glob("*/benchmark.json"))
# Files of report/ compared byte for byte (the PNG plots depend on the matplotlib build).
COMPARED = (
    "report.md",
    "table3.tex",
    "summary.csv",
    "relative_improvement.csv",
    "paired_differences.csv",
    "robustness.csv",
    "records.csv",
    "learning_curves.csv",
    "learning_curve_summary.csv",
    "retention_paired.csv",
    "reference_summary.csv",
    "reference_paired.csv",
    "reference_differences.csv",
    "reference_retention.csv",
)


def test_there_are_published_studies() -> None:
    assert "paper-mini" in STUDIES


@pytest.mark.parametrize("study", STUDIES)
def test_committed_report_regenerates_from_its_records(study: str, tmp_path: Path) -> None:
    src = RESULTS / study
    dst = tmp_path / study
    dst.mkdir()
    if (src / "records").is_dir():  # a study that has just started has no record yet
        shutil.copytree(src / "records", dst / "records")
    if (src / "PROTOCOL.md").is_file():  # the report compares it with its stamp
        shutil.copy(src / "PROTOCOL.md", dst / "PROTOCOL.md")
    shutil.copy(src / "benchmark.json", dst / "benchmark.json")
    write_report(dst, plots=False)
    compared = [name for name in COMPARED if (src / "report" / name).is_file()]
    assert "report.md" in compared
    for name in compared:
        committed = (src / "report" / name).read_text(encoding="utf-8")
        regenerated = (dst / "report" / name).read_text(encoding="utf-8")
        assert regenerated == committed, f"{study}/report/{name} differs from its records"
    # every committed CSV/Markdown table was regenerated (none is left over from an old run)
    for path in (src / "report").glob("*.csv"):
        assert (dst / "report" / path.name).is_file(), path


pytestmark = pytest.mark.usefixtures("one_thread")


def test_cells_that_differ_only_in_the_loss_are_paired(tmp_path: Path) -> None:
    from noisybox.engine.distributed import init_distributed
    from noisybox.engine.setup import setup_run as _setup

    cfg = load_config(
        {
            "name": "pairs",
            "dataset": {"builtin": "shapes", "num_train": 6, "num_val": 2, "image_size": 64},
            "detectors": [
                {"name": "fcos", "backbone": "resnet18_025", "options": {"fpn_channels": 32}}
            ],
            "losses": ["iou", {"name": "alpha-iou", "alpha": 3}, "diou"],
            "etas": [0.3],
            "seeds": [4],
            "schedule": {
                "epochs": 1,
                "batch_size": 2,
                "image_size": 64,
                "workers": 0,
                "scale_range": [0.8, 1.2],
            },
            "device": "cpu",
        }
    )
    folder, cfg = open_results_folder(cfg, tmp_path / "out")
    data = prepare_dataset(cfg, folder)
    runs = []
    for cell in expand_grid(cfg):
        path, _, _ = noisy_annotations(cfg, folder, data, cell.eta, cell.seed)
        train_cfg = build_train_config(cfg, cell, data, path, folder.cell_dir(cell.cell_id))
        device = torch.device("cpu")
        runs.append((cell, path, _setup(train_cfg, device, init_distributed(device))))
    assert len(runs) == 3 and len({c.loss.name for c, _, _ in runs}) == 3
    # one noisy file per (eta, seed), shared by every loss
    assert len({p for _, p, _ in runs}) == 1
    ref = runs[0][2]
    ref_state = ref.model.state_dict()
    ref_batches = list(ref.loader)
    for _, _, run in runs[1:]:
        # identical initial weights (the loss has no parameters of its own)
        state = run.model.state_dict()
        assert state.keys() == ref_state.keys()
        assert all(torch.equal(state[k], ref_state[k]) for k in state)
        # the same batches (augmentation included) in the same order
        batches = list(run.loader)
        assert len(batches) == len(ref_batches) == 3
        for (imgs, tgts), (ref_imgs, ref_tgts) in zip(batches, ref_batches, strict=True):
            assert all(torch.equal(a, b) for a, b in zip(imgs, ref_imgs, strict=True))
            for t, r in zip(tgts, ref_tgts, strict=True):
                assert torch.equal(t["boxes"], r["boxes"]) and torch.equal(t["labels"], r["labels"])
    # a different seed changes both (the test can fail)
    other = build_train_config(cfg, runs[0][0], data, runs[0][1], tmp_path / "other")
    other.seed = 5
    device = torch.device("cpu")
    run5 = _setup(other, device, init_distributed(device))
    assert not all(torch.equal(v, ref_state[k]) for k, v in run5.model.state_dict().items())
