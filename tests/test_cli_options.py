"""What every command shares: ``--json`` (one JSON document on stdout, nothing else),
``-q/--quiet``, ``--debug``; the deprecated option and keyword aliases; progress that is a
few lines, not a line per step, when stderr is not a terminal.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from noisybox import _progress
from noisybox.cli import main
from noisybox.data import make_shapes_dataset

DATA = Path(__file__).parent / "data"
COCO_FILE = DATA / "coco" / "instances_tiny.json"
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
COMMANDS = main.list_commands(None)  # type: ignore[arg-type]

TINY = {
    "name": "tiny",
    "dataset": {"builtin": "shapes", "num_train": 4, "num_val": 2, "image_size": 64},
    "detectors": [{"name": "fcos", "backbone": "resnet18_025", "options": {"fpn_channels": 32}}],
    "losses": ["iou"],
    "etas": [0.3],
    "seeds": [0],
    "schedule": {"epochs": 2, "batch_size": 2, "image_size": 64, "workers": 0},
    "device": "cpu",
}


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return make_shapes_dataset(
        tmp_path_factory.mktemp("shapes"), num_train=4, num_val=2, image_size=64, seed=1
    )


def _invoke(*args: str) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def _json(result: Any) -> Any:
    """The one JSON document on stdout (``json.loads`` refuses anything around it)."""
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------------ the shared options


def test_the_commands_are_the_expected_ones() -> None:
    assert set(COMMANDS) == {
        "calibrate", "corrupt", "evaluate", "iou", "iou-hist", "list-losses", "list-presets",
        "make-dataset", "noise-sweep", "plot-loss", "preview", "protocol", "report",
        "run-benchmark", "status", "train",
    }  # fmt: skip


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_takes_json_quiet_and_debug(name: str) -> None:
    command = main.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None
    opts = {opt for param in command.params for opt in param.opts}
    assert {"--json", "-q", "--quiet", "--debug"} <= opts, name
    assert "--json" in _invoke(name, "--help").stdout


def test_json_of_the_noise_commands(tmp_path: Path, shapes: Any) -> None:
    out = tmp_path / "n.json"
    doc = _json(_invoke("corrupt", COCO_FILE, "-o", out, "--eta", "0.2", "--json"))
    assert doc["output"] == str(out) and doc["model"] == "uniform" and "iou" in doc
    doc = _json(_invoke("iou", COCO_FILE, out, "--json", "-q"))
    assert doc["num_boxes"] > 0
    doc = _json(_invoke("iou-hist", COCO_FILE, out, "-o", tmp_path / "h.png", "--json"))
    assert doc["output"] == str(tmp_path / "h.png") and len(doc["distributions"]) == 1
    val = shapes.val_annotations
    doc = _json(_invoke("preview", val, "--eta", "0.2", "-o", tmp_path / "p.png", "--json"))
    assert (
        doc
        == {
            "output": str(tmp_path / "p.png"),
            "num_images": 2,
            "title": doc["title"],
        }
        and "eta=0.2" in doc["title"]
    )


def test_json_of_the_small_commands(tmp_path: Path) -> None:
    doc = _json(_invoke("plot-loss", "-o", tmp_path / "f.png", "--alpha", "3", "--json"))
    assert doc == {"output": str(tmp_path / "f.png"), "alphas": [3.0], "losses": [],
                   "box_cox": False}  # fmt: skip
    assert (tmp_path / "f.png").is_file()
    assert "alpha-iou" in _json(_invoke("list-losses", "--json"))
    assert "quick" in _json(_invoke("list-presets", "--json"))
    doc = _json(
        _invoke(
            "make-dataset",
            "shapes",
            tmp_path / "ds",
            "--num-train",
            "1",
            "--num-val",
            "1",
            "--image-size",
            "32",
            "--json",
        )  # fmt: skip
    )
    assert doc["num_train"] == 1 and Path(doc["train_annotations"]).is_file()


def test_quiet_changes_nothing_but_progress(tmp_path: Path) -> None:
    args = ["make-dataset", "shapes", tmp_path / "ds", "--num-train", "1", "--num-val", "1",
            "--image-size", "32"]  # fmt: skip
    loud = _invoke(*args)
    assert loud.exit_code == 0 and "written in" in loud.stderr
    quiet = _invoke(*args[:2], tmp_path / "ds2", *args[3:], "-q")
    assert quiet.exit_code == 0 and "written in" in quiet.stderr
    assert quiet.stdout == loud.stdout.replace(str(tmp_path / "ds"), str(tmp_path / "ds2"))


def test_report_json_lists_what_it_wrote(tmp_path: Path) -> None:
    study = tmp_path / "paper-mini"
    shutil.copytree(RESULTS / "paper-mini" / "records", study / "records")
    shutil.copy(RESULTS / "paper-mini" / "benchmark.json", study / "benchmark.json")
    result = _invoke("report", study, "--no-plots", "--json")
    doc = _json(result)
    assert set(doc) == {"out", "report", "files", "collapsed"}
    assert str(study / "report" / "report.md") in doc["files"]
    assert all(Path(p).is_file() for p in doc["files"])
    assert "written:" not in result.stderr  # the human line is replaced by the JSON


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["iou", COCO_FILE, "{w}/other.json"], "NoisyboxError"),
        (["plot-loss", "-o", "/dev/new.png"], "NoisyboxError"),
        (["report", "{w}"], "NoisyboxError"),
        (["run-benchmark", "{w}/missing.yaml", "--out", "{w}/res", "-q"], "ConfigError"),
    ],
)
def test_debug_shows_the_error_instead_of_one_line(
    args: list[Any], error: str, tmp_path: Path
) -> None:
    doc = json.loads(COCO_FILE.read_text())
    doc["images"][0]["width"] += 1
    (tmp_path / "other.json").write_text(json.dumps(doc))
    args = [str(a).format(w=tmp_path) for a in args]
    plain = _invoke(*args)
    assert plain.exit_code == 1 and plain.stderr.startswith("Error:"), plain.output
    assert len(plain.stderr.splitlines()) == 1
    debug = _invoke(*args, "--debug")
    assert type(debug.exception).__name__ == error, debug.output


# ------------------------------------------------------------------ the renamed options


def test_corrupt_model_is_a_deprecated_alias_of_noise_model(tmp_path: Path) -> None:
    new = _invoke("corrupt", COCO_FILE, "-o", tmp_path / "a.json", "--noise-model", "gaussian")
    old = _invoke("corrupt", COCO_FILE, "-o", tmp_path / "b.json", "--model", "gaussian")
    assert new.exit_code == old.exit_code == 0, old.output
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert json.loads((tmp_path / "a.json").read_text())["info"]["noisybox"]["model"] == (
        "gaussian"
    )
    assert new.stderr == ""
    assert old.stderr == (
        "warning: --model is deprecated and will be removed in the next release; "
        "use --noise-model\n"
    )
    assert old.stdout == new.stdout.replace("a.json", "b.json")
    both = _invoke("corrupt", COCO_FILE, "-o", tmp_path / "c.json", "--model", "uniform",
                   "--noise-model", "gaussian")  # fmt: skip
    assert both.exit_code == 2 and "not both" in both.stderr
    assert not (tmp_path / "c.json").exists()
    assert "--model" not in _invoke("corrupt", "--help").stdout.replace("--noise-model", "")


@pytest.mark.parametrize("old", [False, True])
def test_train_test_options_and_their_val_aliases(
    old: bool, shapes: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import noisybox.engine

    seen: dict[str, Any] = {}

    def fake_train(cfg: Any, progress: bool = True) -> Any:
        seen["cfg"] = cfg
        return SimpleNamespace(collapsed=[], to_dict=lambda: {"config": cfg.to_dict()})

    monkeypatch.setattr(noisybox.engine, "train", fake_train)
    prefix = "--val" if old else "--test"
    root = Path(shapes.train_annotations).parent
    result = _invoke(
        "train", "--train-annotations", shapes.train_annotations,
        f"{prefix}-annotations", shapes.val_annotations, f"{prefix}-images", root,
        "--out", tmp_path / "run", "--json",
    )  # fmt: skip
    config = _json(result)["config"]
    assert config["test_annotations"] == str(shapes.val_annotations)
    assert config["test_images"] == str(root) and "val_annotations" not in config
    warned = [line for line in result.stderr.splitlines() if "deprecated" in line]
    assert len(warned) == (2 if old else 0), result.stderr
    both = _invoke("train", "--data", root, "--val-images", root, "--test-images", root)
    assert both.exit_code == 2 and "not both" in both.stderr


def test_train_config_file_with_val_keys_still_loads(
    shapes: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import noisybox.engine

    def fake_train(cfg: Any, progress: bool = True) -> Any:
        return SimpleNamespace(collapsed=[], to_dict=lambda: {"config": cfg.to_dict()})

    monkeypatch.setattr(noisybox.engine, "train", fake_train)
    path = tmp_path / "old.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "train_annotations": str(shapes.train_annotations),
                "val_annotations": str(shapes.val_annotations),
                "noise": {"eta": 0.1, "model": "uniform"},
            }
        )
    )
    result = _invoke("train", "--config", path, "--out", tmp_path / "run", "--json")
    config = _json(result)["config"]
    assert config["test_annotations"] == str(shapes.val_annotations)
    assert config["noise"] == {"eta": 0.1, "noise_model": "uniform"}
    assert result.stderr.splitlines() == [
        f"warning: {path}: training config: 'val_annotations' is deprecated and will be "
        "removed in the next release; use 'test_annotations'",
        f"warning: {path}: training config noise: 'model' is deprecated and will be "
        "removed in the next release; use 'noise_model'",
    ]


# ------------------------------------------------------------------ the renamed keywords


def test_noise_keyword_model_is_a_deprecated_alias() -> None:
    from noisybox.noise import BoxNoise, perturb_boxes

    boxes = np.array([[10.0, 10.0, 50.0, 40.0]])
    sizes = np.array([[100.0, 80.0]])
    new = perturb_boxes(boxes, sizes, eta=0.3, noise_model="gaussian", rng=0)
    with pytest.warns(FutureWarning, match="'model' is deprecated.*'noise_model'"):
        old = perturb_boxes(boxes, sizes, eta=0.3, model="gaussian", rng=0)
    np.testing.assert_array_equal(old, new)
    with pytest.raises(TypeError, match="both"):
        perturb_boxes(boxes, sizes, model="uniform", noise_model="uniform")
    with pytest.warns(FutureWarning, match="noise_model"):
        transform = BoxNoise(model="gaussian")
    assert transform.noise_model == "gaussian"
    assert transform.get_transform_init_args()["noise_model"] == "gaussian"


def test_image_root_keyword_images_is_a_deprecated_alias(tmp_path: Path) -> None:
    from noisybox.engine.evaluation import evaluate_checkpoint
    from noisybox.viz import preview_annotations

    ds = make_shapes_dataset(tmp_path / "d", num_train=1, num_val=2, image_size=64)
    new = preview_annotations(ds.val_annotations, image_root=ds.image_root, num_images=1)
    with pytest.warns(FutureWarning, match="'images' is deprecated.*'image_root'"):
        old = preview_annotations(ds.val_annotations, images=ds.image_root, num_images=1)
    assert old.get_suptitle() == new.get_suptitle()
    with pytest.raises(TypeError, match="both"):
        preview_annotations(ds.val_annotations, images=ds.image_root, image_root=ds.image_root)
    with pytest.raises(TypeError, match="both"):  # refused before the checkpoint is read
        evaluate_checkpoint(tmp_path / "missing.pt", ds.val_annotations, image_root="a", images="b")


def test_library_calls_itself_with_the_new_keywords(tmp_path: Path) -> None:
    from noisybox.corrupt import corrupt_annotations, perturb_annotations
    from noisybox.formats import read_annotations
    from noisybox.viz import iou_histogram, preview_annotations

    ds = make_shapes_dataset(tmp_path / "d", num_train=1, num_val=2, image_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # no deprecated alias used inside
        perturb_annotations(read_annotations(ds.val_annotations), eta=0.2, noise_model="gaussian")
        corrupt_annotations(ds.val_annotations, tmp_path / "n.json", eta=0.2, seed=1)
        iou_histogram(ds.val_annotations, [tmp_path / "n.json"], etas=[0.1])
        preview_annotations(ds.val_annotations, eta=0.2, num_images=1)
        preview_annotations(ds.val_annotations, tmp_path / "n.json", num_images=1)


def test_train_config_val_keys_still_load() -> None:
    from noisybox.engine import TrainConfig
    from noisybox.engine.config import upgrade_config
    from noisybox.errors import NoisyboxError

    old = {"train_annotations": "t.json", "val_annotations": "v.json", "val_format": "coco",
           "noise": {"eta": 0.3, "model": "uniform"}}  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = TrainConfig.from_dict(old)
    assert [str(w.message).split(":")[1].split()[0] for w in caught] == [
        "'val_annotations'",
        "'val_format'",
        "'model'",
    ]
    assert {w.category for w in caught} == {FutureWarning}
    assert (cfg.test_annotations, cfg.test_format) == ("v.json", "coco")
    assert cfg.noise == {"eta": 0.3, "noise_model": "uniform"}
    assert "val_annotations" not in cfg.to_dict()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stored config (checkpoint, record) loads silently
        assert TrainConfig.from_dict(upgrade_config(old)) == cfg
    with pytest.warns(FutureWarning):
        assert TrainConfig("t.json", val_images="img").test_images == "img"
    with pytest.warns(FutureWarning):
        assert cfg.val_annotations == "v.json"
    with pytest.raises(NoisyboxError, match="both"):
        TrainConfig.from_dict({**old, "test_annotations": "w.json"})


def test_benchmark_schedule_with_val_format_still_loads(tmp_path: Path) -> None:
    from noisybox.study.grid import expand_grid
    from noisybox.study.loading import load_config
    from noisybox.study.runner import build_train_config

    old = {**TINY, "schedule": {**TINY["schedule"], "val_format": "coco"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        cfg = load_config(old)
    data = SimpleNamespace(
        train_images="img", test_annotations="t.json", test_images="img", format="coco"
    )
    cell = expand_grid(cfg)[0]
    train_cfg = build_train_config(cfg, cell, data, tmp_path / "n.json", tmp_path)  # type: ignore[arg-type]
    assert train_cfg.test_format == "coco" and train_cfg.test_annotations == "t.json"


def test_committed_records_still_load_as_train_configs() -> None:
    from noisybox.engine import TrainConfig
    from noisybox.engine.config import upgrade_config

    records = sorted((RESULTS / "paper-cpu" / "records").glob("*.json"))[:3]
    assert records
    for path in records:
        stored = json.loads(path.read_text())["train_config"]
        assert "val_annotations" in stored  # written before the rename, and left so
        cfg = TrainConfig.from_dict(upgrade_config(stored))
        assert cfg.test_annotations == stored["val_annotations"]


# ------------------------------------------------------------------ progress off a terminal


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_line_progress_prints_every_interval_and_at_close(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    clock = _Clock()
    monkeypatch.setattr(_progress.time, "monotonic", clock)
    out = io.StringIO()
    bar = _progress.LineProgress(1000, "epoch 1/1", unit="step", interval=10, file=out)
    for _ in range(1000):  # 1000 steps over 95 s: a line every 10 s, then the last one
        clock.now += 0.095
        bar.update(1)
    bar.close()
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("epoch 1/1: 1000/1000 step")
    grid = io.StringIO()
    with _progress.LineProgress(3, "grid", unit="cell", interval=0, file=grid) as cells:
        for _ in range(3):
            cells.update(1)
    assert len(grid.getvalue().splitlines()) == 3  # one per cell, none repeated at close


def test_progress_is_tqdm_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(_progress.sys, "stderr", io.StringIO())
    assert isinstance(_progress.progress_bar(5, "x"), _progress.LineProgress)
    monkeypatch.setattr(_progress.sys, "stderr", Terminal())
    from tqdm import tqdm

    assert isinstance(_progress.progress_bar(5, "x"), tqdm)


@pytest.mark.slow
def test_run_benchmark_json_and_few_progress_lines_off_a_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_progress, "LINE_INTERVAL_S", 3600.0)  # lines per epoch, not per time
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    args = ["run-benchmark", tmp_path / "tiny.yaml", "--out", tmp_path / "res", "--jobs", "1"]
    result = _invoke(*args, "--json")  # CliRunner's stderr is not a terminal
    doc = _json(result)
    assert doc["cells"] == {"total": 1, "trained": 1, "skipped": 0, "failed": 0,
                            "collapsed": doc["cells"]["collapsed"]}  # fmt: skip
    assert doc["out"] == str(tmp_path / "res") and doc["failed"] == []
    assert str(tmp_path / "res" / "report" / "report.md") in doc["files"]
    lines = result.stderr.splitlines()
    # per epoch of the cell, the cell itself, the summary line: nothing per step
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2 and epochs[-1].startswith("epoch 2/2: 2/2 step"), result.stderr
    assert any(line.startswith("grid: 1/1 cell") for line in lines), result.stderr
    assert len(lines) <= 10, result.stderr  # + the collapse warnings, if the cell collapsed
    assert "\r" not in result.stderr
    again = _invoke(*args, "-q", "--json")  # resumes: nothing to train; -q: no progress
    assert _json(again)["cells"]["skipped"] == 1
    assert not any(line.startswith(("epoch", "grid")) for line in again.stderr.splitlines())
    assert "0 cells trained, 1 already done" in again.stderr  # the summary stays
