"""The Ultralytics plug: the box term against Ultralytics' own loss, training, no network.

Needs the optional extra (``pip install "noisybox[ultralytics]"``); skipped without it. The
repository's ``conftest.py`` points Ultralytics at a temporary config folder, offline,
before anything imports it.
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

if importlib.util.find_spec("ultralytics") is None:
    pytest.skip("needs the ultralytics extra", allow_module_level=True)

from ultralytics.cfg import get_cfg
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils import DEFAULT_CFG
from ultralytics.utils.loss import v8DetectionLoss

from noisybox.data import make_shapes_dataset
from noisybox.detectors.ultralytics import (
    PluggedBboxLoss,
    PluggedDetectionLoss,
    PluggedDetectionModel,
    plugged_trainer,
)
from noisybox.formats import read_annotations
from noisybox.formats.yolo_export import export_yolo_dataset
from noisybox.losses import alpha_iou_loss, get_loss, resolve_loss_spec
from noisybox.settings import LossSpec, alpha_at_step

SIZE = 64


@pytest.fixture(scope="module")
def yolo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shapes data (8 train, 4 val images at 64 px) exported to YOLO format."""
    root = tmp_path_factory.mktemp("shapes")
    ds = make_shapes_dataset(root / "coco", num_train=8, num_val=4, image_size=SIZE, seed=3)
    train = read_annotations(ds.train_annotations)
    val = read_annotations(ds.val_annotations)
    return export_yolo_dataset(
        {"train": (train, ds.image_root), "val": (val, ds.image_root)}, root / "yolo"
    )


def _batch(data_yaml: Path) -> dict[str, torch.Tensor]:
    """The training images and their labels as Ultralytics' collate gives them."""
    root = data_yaml.parent
    images, idx, cls, boxes = [], [], [], []
    for i, path in enumerate(sorted((root / "images" / "train").iterdir())):
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
        images.append(torch.from_numpy(pixels).permute(2, 0, 1))
        label = root / "labels" / "train" / f"{path.stem}.txt"
        rows = np.loadtxt(label, ndmin=2, dtype=np.float32)
        idx += [i] * len(rows)
        cls.append(rows[:, :1])
        boxes.append(rows[:, 1:])
    return {
        "img": torch.stack(images),
        "batch_idx": torch.tensor(idx, dtype=torch.float32),
        "cls": torch.from_numpy(np.concatenate(cls)),
        "bboxes": torch.from_numpy(np.concatenate(boxes)),
    }


def _model() -> Any:
    torch.manual_seed(0)
    model = DetectionModel("yolov8n.yaml", nc=5, verbose=False)
    model.args = get_cfg(DEFAULT_CFG)
    return model.train()


def test_ciou_at_alpha_1_is_ultralytics_loss(yolo_data: Path) -> None:
    model = _model()
    batch = _batch(yolo_data)
    preds = model(batch["img"])
    stock, stock_items = v8DetectionLoss(model)(preds, batch)
    plugged = PluggedDetectionLoss(model, get_loss("ciou"))
    plugged.bbox_loss.keep_matched = True
    ours, our_items = plugged(preds, batch)
    assert plugged.bbox_loss.last_matched[0].shape[0] > 10  # boxes were matched
    assert stock[0].item() > 0
    torch.testing.assert_close(ours, stock, rtol=0, atol=1e-6)
    assert our_items.keys() == stock_items.keys()
    # the gradient of the box term reaches the same head parameters
    ours[0].backward(retain_graph=True)
    assert model.model[-1].cv2[0][-1].weight.grad.abs().sum() > 0


