"""Issue 31 (reliability, second pass): every case of its seven classes, replayed.

The one-line cases run through the table harness of ``tests/test_bad_inputs.py`` (exit
code, exactly one ``Error:`` line with the expected words, no traceback, nothing written
or changed in the case's folder); the others are tests of their own below. The class
number of the issue leads each group.
"""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from test_bad_inputs import (  # the harness, its fixtures and the tiny study
    CORRUPT,
    DATA,
    TINY,
    A,
    Case,
    _config,
    _edit_json,
    _never_rename_onto_devices,  # noqa: F401  (autouse fixture)
    _set,
    _snapshot,
    _write,
    shapes,  # noqa: F401  (fixture)
    workspace,  # noqa: F401  (fixture)
)
from test_bad_inputs import (
    test_bad_input_is_refused_with_one_line_and_nothing_written as _harness,
)

from noisybox.cli import main
from noisybox.engine.collapse import collapse_reasons
from noisybox.study.grid import expand_grid
from noisybox.study.loading import load_config

BIG = 2**70
OAMIL_COCO = DATA / "coco_oamil" / "instances_train2017.json"
CELL = expand_grid(load_config(TINY, check_paths=False))[0]


def _save(name: str, state: object) -> object:
    def setup(w: Path) -> None:
        torch.save(state, w / name)

    return setup


def _study(config: dict, record: dict | None = None, *, copy_as: str | None = None) -> object:
    """``res/``: a results folder of ``config`` (the tiny grid by default) with one record."""

    def setup(w: Path) -> None:
        (w / "res" / "records").mkdir(parents=True)
        (w / "res" / "benchmark.json").write_text(json.dumps({"config": config}))
        if record is not None:
            (w / "res" / "records" / f"{record['cell_id']}.json").write_text(json.dumps(record))
            if copy_as is not None:
                (w / "res" / "records" / copy_as).write_text(json.dumps(record))

    return setup


def _record(**changes: object) -> dict:
    rec = {
        "cell_id": CELL.cell_id,
        "cell": CELL.to_dict(),
        "metrics": {"map": 0.5, "ap50": 0.7},
        "history": [],
        "collapsed": False,
        "collapse_reasons": [],
    }
    for key, value in changes.items():
        _set(rec, key.replace("__", "."), value)
    return rec


STORED = load_config(TINY, check_paths=False).to_dict()


def _stored(**changes: object) -> dict:
    data = json.loads(json.dumps(STORED))
    for key, value in changes.items():
        _set(data, key.replace("__", "."), value)
    return data


def _loop(name: str) -> object:
    def setup(w: Path) -> None:
        path = w / name
        path.unlink()
        os.symlink(path, path)

    return setup


def _label_folder(w: Path) -> None:
    label = w / "yolo" / "labels" / "train" / "a.txt"
    label.unlink()
    label.mkdir()


def _pickle_beside(w: Path) -> None:
    (w / "r").mkdir()
    (w / "r" / "coco2017_train_noise-r0.3.pkl").write_bytes(b"the user's own pickle")


PREVIEW = ["preview", "{w}/ds/instances_val.json", "--eta", "0.2"]
RUN = ["run-benchmark", "{w}/c.yaml", "--out", "{w}/res", "--quiet"]
TRAIN = ["train", "--data", "{w}/ds", "--out", "{w}/run", "--workers", "0", "--epochs", "1"]

