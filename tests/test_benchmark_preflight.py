"""A study that cannot run stops before its first corruption; one error per distinct cause
(issue 13, item 9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.data import make_shapes_dataset
from noisybox.errors import NoisyboxError
from noisybox.study.loading import load_config
from noisybox.study.preflight import preflight

GRID = {
    "name": "grid",
    "detectors": [{"name": "fcos", "options": {"fpn_channels": 32}}],
    "losses": ["iou", {"name": "alpha-iou", "alpha": 3}],
    "etas": [0.1, 0.3],
    "seeds": [0],
    "schedule": {"epochs": 1, "batch_size": 2, "image_size": 64, "workers": 0},
    "device": "cpu",
}


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    make_shapes_dataset(root, num_train=3, num_val=2, image_size=32)
    return root


def _config(tmp_path: Path, root: Path) -> Path:
    data = {
        **GRID,
        "dataset": {
            "train_annotations": str(root / "instances_train.json"),
            "train_images": str(root),
            "test_annotations": str(root / "instances_val.json"),
            "test_images": str(root),
        },
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_missing_images_stop_the_study_before_anything_is_written(
    tmp_path: Path, dataset: Path
) -> None:
    for png in sorted((dataset / "images" / "train").glob("*.png"))[1:]:
        png.unlink()
    config, out = _config(tmp_path, dataset), tmp_path / "out"
    result = CliRunner().invoke(main, ["run-benchmark", str(config), "--out", str(out)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        f"Error: dataset.train_images: Expected every image of {dataset / 'instances_train.json'} "
        f"under {dataset} but 2 of 3 are missing (first: 'images/train/000002.png', image id 2); "
        "nothing was written"
    ]
    assert not out.exists()  # no results folder, no noisy copies of the annotations


def test_a_test_set_without_a_training_category_is_refused_up_front(
    tmp_path: Path, dataset: Path
) -> None:
    val = json.loads((dataset / "instances_val.json").read_text())
    train_categories = {a["category_id"] for a in json.loads(
        (dataset / "instances_train.json").read_text())["annotations"]}  # fmt: skip
    val["categories"] = [c for c in val["categories"] if c["id"] != min(train_categories)]
    val["annotations"] = [
        a for a in val["annotations"] if a["category_id"] != min(train_categories)
    ]
    (dataset / "instances_val.json").write_text(json.dumps(val))
    cfg = load_config(_config(tmp_path, dataset))
    with pytest.raises(NoisyboxError, match=rf"category {min(train_categories)} is not there"):
        preflight(cfg, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_finished_study_is_not_checked_again(tmp_path: Path, dataset: Path) -> None:
    cfg = load_config(_config(tmp_path, dataset))
    shutil.rmtree(dataset / "images")
    with pytest.raises(NoisyboxError, match="are missing"):
        preflight(cfg, tmp_path / "out")
    from noisybox.study.grid import expand_grid

    records = tmp_path / "out" / "records"
    records.mkdir(parents=True)
    for cell in expand_grid(cfg):
        (records / f"{cell.cell_id}.json").write_text("{}")
    preflight(cfg, tmp_path / "out")  # every cell has its record: nothing to check


def test_identical_cell_errors_are_printed_once_with_their_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from noisybox.study import runner

    def fails(out_dir: object, cell_id: str, *args: object, **kwargs: object) -> dict:
        reason = "the same cause" if "alpha" in cell_id else "another cause"
        raise NoisyboxError(f"Expected images but got {reason}")

    monkeypatch.setattr(runner, "run_cell", fails)
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({**GRID, "dataset": {"builtin": "shapes", "num_train": 2,
                                                         "num_val": 1, "image_size": 32}}))  # fmt: skip
    result = CliRunner().invoke(
        main, ["run-benchmark", str(config), "--out", str(tmp_path / "out"), "--quiet"]
    )
    assert result.exit_code == 1
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert error.count("Expected images but got the same cause") == 1
    assert error.count("Expected images but got another cause") == 1
    assert error.startswith("Error: 4 cell(s) failed (re-run to retry): ")
    assert "but got another cause (2 cells: fcos-resnet18__iou__eta0.1__s0, " in error
