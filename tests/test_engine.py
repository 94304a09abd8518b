"""The training loop, checkpoints, evaluation and the ``train``/``evaluate`` commands.

Everything trains FCOS (ResNet-18, 64 FPN channels) on a handful of 64 px shapes images
for a few steps; pycocotools and torchvision are the references.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.data import make_shapes_dataset
from noisybox.engine import (
    TrainConfig,
    alpha_at_step,
    coco_evaluate,
    collapse_reasons,
    evaluate_checkpoint,
    load_checkpoint,
    train,
)
from noisybox.errors import NoisyboxError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    return make_shapes_dataset(
        tmp_path_factory.mktemp("shapes"), num_train=8, num_val=4, image_size=64, seed=3
    )


def _cfg(shapes, out: Path, **kw) -> TrainConfig:
    base = dict(
        train_annotations=str(shapes.train_annotations),
        out_dir=str(out),
        detector="fcos",
        backbone="resnet18",
        loss="alpha-iou",
        alpha=3.0,
        alpha_warmup=0.5,
        epochs=2,
        batch_size=4,
        image_size=64,
        fpn_channels=64,
        workers=0,
        device="cpu",
        seed=1,
    )
    base.update(kw)
    return TrainConfig(**base)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_resume_continues_exactly(shapes, tmp_path) -> None:
    straight = train(_cfg(shapes, tmp_path / "a"), progress=False)
    first = train(_cfg(shapes, tmp_path / "b", stop_after_epoch=1), progress=False)
    assert len(first.history) == 1 and first.metrics is None
    resumed = train(_cfg(shapes, tmp_path / "b"), progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    a, b = _weights(straight.checkpoint), _weights(resumed.checkpoint)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert straight.history[1]["loss"] == resumed.history[1]["loss"]
    # optimizer, scheduler and RNG state were checkpointed too
    state = load_checkpoint(resumed.checkpoint)
    assert state["epoch"] == 2 and state["global_step"] == 4
    assert state["optimizer"]["state"] and state["scheduler"]["last_epoch"] == 4
    assert straight.weights_digests == resumed.weights_digests
    # the alpha warm-up is recorded: 1 -> 3 over half of the 4 steps
    assert [h["alpha"] for h in straight.history] == [alpha_at_step(1, 4, 3.0, 0.5), 3.0]
    assert straight.seeds["seed"] == 1 and state["config"]["seed"] == 1
    # a finished run is returned as it is
    again = train(_cfg(shapes, tmp_path / "b"), progress=False)
    assert again.history == resumed.history
    # and a different config does not silently continue it
    with pytest.raises(NoisyboxError, match="Expected the config to match the checkpoint"):
        train(_cfg(shapes, tmp_path / "b", lr=0.5), progress=False)


def test_bf16_autocast_on_cpu(shapes, tmp_path) -> None:
    # at 64 px the 1 x 1 P7 level's GroupNorm sees 2 values per group, too few for a
    # bfloat16 backward (the guard then skips the step); 160 px gives P7 2 x 2
    kw = dict(epochs=1, batch_size=8, seed=0, image_size=160)
    fp32 = train(_cfg(shapes, tmp_path / "fp32", amp="off", **kw), progress=False)
    bf16 = train(_cfg(shapes, tmp_path / "bf16", amp="bf16", **kw), progress=False)
    assert bf16.history[0]["skipped_nonfinite"] == 0
    a, b = fp32.history[0]["loss"], bf16.history[0]["loss"]
    assert torch.isfinite(torch.tensor(b))
    assert a != b  # autocast really ran in bfloat16 ...
    assert abs(a - b) < 0.1 * abs(a)  # ... and computed the same thing
    with pytest.raises(NoisyboxError, match="Expected a CUDA device for amp='fp16'"):
        train(_cfg(shapes, tmp_path / "fp16", amp="fp16"), progress=False)


def test_nonfinite_losses_are_skipped_and_counted(shapes, tmp_path) -> None:
    # an absurd learning rate blows the network up; the guard must keep the run alive
    result = train(
        _cfg(shapes, tmp_path, optimizer="sgd", lr=1e6, lr_warmup=0.0, epochs=3, batch_size=8),
        progress=False,
    )
    skipped = sum(h["skipped_nonfinite"] for h in result.history)
    assert skipped >= 1
    weights = _weights(result.checkpoint)
    assert all(torch.isfinite(v).all() for v in weights.values() if v.is_floating_point())


def test_train_cli_with_config_then_evaluate(shapes, tmp_path) -> None:
    config = _cfg(shapes, tmp_path / "cli", epochs=1).to_dict()
    config["test_annotations"] = str(shapes.val_annotations)
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(config))
    runner = CliRunner()
    out = runner.invoke(
        main,
        ["train", "--config", str(path), "--quiet", "--json", "--seed", "2", "--head-convs", "2"],
    )
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert result["config"]["seed"] == 2  # the command line overrides the file
    assert result["config"]["detector_kwargs"]["num_convs"] == 2
    assert result["config"]["loss"] == "alpha-iou"
    ckpt = result["checkpoint"]
    assert set(result["metrics"]) >= {"ap50", "ap95", "map", "map_75_95"}

    metrics = evaluate_checkpoint(ckpt, shapes.val_annotations, None, device="cpu")
    assert metrics == pytest.approx(result["metrics"])
    out = runner.invoke(
        main,
        [
            "evaluate",
            ckpt,
            "--annotations",
            str(shapes.val_annotations),
            "--json",
            "--device",
            "cpu",
        ],
    )
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == pytest.approx(metrics)

    bogus = tmp_path / "bogus.pt"
    torch.save({"model": {}}, bogus)
    out = runner.invoke(
        main, ["evaluate", str(bogus), "--annotations", str(shapes.val_annotations)]
    )
    assert out.exit_code == 1
    assert "Expected a noisybox training checkpoint" in out.output
    assert "Traceback" not in out.output


def test_evaluation_matches_pycocotools_on_the_same_detections(shapes, tmp_path) -> None:
    # predict -> coco_evaluate must equal pycocotools run by hand on the same detections
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from noisybox.data import DetectionDataset
    from noisybox.detectors import build_detector
    from noisybox.engine import predict

    torch.manual_seed(0)
    dataset = DetectionDataset(shapes.val_annotations)
    model = build_detector("fcos", dataset.num_classes, fpn_channels=64, image_size=64)
    with torch.no_grad():  # a confident head so that there are detections to score
        model.head.classification_head.cls_logits.bias.fill_(2.0)
    detections = predict(model, dataset, category_ids=dataset.category_ids)
    assert detections and {d["category_id"] for d in detections} <= set(dataset.category_ids)
    ours = coco_evaluate(str(shapes.val_annotations), detections)
    gt = COCO(str(shapes.val_annotations))
    ev = COCOeval(gt, gt.loadRes(detections), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert ours["map"] == pytest.approx(max(ev.stats[0], 0.0))
    assert ours["ap50"] == pytest.approx(max(ev.stats[1], 0.0))


def test_train_cli_reports_user_errors_in_one_line(tmp_path) -> None:
    bad = tmp_path / "cfg.json"
    bad.write_text(json.dumps({"train_annotations": "x.json", "epoch": 3}))
    out = CliRunner().invoke(main, ["train", "--config", str(bad)])
    assert out.exit_code == 1
    assert "Expected training config keys among" in out.output and "'epoch'" in out.output


def test_config_from_sources_file_then_overrides(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "train_annotations: a.json\nepochs: 3\nseed: 4\ndetector_kwargs: {num_convs: 2, x: 1}\n"
    )
    cfg = TrainConfig.from_sources(path, seed=7, detector_kwargs={"num_convs": 3})
    assert (cfg.epochs, cfg.seed, cfg.lr_warmup) == (3, 7, TrainConfig("a.json").lr_warmup)
    assert cfg.detector_kwargs == {"num_convs": 3, "x": 1}  # mappings merge, overrides win
    assert TrainConfig.from_sources(train_annotations="b.json") == TrainConfig("b.json")
    path.write_text("- not a mapping\n")
    with pytest.raises(NoisyboxError, match="mapping of TrainConfig fields"):
        TrainConfig.from_sources(path)
    path.write_text("{unclosed: [\n")
    with pytest.raises(NoisyboxError, match="JSON/YAML training config"):
        TrainConfig.from_sources(path)


def test_engine_module_entry_trains_a_config_file(shapes, tmp_path) -> None:
    # what torchrun starts on every rank (the benchmark's --gpus launcher)
    from noisybox.engine.__main__ import main as engine_main

    path = tmp_path / "cell.json"
    path.write_text(json.dumps(_cfg(shapes, tmp_path / "run", epochs=1).to_dict()))
    assert engine_main(["--config", str(path), "--quiet"]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert len(result["history"]) == 1 and result["config"]["loss"] == "alpha-iou"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"train_annotations": "x.json", "epoch": 3}))
    assert engine_main(["--config", str(bad)]) == 1


def test_config_round_trip() -> None:
    cfg = TrainConfig("a.json", loss="alpha-ciou", alpha=2.0, noise={"eta": 0.2})
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert dataclasses.replace(cfg, amp="off") == TrainConfig.from_dict(
        {**cfg.to_dict(), "amp": False}
    )
    with pytest.raises(NoisyboxError, match="Expected alpha_warmup in"):
        TrainConfig("a.json", alpha_warmup=2.0).validate()
    with pytest.raises(NoisyboxError, match="Expected loss in"):
        TrainConfig("a.json", loss="l7").validate()


def test_collapse_reasons() -> None:
    healthy = [
        {"epoch": 1, "box_loss": 0.5, "alpha": 2.0, "fg_iou": 0.5},
        {"epoch": 2, "box_loss": 0.8, "alpha": 3.0, "fg_iou": 0.6},  # alpha grew: loss grew
    ]
    assert collapse_reasons(healthy, ap50=0.3, reference_ap50=0.4) == []
    flat = [dict(h, fg_iou=0.01) for h in healthy]
    assert collapse_reasons(flat)[0].startswith("matched boxes do not overlap")
    no_iou = [{"box_loss": 0.9, "alpha": 3.0}, {"box_loss": 0.89, "alpha": 3.0}]
    assert collapse_reasons(no_iou)[0].startswith("box loss did not fall")
    assert collapse_reasons(no_iou[:1], ap50=0.0, reference_ap50=0.5)[0].startswith(
        "AP50 near zero"
    )


@pytest.fixture(scope="module")
def shapes16(tmp_path_factory):
    return make_shapes_dataset(
        tmp_path_factory.mktemp("shapes16"), num_train=16, num_val=1, image_size=64, max_objects=3
    )


def test_alpha_3_collapses_without_warmup_and_trains_with_it(shapes16, tmp_path) -> None:
    # Issue 7: with SGD, 1 - IoU^3 gives a random-init FCOS regression branch (IoU ~ 0)
    # no gradient. The collapse must be detected, and the warm-up must avoid it.
    def run(name: str, warmup: float):
        cfg = _cfg(
            shapes16,
            tmp_path / name,
            test_annotations=str(shapes16.train_annotations),  # can it fit what it saw?
            alpha=3.0,
            alpha_warmup=warmup,
            optimizer="sgd",
            lr=0.02,
            lr_warmup=0.0,
            epochs=6,
            batch_size=4,
            seed=0,
        )
        return train(cfg, progress=False)

    collapsed = run("no-warmup", 0.0)
    remedied = run("warmup", 0.5)

    assert collapsed.history[-1]["fg_iou"] < 0.05
    assert collapsed.metrics["ap50"] < 0.01
    assert collapsed.collapsed and "do not overlap" in collapsed.collapsed[0]
    reasons = collapse_reasons(
        collapsed.history,
        ap50=collapsed.metrics["ap50"],
        reference_ap50=remedied.metrics["ap50"],
    )
    assert any(r.startswith("AP50 near zero") for r in reasons), (reasons, remedied.metrics["ap50"])

    assert remedied.collapsed == []
    assert remedied.history[-1]["box_loss"] < remedied.history[0]["box_loss"] - 0.05
    assert remedied.history[-1]["fg_iou"] > 0.3
    assert remedied.metrics["ap50"] > 0
    assert [h["alpha"] for h in remedied.history][-1] == 3.0


def test_learning_curve_ema_and_resume(shapes, tmp_path) -> None:
    kw = dict(
        test_annotations=str(shapes.val_annotations),
        eval_every=1,
        ema_decay=0.9,
        epochs=3,
        backbone="resnet18_025",
        scale_range=[0.8, 1.2],
    )
    straight = train(_cfg(shapes, tmp_path / "a", **kw), progress=False)
    # every epoch evaluated, the last one is the run's metrics
    assert [sorted(h["metrics"]) == sorted(straight.metrics) for h in straight.history] == [
        True
    ] * 3
    assert straight.history[-1]["metrics"] == straight.metrics
    assert all(h["eval_time_s"] > 0 for h in straight.history)
    conv = straight.convergence
    assert conv is not None and conv["final"] == straight.metrics["map"]
    assert conv["tail_epochs"] == [3] and conv["converged"] is None  # one point in the tail
    # the moving average is checkpointed and resumed exactly, with the curve so far
    train(_cfg(shapes, tmp_path / "b", stop_after_epoch=2, **kw), progress=False)
    resumed = train(_cfg(shapes, tmp_path / "b", **kw), progress=False)
    a, b = load_checkpoint(straight.checkpoint), load_checkpoint(resumed.checkpoint)
    for key in a["ema"]:
        assert torch.equal(a["ema"][key], b["ema"][key]), key
    assert [h["metrics"] for h in resumed.history] == [h["metrics"] for h in straight.history]
    # evaluating the checkpoint evaluates the average, as training did
    again = evaluate_checkpoint(straight.checkpoint, shapes.val_annotations, None, device="cpu")
    assert again == pytest.approx(straight.metrics)
    # the average differs from the raw weights (it is what was evaluated)
    raw = {k: v for k, v in a["model"].items() if v.is_floating_point()}
    averaged = {k.removeprefix("module."): v for k, v in a["ema"].items()}
    assert any(not torch.equal(raw[k], averaged[k]) for k in raw)


def test_eval_every_and_ema_are_validated(shapes, tmp_path) -> None:
    for bad in ({"eval_every": -1}, {"ema_decay": 1.0}, {"scale_range": [1.5, 0.5]}):
        with pytest.raises(NoisyboxError, match=next(iter(bad))):
            train(_cfg(shapes, tmp_path / "x", **bad), progress=False)


def test_train_cli_learning_curve_options(shapes, tmp_path) -> None:
    root = Path(shapes.train_annotations).parent
    args = [
        "train",
        "--data",
        str(root),
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--image-size",
        "64",
        "--fpn-channels",
        "32",
        "--head-convs",
        "1",
        "--backbone",
        "resnet18_025",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--eval-every",
        "1",
        "--ema-decay",
        "0.9",
        "--scale-range",
        "0.8",
        "1.2",
        "--amp",
        "bf16",
        "--out",
        str(tmp_path / "run"),
        "-q",
        "--json",
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["config"]["scale_range"] == [0.8, 1.2] and out["config"]["ema_decay"] == 0.9
    assert out["history"][0]["metrics"] == out["metrics"]
    bad = CliRunner().invoke(main, [*args[:-4], "--ema-decay", "1.5"])
    assert bad.exit_code == 2 and "--ema-decay" in bad.output