CASES = [
    # -- 1. tracebacks instead of one line
    Case(
        "corrupt: image id above int64",
        [*CORRUPT, "-o", "{w}/o.json"],
        "within 64 bits",
        setup=_edit_json("a.json", lambda d: _set(d, "images.2.id", BIG)),
    ),
    Case(
        "iou: image id above int64",
        ["iou", A, A],
        "within 64 bits",
        setup=_edit_json("a.json", lambda d: _set(d, "images.2.id", BIG)),
    ),
    Case("preview --image-ids ''", [*PREVIEW, "--image-ids", "", "-o", "{w}/p.png"], "--image-ids", code=2),
    Case("plot-loss --dpi 100000", ["plot-loss", "-o", "{w}/p.png", "--dpi", "100000"], "1200", code=2),
    Case("train --weights JSON", [*TRAIN, "--weights", "{w}/w.json"], "unreadable", setup=_write("w.json", b'{"a": 1}')),
    Case("train --weights garbage", [*TRAIN, "--weights", "{w}/g.pt"], "unreadable", setup=_write("g.pt", b"\x00garbage")),
    Case("train --weights-backbone empty", [*TRAIN, "--weights-backbone", "{w}/e.pt"], "unreadable", setup=_write("e.pt", b"")),
    Case(
        "evaluate: checkpoint without model",
        ["evaluate", "{w}/c.pt", "--annotations", "{w}/ds/instances_val.json"],
        "'model' weights",
        setup=_save("c.pt", {"format": "noisybox-train-checkpoint-v1", "epoch": 1}),
    ),
    Case(
        "report: a metric is a string",
        ["report", "{w}/res"],
        "Expected metric map a finite number",
        setup=_study(STORED, _record(metrics__map="0.5")),
    ),
    Case("make-dataset --image-size 100000", ["make-dataset", "shapes", "{w}/new", "--image-size", "100000"], "4096", code=2),
    Case("run-benchmark image_size 1000000", RUN, "dataset.image_size", setup=_config("c.yaml", dataset__image_size=1_000_000)),
    # -- 2. no upper bound
    Case("preview --tile-size 100000", [*PREVIEW, "--tile-size", "100000", "-o", "{w}/p.png"], "2048", code=2),
    Case("iou-hist --bins 100000000", ["iou-hist", A, "--eta", "0.1", "--bins", "100000000", "-o", "{w}/h.png"], "10000", code=2),
    Case("run-benchmark num_train 1e9", RUN, "dataset.num_train", setup=_config("c.yaml", dataset__num_train=1_000_000_000)),
    # -- 3. exit 0 with a wrong or garbage result
    Case("train --lr inf", [*TRAIN, "--lr", "inf"], "finite", code=2),
    Case("train --config lr .inf", [*TRAIN, "--config", "{w}/t.yaml"], "finite lr", setup=_write("t.yaml", b"lr: .inf\n")),
    Case("YOLO label file a folder", ["corrupt", "{w}/yolo", "-o", "{w}/y"], "a folder", setup=_label_folder),
    Case("YOLO label file a loop of links", ["corrupt", "{w}/yolo", "-o", "{w}/y"], "a loop of links", setup=_loop("yolo/labels/train/a.txt")),
    Case(
        "report: a record copied inside records/",
        ["report", "{w}/res"],
        "(the file's name)",
        setup=_study(STORED, _record(), copy_as="copy.json"),
    ),
    Case(
        "report: a record whose cell.eta was edited",
        ["report", "{w}/res"],
        "eta 0.0 (grid: 0.3)",
        setup=_study(STORED, _record(cell__eta=0.0)),
    ),
    Case(
        "status: a record copied inside records/",
        ["status", "{w}/res"],
        "(the file's name)",
        setup=_study(STORED, _record(), copy_as="copy.json"),
    ),
    Case("corrupt --reproduce oamil --noise-model", ["corrupt", str(OAMIL_COCO), "--reproduce", "oamil", "--eta", "0.3", "--noise-model", "gaussian", "-o", "{w}/r.json"], "--noise-model", code=2),
    Case("corrupt --reproduce oamil --boundary", ["corrupt", str(OAMIL_COCO), "--reproduce", "oamil", "--eta", "0.3", "--boundary", "shift", "-o", "{w}/r.json"], "--boundary", code=2),
    Case("corrupt --reproduce oamil --missing", ["corrupt", str(OAMIL_COCO), "--reproduce", "oamil", "--eta", "0.3", "--missing", "0.3", "-o", "{w}/r.json"], "--missing"),
    Case("report: benchmark.json etas 'abc'", ["report", "{w}/res"], "etas", setup=_study(_stored(etas=["abc"]))),
    Case("report: benchmark.json unknown loss", ["report", "{w}/res"], "losses[0]", setup=_study(_stored(losses__0__name="no-such-loss"))),
    Case("report: benchmark.json epochs -5", ["report", "{w}/res"], "schedule.epochs", setup=_study(_stored(schedule__epochs=-5))),
    Case("status: benchmark.json epochs -5", ["status", "{w}/res"], "schedule.epochs", setup=_study(_stored(schedule__epochs=-5))),
    Case(
        "COCO undefined category_id",
        [*CORRUPT, "-o", "{w}/o.json"],
        "category_id of a listed category",
        setup=_edit_json("a.json", lambda d: _set(d, "annotations.0.category_id", 999)),
    ),
    Case(
        "COCO duplicate category ids",
        [*CORRUPT, "-o", "{w}/o.json"],
        "unique category ids",
        setup=_edit_json("a.json", lambda d: _set(d, "categories.1.id", 1)),
    ),
    Case(
        "COCO without categories",
        [*CORRUPT, "-o", "{w}/o.json"],
        "a list 'categories'",
        setup=_edit_json("a.json", lambda d: d.pop("categories")),
    ),
    Case(
        "COCO bbox booleans",
        [*CORRUPT, "-o", "{w}/o.json"],
        "annotation id 101",
        setup=_edit_json("a.json", lambda d: _set(d, "annotations.0.bbox", [True, True, True, True])),
    ),
    Case(
        "COCO bbox strings",
        [*CORRUPT, "-o", "{w}/o.json"],
        "annotation id 101",
        setup=_edit_json("a.json", lambda d: _set(d, "annotations.0.bbox", ["1", "2", "3", "4"])),
    ),
    Case(
        "run-benchmark unknown detector_kwargs",
        RUN,
        "unknown 'num_conv'",
        setup=_config("c.yaml", detectors__0__options={"fpn_channels": 32, "detector_kwargs": {"num_conv": 2}}),
    ),
    # -- 4. preflight misses
    Case("run-benchmark weights file missing", RUN, "detectors[0].weights", setup=_config("c.yaml", detectors__0__weights="{w}/nope.pt")),
    Case("run-benchmark seed beyond int64", RUN, "seeds[0]", setup=_config("c.yaml", seeds=[2**70])),
    Case("run-benchmark noise ratio 2", RUN, "noise.ratio", setup=_config("c.yaml", noise={"ratio": 2})),
    # -- 5. files the user owns replaced
    Case("corrupt -o the dataset's clean val file", ["corrupt", "{w}/ds/instances_train.json", "-o", "{w}/ds/instances_val.json"], "noisybox did not write"),
    Case("noise-sweep --plot a dataset image", ["noise-sweep", "{w}/ds/instances_train.json", "--plot", "{w}/ds/images/train/000001.png", "-q"], "did not draw"),
    Case("iou-hist -o a JSON file", ["iou-hist", A, "--eta", "0.1", "-o", "{w}/ds/instances_val.json"], "Expected a .png file name"),
    Case("iou-hist -o JSON named .png", ["iou-hist", A, "--eta", "0.1", "-o", "{w}/h.png"], "a JSON file", setup=_write("h.png", b'{"images": []}')),
    Case("corrupt --reproduce oamil: an existing pickle beside -o", ["corrupt", str(OAMIL_COCO), "--reproduce", "oamil", "--eta", "0.3", "-o", "{w}/r/noisy.json"], "coco2017_train_noise-r0.3.pkl", setup=_pickle_beside),
    Case("train --out the data folder", [*TRAIN[:3], "--out", "{w}/ds", "--workers", "0"], "--out to be a folder of its own"),
    # -- 7. the small ones
    Case("corrupt /dev/zero --format coco", ["corrupt", "/dev/zero", "--format", "coco", "-o", "{w}/o.json"], "the special file /dev/zero"),
    Case("train --seed 99999999999999999999999", [*TRAIN, "--seed", "99999999999999999999999"], "--seed", code=2),
    Case("noise-sweep --levels 0.1,,0.2", ["noise-sweep", A, "--levels", "0.1,,0.2"], "--levels", code=2),
    Case("corrupt --plot b.txt", [*CORRUPT, "-o", "{w}/o.json", "--plot", "{w}/b.txt"], "Expected a .png file name"),
    Case("preview -o x.bogus", [*PREVIEW, "-o", "{w}/x.bogus"], "Expected a .png file name"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_issue_31_case_is_refused_with_one_line_and_nothing_written(
    case: Case,
    workspace: Path,  # noqa: F811
) -> None:
    _harness(case, workspace)


# -- 1 and 3: ids are kept exactly, whatever their size


def test_an_annotation_id_beyond_64_bits_is_written_back_exactly(tmp_path: Path) -> None:
    doc = json.loads((DATA / "coco" / "instances_tiny.json").read_text())
    doc["annotations"][0]["id"] = BIG
    (tmp_path / "a.json").write_text(json.dumps(doc))
    result = CliRunner().invoke(
        main, ["corrupt", str(tmp_path / "a.json"), "--eta", "0.2", "-o", str(tmp_path / "o.json")]
    )
    assert result.exit_code == 0, result.output
    written = json.loads((tmp_path / "o.json").read_text())
    assert [a["id"] for a in written["annotations"]][0] == BIG
    assert f'"id":{BIG}' in (tmp_path / "o.json").read_text()


# -- 3: non-finite training is a failure


def test_weights_that_become_non_finite_stop_training_and_exit_1(tmp_path: Path, shapes) -> None:  # noqa: F811
    out = tmp_path / "run"
    args = ["train", "--data", str(shapes), "--out", str(out), "--workers", "0", "--epochs", "3"]
    args += ["--optimizer", "sgd", "--lr", "1e38", "--image-size", "64", "--fpn-channels", "32"]
    args += ["--batch-size", "2", "--backbone", "resnet18_025", "-q"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1].startswith("Error: Expected finite weights")
    saved = json.loads((out / "result.json").read_text())
    assert saved["collapsed"] and "non-finite" in saved["collapsed"][0]
    assert saved["history"][-1]["nonfinite_weights"] is True
    assert len(saved["history"]) < 3 and saved["metrics"] is None


def test_a_benchmark_counts_a_non_finite_run_as_collapsed() -> None:
    from noisybox.study.collapse_flags import detect_collapse
    from noisybox.study.loading import CollapseConfig

    history = [{"epoch": 1, "box_loss": 1.0}, {"epoch": 2, "nonfinite_weights": True}]
    assert collapse_reasons(history)[0].startswith("weights became non-finite in epoch 2")
    assert detect_collapse({"history": history, "metrics": {}}, None, CollapseConfig())


# -- 3: one NaN pair does not poison Wise-IoU v3


def test_wise_iou_v3_running_mean_ignores_a_non_finite_pair() -> None:
    from noisybox.losses import get_loss

    loss = get_loss("wiou-v3")
    loss.train()
    pred = torch.tensor([[0.0, 0.0, 4.0, 4.0], [float("nan"), 0.0, 4.0, 4.0]])
    target = torch.tensor([[1.0, 1.0, 3.0, 3.0], [1.0, 1.0, 3.0, 3.0]])
    first = loss(pred, target)
    assert torch.isfinite(first[0]) and torch.isnan(first[1])
    assert torch.isfinite(loss.running_mean)
    assert torch.isfinite(loss(pred[:1], target[:1])).all()


# -- 7: a full disk names the file


def test_no_space_left_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fdopen = os.fdopen

    class Full(io.BytesIO):
        """A temporary file on a full disk: every write fails."""

        def __init__(self, fd: int) -> None:
            super().__init__()
            real_fdopen(fd, "wb").close()

        def write(self, data: object) -> int:  # type: ignore[override]
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fdopen", lambda fd, *args, **kw: Full(fd))
    out = tmp_path / "o.json"
    shutil.copyfile(DATA / "coco" / "instances_tiny.json", tmp_path / "a.json")
    before = _snapshot(tmp_path)
    result = CliRunner().invoke(
        main, ["corrupt", str(tmp_path / "a.json"), "--eta", "0.2", "-o", str(out)]
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith("Error: ") and str(out) in result.stderr
    assert "No space left on device" in result.stderr
    assert _snapshot(tmp_path) == before


# -- 2: the library refuses a size before allocating


def test_library_bounds_refuse_before_allocating(tmp_path: Path) -> None:
    from noisybox.data import make_shapes_dataset
    from noisybox.errors import NoisyboxError

    with pytest.raises(NoisyboxError, match=r"image_size <= 4096 .*128 MiB"):
        make_shapes_dataset(tmp_path / "ds", num_train=1, num_val=1, image_size=100_000)
    with pytest.raises(NoisyboxError, match=r"num_train <= 100000"):
        make_shapes_dataset(tmp_path / "ds", num_train=10**9, num_val=1)
    assert not (tmp_path / "ds").exists()
    yaml.safe_dump({})  # the study YAML bounds are the table's cases