def test_alpha_3_is_alpha_iou_loss_on_the_matched_boxes(yolo_data: Path) -> None:
    model = _model()
    batch = _batch(yolo_data)
    preds = model(batch["img"])
    stock, _ = v8DetectionLoss(model)(preds, batch)
    plugged = PluggedDetectionLoss(model, get_loss("ciou", alpha=3.0))
    plugged.bbox_loss.keep_matched = True
    ours, _ = plugged(preds, batch)
    pred, target, weight = plugged.bbox_loss.last_matched
    expected = (alpha_iou_loss(pred, target, variant="ciou", alpha=3.0) * weight).sum()
    expected = expected / weight.sum().clamp(min=1) * model.args.box * len(batch["img"])
    assert abs(ours[0].item() - stock[0].item()) > 1e-3  # the power changed the box term
    torch.testing.assert_close(ours[0], expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ours[1:], stock[1:], rtol=0, atol=1e-6)  # cls, dfl untouched


def test_every_registry_loss_plugs_in(yolo_data: Path) -> None:
    """Issue 18's zoo in Ultralytics: each loss gives a finite box term and gradient."""
    from noisybox.losses import list_losses

    model = _model()
    batch = _batch(yolo_data)
    preds = model(batch["img"])
    boxes = preds["boxes"]
    for name in list_losses():
        criterion = PluggedDetectionLoss(model, get_loss(name))
        loss, _ = criterion(preds, batch)
        (grad,) = torch.autograd.grad(loss[0], boxes, retain_graph=True)
        assert torch.isfinite(loss).all() and loss[0] > 0, name
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_plugged_model_builds_its_criterion_and_rejects_bad_losses() -> None:
    model = PluggedDetectionModel("yolov8n.yaml", loss="alpha-giou", alpha=2.0, nc=5, verbose=False)
    model.args = get_cfg(DEFAULT_CFG)
    criterion = model.init_criterion()
    assert isinstance(criterion.bbox_loss, PluggedBboxLoss)
    assert criterion.bbox_loss.box_loss.alpha == 2.0
    assert criterion.bbox_loss.box_loss.variant == "giou"
    with pytest.raises(ValueError, match="Expected a loss name"):
        PluggedDetectionModel("yolov8n.yaml", loss="no-such-iou", nc=5, verbose=False)
    with pytest.raises(ValueError, match="alpha_warmup"):
        plugged_trainer("ciou", alpha_warmup=1.5)


def test_the_plug_takes_a_loss_spec() -> None:
    from types import SimpleNamespace

    from noisybox.detectors.ultralytics import _batch_start

    spec = LossSpec("alpha-giou", None, 0.5, {"eps": 1e-6})
    trainer = plugged_trainer(spec)
    assert (
        trainer.loss_spec
        == spec
        == plugged_trainer("alpha-giou", alpha_warmup=0.5, eps=1e-6).loss_spec
    )
    assert (trainer.loss_name, trainer.loss_alpha, trainer.loss_alpha_warmup) == (
        "alpha-giou",
        None,
        0.5,
    )
    assert trainer.loss_kwargs == {"eps": 1e-6}
    with pytest.raises(ValueError, match="^Expected alpha inside the loss spec alpha-giou@"):
        plugged_trainer(LossSpec("alpha-giou", 2.0), alpha=3.0)
    model = PluggedDetectionModel("yolov8n.yaml", loss=LossSpec("giou", 2.0), nc=5, verbose=False)
    assert (model.box_loss_name, model.box_loss_alpha, model.box_loss_kwargs) == ("giou", 2.0, {})
    # the per-batch alpha is the spec's schedule, towards the registry's default alpha (3)
    fake = SimpleNamespace(
        target_alpha=3.0,
        resolved_loss=resolve_loss_spec(spec),
        train_loader=range(5),
        epochs=2,
        epoch=0,
        _batch_in_epoch=0,
        model=None,
        ema=None,
        box_alpha=None,
    )
    alphas = []
    for step in range(10):
        fake.epoch, fake._batch_in_epoch = divmod(step, 5)
        _batch_start(fake)  # type: ignore[arg-type]
        alphas.append(fake.box_alpha)
    assert alphas == [alpha_at_step(step, 10, 3.0, 0.5) for step in range(10)]


def test_predictions_are_scored_in_category_ids_and_pixels(tmp_path: Path) -> None:
    """Perfect Ultralytics-style results (class index, original-image xyxy) score mAP 1."""
    from types import SimpleNamespace

    from noisybox.formats.yolo_export import yolo_class_ids
    from noisybox.study.ultralytics_cell import _evaluate

    ds = make_shapes_dataset(tmp_path / "coco", num_train=1, num_val=6, image_size=SIZE, seed=5)
    test = read_annotations(ds.val_annotations)
    class_ids = yolo_class_ids({"test": test})
    class_ids = [*class_ids, 99]  # an unused extra class: indices must map through the list
    by_path = {
        str(ds.image_root / name): np.flatnonzero(test.box_image_index == i)
        for i, name in enumerate(test.file_names)
    }

    class Fake:
        def predict(self, paths: list[str], **kwargs: Any) -> list[Any]:
            assert kwargs["max_det"] == 100 and kwargs["conf"] == 0.001
            out = []
            for path in paths:
                rows = by_path[path]
                cls = [class_ids.index(int(c)) for c in test.categories[rows]]
                boxes = SimpleNamespace(
                    xyxy=torch.tensor(test.boxes[rows], dtype=torch.float32),
                    cls=torch.tensor(cls, dtype=torch.float32),
                    conf=torch.full((len(rows),), 0.9),
                )
                out.append(SimpleNamespace(boxes=boxes))
            return out

    metrics = _evaluate(Fake(), test, ds.image_root, class_ids, {"imgsz": SIZE})
    assert metrics["map"] == pytest.approx(1.0) and metrics["ap95"] == pytest.approx(1.0)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Every attempt to resolve or connect raises, and is recorded for the test to check."""
    attempts: list[tuple[Any, ...]] = []

    def deny(*args: Any, **kwargs: Any) -> None:
        attempts.append(args)
        raise OSError("network access attempted during a noisybox test")

    monkeypatch.setattr(socket.socket, "connect", deny)
    monkeypatch.setattr(socket.socket, "connect_ex", deny)
    monkeypatch.setattr(socket, "create_connection", deny)
    monkeypatch.setattr(socket, "getaddrinfo", deny)
    return attempts


@pytest.mark.slow
def test_readme_example_trains_offline(
    yolo_data: Path, tmp_path: Path, no_network: list[tuple[Any, ...]]
) -> None:
    from ultralytics import YOLO

    # the example of docs/guides/ultralytics.md, with a CPU-sized schedule
    trainer = plugged_trainer("alpha-ciou", alpha=3.0, alpha_warmup=0.5)
    model = YOLO("yolov8n.yaml")
    model.train(
        data=str(yolo_data),
        trainer=trainer,
        epochs=2,
        imgsz=SIZE,
        batch=4,
        device="cpu",
        workers=0,
        plots=False,
        amp=False,
        val=False,
        project=str(tmp_path),
        name="run",
        verbose=False,
    )
    run = model.trainer
    assert run.box_alpha == 3.0  # the ramp reached its target
    assert len(run.fg_iou_history) == 2 and all(0 <= v <= 1 for v in run.fg_iou_history)
    assert all(np.isfinite(float(v)) for v in run.tloss.values())
    assert (tmp_path / "run" / "weights" / "last.pt").is_file()
    assert no_network == []


def test_ultralytics_is_configured_offline() -> None:
    from ultralytics.utils import ONLINE, SETTINGS, USER_CONFIG_DIR

    assert not ONLINE
    assert SETTINGS["sync"] is False
    assert (Path(USER_CONFIG_DIR) / "Arial.ttf").is_file()  # no font download for plots
    # what Ultralytics' import changes elsewhere is undone: PIL's own open (an unreadable
    # file raises PIL's error, no HEIF plugin is installed), numpy's print options
    assert Image.open.__module__ == "PIL.Image"
    assert np.get_printoptions()["formatter"] is None


@pytest.mark.slow
def test_benchmark_cell_of_an_ultralytics_detector(
    tmp_path: Path, no_network: list[tuple[Any, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    from noisybox.benchmark import load_config, run_benchmark
    from noisybox.engine.evaluation import METRIC_NAMES
    from noisybox.report.writer import write_report

    cfg = load_config(
        {
            "dataset": {"builtin": "shapes", "num_train": 8, "num_val": 4, "image_size": SIZE},
            "detectors": [{"name": "yolov8n", "options": {"nbs": 4}}],
            "losses": [{"name": "alpha-ciou", "alpha": 3, "alpha_warmup": 0.5}],
            "etas": [0.3],
            "seeds": [0],
            "schedule": {"epochs": 2, "batch_size": 4, "image_size": SIZE, "workers": 0},
            "device": "cpu",
        }
    )
    summary = run_benchmark(cfg, tmp_path / "out", progress=False)
    assert summary.failures == []
    out, err = capsys.readouterr()
    assert "Epoch" not in out + err and "it/s" not in out + err  # quiet: no Ultralytics bars
    (record,) = summary.records
    assert record["cell_id"] == "yolov8n-ultralytics__alpha-ciou@3~w0.5__eta0.3__s0"
    assert set(record["metrics"]) == set(METRIC_NAMES)  # the torchvision cells' metrics
    assert record["noise"]["eta"] == 0.3 and record["noise"]["mean_iou"] < 1
    history = record["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[-1]["alpha"] == 3.0 and 0 <= history[-1]["fg_iou"] <= 1
    assert {"box_loss", "cls_loss", "dfl_loss"} <= set(history[-1])
    assert record["versions"]["ultralytics"]
    assert record["train_config"]["seed"] == 0 and record["train_config"]["deterministic"]
    assert isinstance(record["collapsed"], bool)
    # the noisy boxes trained: the YOLO export holds the corrupted, not the clean, labels
    cell = tmp_path / "out" / "work" / "cells" / record["cell_id"] / "yolo"
    assert (cell / "data.yaml").is_file()
    assert "yolov8n (ultralytics)" in write_report(tmp_path / "out", plots=False).markdown
    assert no_network == []


@pytest.mark.slow
def test_an_ultralytics_cell_records_its_learning_curve(
    tmp_path: Path, no_network: list[tuple[Any, ...]], capsys: pytest.CaptureFixture[str]
) -> None:
    from ultralytics import YOLO

    from noisybox.benchmark import load_config, run_benchmark
    from noisybox.engine.curves import convergence
    from noisybox.engine.evaluation import METRIC_NAMES
    from noisybox.report.learning_curves import curves_frame
    from noisybox.study.ultralytics_cell import _EmaModel

    cfg = load_config(
        {
            "dataset": {"builtin": "shapes", "num_train": 8, "num_val": 4, "image_size": SIZE},
            "detectors": [{"name": "yolov8n", "options": {"nbs": 4}}],
            "losses": ["iou"],
            "etas": [0.0],
            "seeds": [0],
            "schedule": {
                "epochs": 2,
                "batch_size": 4,
                "image_size": SIZE,
                "workers": 0,
                "eval_every": 1,
            },
            "device": "cpu",
        }
    )
    summary = run_benchmark(cfg, tmp_path / "out", progress=True)
    assert summary.failures == []
    (record,) = summary.records
    first, last = record["history"]
    # epoch 1: the trainer's EMA scored in the callback; epoch 2: the final evaluation
    assert set(first["metrics"]) == set(METRIC_NAMES) and first["eval_time_s"] > 0
    assert last["metrics"] == record["metrics"] and last["eval_time_s"] > 0
    assert record["timing"]["eval_s"] == pytest.approx(first["eval_time_s"] + last["eval_time_s"])
    assert record["convergence"] == convergence(record["history"])
    assert record["convergence"]["final"] == record["metrics"]["map"]
    # what the curve plots read (two epochs from random init count as collapsed: drawn anyway)
    assert curves_frame([{**record, "collapsed": False}])["epoch"].tolist() == [1, 2]
    # stderr (not a terminal here): a line per epoch and one per evaluation
    err = capsys.readouterr().err
    cell_id = record["cell_id"]
    for epoch, entry in ((1, first), (2, last)):
        m = entry["metrics"]
        line = (
            f"{cell_id}: epoch {epoch}/2 eval: AP50 {100 * m['ap50']:.1f}  "
            f"mAP {100 * m['map']:.1f}  mAP75:95 {100 * m['map_75_95']:.1f}  ("
        )
        assert any(out.startswith(line) for out in err.splitlines())
        assert f"{cell_id}: epoch {epoch}/2: loss {entry['loss']:.3f}" in err
    # the curve's scoring path (the EMA in memory) predicts what the final one does
    cell_dir = tmp_path / "out" / "work" / "cells" / cell_id
    yolo = YOLO(str(cell_dir / "train" / "weights" / "last.pt"))
    images = sorted(str(p) for p in (cell_dir / "yolo" / "images" / "val").iterdir())
    trainer = type("Trainer", (), {"ema": type("EMA", (), {"ema": yolo.model})})()
    kwargs = {"imgsz": SIZE, "conf": 0.001, "iou": 0.7, "max_det": 100, "device": "cpu"}
    ours = _EmaModel(trainer).predict(images, verbose=False, **kwargs)
    theirs = yolo.predict(images, verbose=False, **kwargs)
    assert sum(len(r.boxes) for r in theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a.boxes.data, b.boxes.data)
    assert no_network == []


@pytest.mark.slow
def test_an_ultralytics_cell_log_is_plain_text(tmp_path: Path) -> None:
    """``run-benchmark > results 2> log``: no progress bar nor terminal escape in either.

    A fresh process, because Ultralytics binds its log handler and bars to the streams it
    finds at import, which pytest's capture does not see.
    """
    import json
    import os
    import subprocess
    import sys

    import yaml

    config = {
        "dataset": {"builtin": "shapes", "num_train": 8, "num_val": 4, "image_size": SIZE},
        "detectors": [{"name": "yolov8n", "options": {"nbs": 4}}],
        "losses": ["iou"],
        "etas": [0.0],
        "seeds": [0],
        "schedule": {"epochs": 2, "batch_size": 4, "image_size": SIZE, "workers": 0},
        "device": "cpu",
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "noisybox.cli", "run-benchmark", str(path), "--out",
         str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not any(c in done.stdout + done.stderr for c in "\x1b\r"), done.stderr
    assert "Ultralytics" not in done.stdout and "Epoch" not in done.stderr
    (record_path,) = (tmp_path / "out" / "records").glob("*.json")
    record = json.loads(record_path.read_text())
    cell_id = record["cell_id"]
    lines = done.stderr.splitlines()
    assert f"{cell_id}: epoch 1/2: loss {record['history'][0]['loss']:.3f}" in done.stderr
    assert sum(line.startswith(f"{cell_id}: epoch 2/2 eval: AP50 ") for line in lines) == 1


@pytest.mark.slow
def test_an_ultralytics_cell_reads_only_the_evaluation_set_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[tuple[Any, ...]]
) -> None:
    # a calibration passes the validation split: neither Ultralytics' own "val" split nor
    # the curve nor the final metrics may read a test image
    import noisybox.study.ultralytics_cell as cell_module
    from noisybox.benchmark import load_config
    from noisybox.study.datasets import ResolvedDataset
    from noisybox.study.grid import expand_grid

    ds = make_shapes_dataset(tmp_path / "coco", num_train=8, num_val=6, image_size=SIZE, seed=3)
    val_ds = make_shapes_dataset(tmp_path / "val", num_train=1, num_val=3, image_size=SIZE, seed=9)
    data = ResolvedDataset(
        ds.train_annotations, ds.image_root, ds.val_annotations, ds.image_root, None
    )
    cfg = load_config(
        {
            "dataset": {"builtin": "shapes"},
            "detectors": [{"name": "yolov8n", "options": {"nbs": 4}}],
            "losses": ["iou"],
            "etas": [0.0],
            "seeds": [0],
            "schedule": {
                "epochs": 2,
                "batch_size": 4,
                "image_size": SIZE,
                "workers": 0,
                "eval_every": 1,
            },
            "device": "cpu",
        }
    )
    (cell,) = expand_grid(cfg)
    read: list[tuple[Path, list[str]]] = []
    evaluate = cell_module._evaluate

    def spy(model: Any, test: Any, image_root: Path, *args: Any) -> dict[str, float]:
        read.append((Path(image_root), list(test.file_names)))
        return evaluate(model, test, image_root, *args)  # type: ignore[no-any-return]

    monkeypatch.setattr(cell_module, "_evaluate", spy)
    trained, _ = cell_module.train_ultralytics_cell(
        cfg,
        cell,
        data,
        ds.train_annotations,
        tmp_path / "cell",
        tmp_path / "config",
        progress=False,
        eval_annotations=val_ds.val_annotations,
        eval_images=val_ds.image_root,
    )
    val_names = list(read_annotations(val_ds.val_annotations).file_names)
    assert read == [(val_ds.image_root, val_names)] * 2  # epoch 1 (curve), epoch 2 (final)
    exported = sorted(p.name for p in (tmp_path / "cell" / "yolo" / "images" / "val").iterdir())
    assert len(exported) == len(val_names)
    assert [h.get("metrics") is not None for h in trained.history] == [True, True]
    assert no_network == []


#: The Alpha-IoU repository's data/hyp.scratch.yaml (YOLOv5 v5.0), as its README's command
#: trains Table 3's detectors with it.
HYP_SCRATCH = {
    "lr0": 0.01, "lrf": 0.2, "momentum": 0.937, "weight_decay": 0.0005,
    "warmup_epochs": 3.0, "warmup_momentum": 0.8, "warmup_bias_lr": 0.1,
    "box": 0.05, "cls": 0.5, "cls_pw": 1.0, "obj": 1.0, "obj_pw": 1.0, "iou_t": 0.20,
    "anchor_t": 4.0, "fl_gamma": 0.0, "hsv_h": 0.015, "hsv_s": 0.7, "hsv_v": 0.4,
    "degrees": 0.0, "translate": 0.1, "scale": 0.5, "shear": 0.0, "perspective": 0.0,
    "flipud": 0.0, "fliplr": 0.5, "mosaic": 1.0, "mixup": 0.0,
}  # fmt: skip


def test_paper_voc_follows_the_authors_command(tmp_path: Path) -> None:
    import math

    from ultralytics.cfg import get_cfg

    from noisybox.benchmark import load_config
    from noisybox.study.grid import expand_grid
    from noisybox.study.loading import preset_path
    from noisybox.study.ultralytics_cell import ultralytics_train_args

    cfg = load_config("paper-voc", check_paths=False)
    cell = expand_grid(cfg)[0]
    args = ultralytics_train_args(cfg, cell, tmp_path / "data.yaml", tmp_path, gpus=1)
    resolved = get_cfg(DEFAULT_CFG, args)  # Ultralytics' own check: known names, valid types
    # --batch-size 64 --epochs 300, 640 px: BatchNorm sees 64 images, a step every batch
    assert (resolved.batch, resolved.nbs, resolved.epochs, resolved.imgsz) == (64, 64, 300, 640)
    # YOLOv5 v5.0's optimiser and schedule: SGD, cosine one-cycle, mosaic to the end
    assert (resolved.optimizer, resolved.cos_lr, resolved.close_mosaic) == ("SGD", True, 0)
    mapped = {k: v for k, v in HYP_SCRATCH.items() if k in cell.detector.options}
    assert {k: getattr(resolved, k) for k in mapped if k != "warmup_epochs"} == {
        k: v for k, v in mapped.items() if k != "warmup_epochs"
    }
    # warm-up: YOLOv5 v5.0's max(3 epochs, 1000 iterations) on VOC07+12 trainval at batch 64
    batches = math.ceil(16551 / resolved.batch)
    assert round(resolved.warmup_epochs * batches) == max(round(3.0 * batches), 1000) == 1000
    # every hyp.scratch.yaml value without an Ultralytics equivalent is named in the preset
    unmapped = set(HYP_SCRATCH) - set(mapped)
    assert unmapped == {"box", "cls", "cls_pw", "obj", "obj_pw", "iou_t", "anchor_t", "fl_gamma"}
    text = preset_path("paper-voc").read_text()
    assert all(f"{k} {HYP_SCRATCH[k]}" in text for k in unmapped)
    guide = (Path(__file__).parents[1] / "docs" / "guides" / "ultralytics.md").read_text()
    assert "**paper-voc against the authors' run**" in guide


def _configure_in_processes(
    folder: Path, quiet: bool, n: int, *, hold: float = 0.0
) -> tuple[list[str], bool]:
    """Output of ``n`` processes that call ``configure_offline(folder)`` at the same moment.

    Each imports Ultralytics' heavy dependencies first, says it is ready and waits for the
    others, so that the imports of Ultralytics itself start together. With ``hold`` the
    test holds the folder's lock that long once they are released, and tells whether any
    settings file appeared meanwhile.
    """
    import os
    import subprocess
    import sys
    import time

    from filelock import FileLock

    code = (
        "import sys, time, pathlib\n"
        "import cv2, matplotlib, numpy, PIL.Image, torch, torchvision\n"
        "gate = pathlib.Path(sys.argv[3])\n"
        "(gate / sys.argv[4]).touch()\n"
        "while not (gate / 'go').exists():\n"
        "    time.sleep(0.005)\n"
        "from noisybox.detectors.ultralytics_offline import configure_offline\n"
        "configure_offline(sys.argv[1], quiet=sys.argv[2] == '1')\n"
    )
    gate = folder.parent / f"{folder.name}-gate"
    gate.mkdir()
    folder.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(folder), "1" if quiet else "0", str(gate), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i in range(n)
    ]
    deadline = time.monotonic() + 300
    while len(list(gate.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    with FileLock(folder / "configure_offline.lock"):
        (gate / "go").touch()
        time.sleep(hold)
        written_meanwhile = (folder / "Ultralytics" / "settings.json").exists()
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * n, outputs
    return outputs, written_meanwhile


@pytest.mark.slow
def test_processes_sharing_a_config_folder_take_turns(tmp_path: Path) -> None:
    # run-benchmark --jobs N: N workers import Ultralytics at once with one config folder;
    # without the lock each finds no settings file and writes one, or reads one half written
    # (a warning, then Ultralytics' defaults written over it)
    outputs, written_meanwhile = _configure_in_processes(tmp_path / "shared", False, 3, hold=8)
    text = "".join(outputs)
    assert not written_meanwhile  # they waited for the lock the test held
    assert text.count("Creating new Ultralytics Settings") == 1, text
    assert "Error decoding JSON" not in text
    folder = tmp_path / "shared" / "Ultralytics"
    import json

    assert json.loads((folder / "settings.json").read_text())["sync"] is False
    assert (folder / "Arial.ttf").stat().st_size == (folder / "Arial.Unicode.ttf").stat().st_size
    # quiet: not even the first import's info line
    (quiet,), _ = _configure_in_processes(tmp_path / "fresh", True, 1)
    assert "Creating new" not in quiet and (tmp_path / "fresh" / "Ultralytics").is_dir()


@pytest.mark.slow
def test_an_interrupted_ultralytics_cell_continues_where_it_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: list[tuple[Any, ...]]
) -> None:
    import json

    import noisybox.detectors.ultralytics as plug
    import noisybox.study.ultralytics_cell as cell_module
    from noisybox.benchmark import load_config, run_benchmark

    cfg = load_config(
        {
            "dataset": {"builtin": "shapes", "num_train": 8, "num_val": 4, "image_size": SIZE},
            "detectors": [{"name": "yolov8n", "options": {"nbs": 4}}],
            "losses": ["wiou-v3"],  # the one loss with state: its running mean must resume too
            "etas": [0.3],
            "seeds": [0],
            "schedule": {"epochs": 3, "batch_size": 4, "image_size": SIZE, "workers": 0},
            "device": "cpu",
        }
    )
    out = tmp_path / "out"
    cell_dir = out / "work" / "cells" / "yolov8n-ultralytics__wiou-v3__eta0.3__s0"
    epoch_start = plug._epoch_start
    starts: list[tuple[int, float]] = []

    def killed_in_epoch_3(trainer: Any) -> None:
        if trainer.epoch == 2:
            raise RuntimeError("killed")
        epoch_start(trainer)

    def spy(trainer: Any) -> None:  # the running mean each epoch starts from
        box = plug.plugged_box_loss(trainer.model)
        assert box is not None
        starts.append((int(trainer.epoch), float(box.box_loss.running_mean)))
        epoch_start(trainer)

    # 1. killed at the start of epoch 3: two epochs saved, no record
    monkeypatch.setattr(plug, "_epoch_start", killed_in_epoch_3)
    first = run_benchmark(cfg, out, progress=False)
    assert len(first.failures) == 1 and first.records == []
    state = json.loads((cell_dir / cell_module.STATE_FILE).read_text())
    assert [h["epoch"] for h in state["history"]] == [1, 2] and state["trained"] is False
    (saved_mean,) = state["loss_state"]["running_mean"]
    assert saved_mean != 1.0  # it moved from its initial value

    # 2. the same command continues at epoch 3 with the saved running mean; the evaluation
    #    fails after training finished
    monkeypatch.setattr(plug, "_epoch_start", spy)
    evaluate = cell_module._evaluate

    def evaluation_fails(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("killed in the evaluation")

    monkeypatch.setattr(cell_module, "_evaluate", evaluation_fails)
    second = run_benchmark(cfg, out, progress=False)
    assert len(second.failures) == 1
    assert starts == [(2, pytest.approx(saved_mean))]  # one epoch trained, not three
    saved_history = state["history"]
    state = json.loads((cell_dir / cell_module.STATE_FILE).read_text())
    assert state["trained"] is True and state["history"][:2] == saved_history

    # 3. training had finished: the third run only evaluates
    monkeypatch.setattr(cell_module, "_evaluate", evaluate)
    weights = cell_dir / "train" / "weights" / "last.pt"
    mtime = weights.stat().st_mtime_ns
    third = run_benchmark(cfg, out, progress=False)
    assert third.failures == []
    (record,) = third.records
    history = record["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["time_s"] for h in history] == [h["time_s"] for h in state["history"]]
    assert history[2]["resumed_from"] == 2 and "resumed_from" not in history[1]
    assert len(starts) == 1 and weights.stat().st_mtime_ns == mtime  # no training
    assert no_network == []


def test_a_saved_cell_state_resumes_only_the_run_it_describes(tmp_path: Path) -> None:
    import json

    from noisybox.study.ultralytics_state import _checkpoint_epochs, _resumable_state

    weights, state_path = tmp_path / "last.pt", tmp_path / "state.json"
    key = {"args": {"epochs": 3}, "loss": {"name": "iou"}}
    history = [{"epoch": 1}, {"epoch": 2}]
    state = {"key": key, "trained": False, "history": history, "loss_state": None}
    state_path.write_text(json.dumps(state))
    assert _resumable_state(state_path, weights, key) is None  # no checkpoint
    torch.save({"epoch": 1, "optimizer": {"state": {}}}, weights)  # epochs 1-2 done
    assert _checkpoint_epochs(weights) == 2
    assert _resumable_state(state_path, weights, key) == state
    other = {"args": {"epochs": 4}, "loss": {"name": "iou"}}
    assert _resumable_state(state_path, weights, other) is None  # another run's state
    torch.save({"epoch": 2, "optimizer": {"state": {}}}, weights)  # killed before the state
    assert _resumable_state(state_path, weights, key) is None
    torch.save({"epoch": -1, "optimizer": None}, weights)  # finished (stripped), not marked
    assert _checkpoint_epochs(weights) is None
    assert _resumable_state(state_path, weights, key) is None
    state_path.write_text(json.dumps({**state, "trained": True}))
    assert _resumable_state(state_path, weights, key) is not None  # evaluate only
    weights.write_bytes(b"torn")
    assert _checkpoint_epochs(weights) is None
    state_path.write_text("{not json")
    assert _resumable_state(state_path, weights, key) is None
