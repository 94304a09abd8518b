"""Benchmark config: schema validation (all problems at once), presets, grid, shards."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.detectors import list_backbones
from noisybox.engine import TrainConfig
from noisybox.errors import NoisyboxError
from noisybox.study.grid import expand_grid, parse_shard, select_cells, shard_cells
from noisybox.study.loading import (
    ConfigError,
    config_diff,
    list_presets,
    load_config,
)
from noisybox.study.results import open_results_folder

VALID = {
    "name": "unit",
    "dataset": {"builtin": "shapes", "num_train": 4, "num_val": 2, "image_size": 64},
    "detectors": [
        "retinanet",
        {"name": "fcos", "backbone": "resnet18", "options": {"fpn_channels": 32}},
    ],
    "losses": ["iou", {"name": "alpha-iou", "alpha": [2, 3], "alpha_warmup": 0.3}],
    "etas": [0.0, 0.1],
    "seeds": [0, 1],
    "schedule": {"epochs": 1, "batch_size": 2, "image_size": 64, "workers": 0},
}


def test_valid_config_normalised() -> None:
    cfg = load_config(VALID)
    assert [d.label for d in cfg.detectors] == ["retinanet-resnet18", "fcos-resnet18"]
    assert [(lo.name, lo.alpha, lo.alpha_warmup) for lo in cfg.losses] == [
        ("iou", 1.0, None),  # the registry's default alpha
        ("alpha-iou", 2.0, 0.3),
        ("alpha-iou", 3.0, 0.3),
    ]
    assert cfg.etas == (0.0, 0.1) and cfg.seeds == (0, 1)
    # round trip through the normalised dict
    again = load_config(cfg.to_dict())
    assert again.to_dict() == cfg.to_dict()
    assert again.fingerprint() == cfg.fingerprint()


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    bad = {
        "dataset": {
            "train_annotations": "missing/train.json",
            "train_images": str(tmp_path),
            "test_annotations": str(tmp_path / "nope.json"),
            "test_images": str(tmp_path),
            "colour": "red",
        },
        "detectors": ["yolo"],
        "losses": ["iou", {"name": "alpha-iou", "alpha": -1}, {"name": "l1"}],
        "etas": [0.1, 1.5],
        "seeds": [0, "one"],
        "noise": {"model": "uniform", "boundary": "wrap"},
        "schedule": {"epochs": 0, "batch_size": 2, "lrate": 0.1},
        "device": "tpu",
        "extra": 1,
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    keys = [e.split(":")[0] for e in info.value.errors]
    assert keys == [
        "config.extra",
        "dataset.colour",
        "dataset.train_annotations",
        "dataset.test_annotations",
        "detectors[0].name",
        "losses[1].alpha",
        "losses[2].name",
        "etas[1]",
        "seeds[1]",
        "noise.boundary",
        "schedule.lrate",
        "schedule.epochs",
        "device",
    ]
    # relative dataset paths resolve against the YAML file's folder
    assert str(tmp_path / "missing" / "train.json") in str(info.value)
    assert str(path) in str(info.value)

    # the CLI: one error listing everything, exit code 1, no traceback
    result = CliRunner().invoke(main, ["run-benchmark", str(path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "13 problems" in result.output and "etas[1]: Expected eta in [0, 1)" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_unwritable_out_folder_is_a_one_line_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("mine\n")
    out = blocker / "results"
    result = CliRunner().invoke(main, ["run-benchmark", "--preset", "quick", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and str(blocker) in result.output
    assert len(result.output.strip().splitlines()) == 1 and result.exception is not None
    assert blocker.read_text() == "mine\n"
    # --debug shows the real exception instead
    result = CliRunner().invoke(
        main, ["run-benchmark", "--preset", "quick", "--out", str(out), "--debug"]
    )
    assert isinstance(result.exception, OSError)


def test_missing_sections_and_engine_checks() -> None:
    with pytest.raises(ConfigError) as info:
        load_config({"dataset": {"builtin": "shapes"}, "detectors": ["fcos"], "losses": ["iou"]})
    assert [e.split(":")[0] for e in info.value.errors] == ["etas", "seeds", "schedule"]
    # values only the engine's TrainConfig knows about are judged by it
    with pytest.raises(ConfigError, match=r"schedule: Expected optimizer in"):
        load_config({**VALID, "schedule": {"epochs": 1, "optimizer": "lbfgs"}})
    with pytest.raises(ConfigError, match=r"Expected each loss/alpha/warm-up once"):
        load_config({**VALID, "losses": ["iou", {"name": "iou", "alpha": 1}]})


def test_presets() -> None:
    assert {"quick", "paper-voc", "paper-coco", "alpha-sweep"} <= set(list_presets())
    quick = load_config("quick")
    assert quick.dataset.builtin == "shapes"
    assert 0.0 in quick.etas and any(e > 0 for e in quick.etas)
    voc = load_config("paper-voc", check_paths=False)
    # Table 3 of the paper: eta 0.1/0.2/0.3, IoU vs alpha-IoU and DIoU vs alpha-DIoU, alpha 3
    assert voc.etas == (0.1, 0.2, 0.3)
    assert [lo.label for lo in voc.losses] == ["iou", "alpha-iou@3", "diou", "alpha-diou@3"]
    # issue 8's study: its protocol (PROTOCOL.md) must not drift from the committed results
    mini = load_config("paper-mini")
    assert mini.dataset.builtin == "shapes" and len(mini.detectors) == 1
    assert [lo.label for lo in mini.losses] == ["iou", "alpha-iou@3", "diou", "alpha-diou@3"]
    assert mini.etas == (0.0, 0.3) and len(mini.seeds) >= 3
    committed = Path(__file__).parents[1] / "benchmarks" / "results" / "paper-mini"
    stored = json.loads((committed / "benchmark.json").read_text())
    assert stored["fingerprint"] == mini.fingerprint()
    # issue 16: the paper's detector family (Ultralytics YOLOv5s), the Faster R-CNN version kept
    assert [d.name for d in voc.detectors] == ["yolov5su"] and voc.schedule["epochs"] == 300
    assert [lo.alpha_warmup for lo in voc.losses] == [None, 0.0, None, 0.0]
    frcnn = load_config("paper-voc-frcnn", check_paths=False)
    assert [d.label for d in frcnn.detectors] == ["fasterrcnn-resnet50"]
    assert [lo.label for lo in frcnn.losses] == [lo.label for lo in voc.losses]
    assert frcnn.etas == voc.etas and frcnn.seeds == voc.seeds
    cpu = load_config("ultralytics-cpu")
    cells = expand_grid(cpu)
    assert len(cells) == 12 and {c.detector.label for c in cells} == {"yolov8n-ultralytics"}
    assert {c.loss.label for c in cells} == {"iou", "alpha-iou@3"} and cpu.etas == (0.0, 0.3)
    sweep = load_config("alpha-sweep")
    assert sorted(lo.alpha for lo in sweep.losses) == [0.5, 1, 2, 3, 4, 5]
    with pytest.raises(ConfigError, match="Expected an existing path"):
        load_config("paper-coco")
    result = CliRunner().invoke(main, ["list-presets"])
    assert result.exit_code == 0 and result.output.splitlines()[0].startswith("alpha-sweep\t")


def test_ultralytics_detectors() -> None:
    """Ultralytics model names validate without the extra; their options are Ultralytics'."""
    cfg = load_config(
        {**VALID, "detectors": ["yolo11n", {"name": "yolov8n", "options": {"optimizer": "SGD"}}]}
    )
    assert [d.label for d in cfg.detectors] == ["yolo11n-ultralytics", "yolov8n-ultralytics"]
    assert cfg.detectors[1].options == {"optimizer": "SGD"}
    with pytest.raises(ConfigError, match=r"detectors\[0\].options: Expected no argument"):
        load_config({**VALID, "detectors": [{"name": "yolov8n", "options": {"seed": 3}}]})
    with pytest.raises(ConfigError, match=r"detectors\[0\].backbone: Expected 'ultralytics'"):
        load_config({**VALID, "detectors": [{"name": "yolov8n", "backbone": "resnet18"}]})
    with pytest.raises(ConfigError, match=r"detectors\[0\].name: Expected"):
        load_config({**VALID, "detectors": ["yolov8"]})  # no scale letter: not a model name


def test_grid_and_shards() -> None:
    cfg = load_config(VALID)
    cells = expand_grid(cfg)
    assert len(cells) == 2 * 3 * 2 * 2
    ids = [c.cell_id for c in cells]
    assert len(set(ids)) == len(ids)
    assert ids[0] == "retinanet-resnet18__iou__eta0__s0"
    assert "fcos-resnet18__alpha-iou@3~w0.3__eta0.1__s1" in ids
    shards = [shard_cells(cells, i, 5) for i in range(5)]
    flat = [c.cell_id for s in shards for c in s]
    assert sorted(flat) == sorted(ids)
    assert parse_shard("2/5") == (2, 5) and parse_shard(None) is None
    for text in ("5/5", "a/b", "1"):
        with pytest.raises(NoisyboxError, match="Expected --shard"):
            parse_shard(text)


def test_results_folder_refuses_other_config_unless_extend(tmp_path: Path) -> None:
    cfg = load_config(VALID)
    folder, stored = open_results_folder(cfg, tmp_path / "out")
    assert stored.to_dict() == cfg.to_dict()
    ignored = (tmp_path / "out" / ".gitignore").read_text().splitlines()
    assert "work/" in ignored and ".noisybox-run.*" in ignored  # regenerable, and the lock
    # same measurement on another device: accepted
    open_results_folder(load_config({**VALID, "device": "cpu"}), tmp_path / "out")
    more_seeds = load_config({**VALID, "seeds": [2]})
    with pytest.raises(NoisyboxError, match=r"seeds: \[0, 1\] -> \[2\]. Use --extend"):
        open_results_folder(more_seeds, tmp_path / "out")
    _, merged = open_results_folder(more_seeds, tmp_path / "out", extend=True)
    assert merged.seeds == (0, 1, 2)
    longer = load_config({**VALID, "schedule": {**VALID["schedule"], "epochs": 2}})
    with pytest.raises(NoisyboxError, match=r"--extend to keep .* schedule.epochs: 1 -> 2"):
        open_results_folder(longer, tmp_path / "out", extend=True)
    assert config_diff(cfg.to_dict(), cfg.to_dict()) == []


def test_extend_adds_noise_conditions_and_selects_their_cells(tmp_path: Path) -> None:
    """A noise condition is a grid axis for --extend: the stored config is the union of the
    conditions, and a config of one of them runs that condition's cells under their ids."""
    uniform, missing = {"model": "uniform"}, {"model": "none", "corruptions": ["missing"]}
    base = {**VALID, "detectors": ["retinanet"], "losses": ["iou"], "seeds": [0]}
    two = load_config({**base, "noise": [uniform, missing]})
    open_results_folder(two, tmp_path / "two")
    gaussian = load_config({**base, "noise": {"model": "gaussian"}})
    with pytest.raises(NoisyboxError, match=r"noise: .* Use --extend"):
        open_results_folder(gaussian, tmp_path / "two")
    _, stored = open_results_folder(gaussian, tmp_path / "two", extend=True)
    assert [n.label for n in stored.conditions] == ["uniform", "missing", "gaussian"]
    assert [c.cell_id for c in select_cells(stored, gaussian)] == [
        "retinanet-resnet18__iou__eta0__s0",
        "retinanet-resnet18__iou__gaussian__eta0.1__s0",
    ]
    assert select_cells(stored, stored) == expand_grid(stored)
    # a second condition labelled like the first cannot be told apart from it
    truncate = load_config({**base, "noise": {"model": "uniform", "boundary": "truncate"}})
    with pytest.raises(NoisyboxError, match=r"valid union .* 'uniform' twice"):
        open_results_folder(truncate, tmp_path / "two", extend=True)
    named = load_config(
        {**base, "noise": {"model": "uniform", "boundary": "truncate", "name": "u-trunc"}}
    )
    _, stored = open_results_folder(named, tmp_path / "two", extend=True)
    assert [n.label for n in stored.conditions] == ["uniform", "missing", "gaussian", "u-trunc"]


def test_every_name_is_checked_against_its_registry(tmp_path: Path) -> None:
    """``backbone: resnet999`` passed the check and failed every cell later (item 7)."""
    bad = {**VALID, "detectors": [{"name": "fcos", "backbone": "resnet999"}, "retinanet"]}
    with pytest.raises(ConfigError) as info:
        load_config(bad)
    assert info.value.errors == [
        f"detectors[0].backbone: Expected one of {', '.join(list_backbones())} but got 'resnet999'"
    ]
    assert "\n" not in str(info.value)  # one line, like every noisybox error
    with pytest.raises(NoisyboxError, match="backbone in"):
        TrainConfig("a.json", backbone="resnet999").validate()


def test_jobs_auto_trains_one_cell_per_core_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    from noisybox.cli import benchmark as cli_benchmark

    cfg = load_config("quick")  # 4 cells, device auto
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert cli_benchmark.resolve_jobs("auto", cfg, launcher="local", gpus=0) == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert cli_benchmark.resolve_jobs("auto", cfg, launcher="local", gpus=0) == 4
    assert cli_benchmark.resolve_jobs("auto", cfg, launcher="slurm", gpus=0) == 1
    assert cli_benchmark.resolve_jobs("auto", cfg, launcher="local", gpus=2) == 1
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert cli_benchmark.resolve_jobs("auto", cfg, launcher="local", gpus=0) == 1
    assert cli_benchmark.resolve_jobs("3", cfg, launcher="local", gpus=0) == 3
    for bad in ("0", "two", "-1"):
        with pytest.raises(click.BadParameter, match="integer >= 1 or .auto."):
            cli_benchmark.resolve_jobs(bad, cfg, launcher="local", gpus=0)


def test_oamil_retention_preset_loads_and_expands() -> None:
    cfg = load_config("oamil-retention")
    cpu = load_config("paper-cpu")
    assert cfg.noise.model == "oamil" and cfg.noise.boundary == "truncate"
    assert cfg.etas == (0.0, 0.1, 0.2, 0.3, 0.4)
    # the CPU-sized detector, data and schedule of paper-cpu, unchanged
    assert cfg.to_dict()["detectors"] == cpu.to_dict()["detectors"]
    assert cfg.to_dict()["dataset"] == cpu.to_dict()["dataset"]
    assert cfg.to_dict()["schedule"] == cpu.to_dict()["schedule"]
    cells = expand_grid(cfg)
    assert len(cells) == 5 * len(cfg.seeds) and len(cfg.seeds) >= 3
    assert {c.eta for c in cells} == {0.0, 0.1, 0.2, 0.3, 0.4}
    assert "oamil-retention" in list_presets()


def test_noise_corruptions_follow_eta_and_keep_old_fingerprints(tmp_path: Path) -> None:
    base = {**VALID, "noise": {"model": "oamil", "boundary": "truncate"}}
    plain = load_config(base)
    assert "corruptions" not in plain.to_dict()["noise"]  # older configs hash as before
    mixed = load_config(
        {
            **VALID,
            "noise": {
                "model": "oamil",
                "boundary": "truncate",
                "corruptions": ["extra", "missing"],
            },
        }  # fmt: skip
    )
    assert mixed.noise.corruptions == ("missing", "extra")
    assert load_config(mixed.to_dict()).fingerprint() == mixed.fingerprint() != plain.fingerprint()
    moved = load_config({**VALID, "noise": {"corruptions": ["relocate", "missing"]}})
    assert moved.noise.corruptions == ("missing", "relocate")  # in ANNOTATION_CORRUPTIONS order
    for bad, words in ((["missing", "missing"], "distinct names"), (["shift"], "names in")):
        with pytest.raises(ConfigError, match=words):
            load_config({**VALID, "noise": {"corruptions": bad}})


def test_report_reference_is_a_loss_row_of_the_grid(tmp_path: Path) -> None:
    plain = load_config(VALID)
    assert plain.report.reference is None
    assert "report" not in plain.to_dict()  # studies without the option read as before
    cfg = load_config({**VALID, "report": {"reference": "iou"}})
    assert cfg.report.reference == "iou"
    assert cfg.to_dict()["report"] == {"reference": "iou"}
    # a report option measures nothing: same fingerprint, and a study may add it on resume
    assert cfg.fingerprint() == plain.fingerprint()
    assert load_config(cfg.to_dict()).to_dict() == cfg.to_dict()
    open_results_folder(plain, tmp_path / "out")
    open_results_folder(cfg, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "benchmark.json").read_text())["config"]["report"] == {
        "reference": "iou"
    }
    # an alpha variant by its label, stored with its warm-up
    short = load_config({**VALID, "report": {"reference": "alpha-iou@3"}})
    assert short.report.reference == "alpha-iou@3 (warm-up 0.3)"
    # ... unless it names two rows
    other = {"name": "alpha-iou", "alpha": 3, "alpha_warmup": 0.1}
    two = {**VALID, "losses": [*VALID["losses"], other]}
    with pytest.raises(ConfigError, match=r"report.reference: .* but got 'alpha-iou@3'"):
        load_config({**two, "report": {"reference": "alpha-iou@3"}})
    full = load_config({**two, "report": {"reference": "alpha-iou@3 (warm-up 0.3)"}})
    assert full.report.reference == "alpha-iou@3 (warm-up 0.3)"

    path = tmp_path / "study.yaml"
    for report, words in (
        ({"reference": "giou"}, r"report.reference: Expected one loss row of the grid "
         r"\(iou, alpha-iou@2 \(warm-up 0.3\), alpha-iou@3 \(warm-up 0.3\)\) but got 'giou'"),
        ({"reference": "alpha-iou"}, r"report.reference: Expected one loss row .* 'alpha-iou'"),
        ({"reference": "iou", "colour": "red"}, r"report.colour: Expected one of the keys reference"),
        ({"reference": ""}, r"report.reference: Expected a non-empty string"),
        ("iou", r"report: Expected a mapping but got 'iou'"),
    ):  # fmt: skip
        path.write_text(yaml.safe_dump({**VALID, "report": report}))
        with pytest.raises(ConfigError, match=words) as info:
            load_config(path)
        message = str(info.value)
        assert "\n" not in message and str(path) in message and "(1 problem)" in message


def test_loss_zoo_preset_compares_every_loss_with_iou() -> None:
    cfg = load_config("loss-zoo")
    assert cfg.report.reference == "iou"
    assert len(cfg.losses) == 16 and cfg.etas == (0.0, 0.3) and len(cfg.seeds) == 3


UNA = [
    {"model": "uniform"},
    {"model": "none", "corruptions": ["missing"]},
    {"model": "none", "corruptions": ["class_flip"], "name": "flip"},
    {"corruptions": ["class_flip", "missing"]},
]


def test_noise_conditions_are_a_grid_axis_with_one_clean_cell() -> None:
    cfg = load_config({**VALID, "detectors": ["fcos"], "losses": ["iou"], "noise": UNA})
    assert [n.label for n in cfg.conditions] == [
        "uniform", "missing", "flip", "uniform+missing+class_flip"]  # fmt: skip
    assert cfg.noise == cfg.conditions[0] and not cfg.conditions[1].box_noise
    ids = [c.cell_id for c in expand_grid(cfg)]
    assert ids == [
        "fcos-resnet18__iou__eta0__s0",  # clean boxes: once, every condition's reference
        "fcos-resnet18__iou__uniform__eta0.1__s0",
        "fcos-resnet18__iou__missing__eta0.1__s0",
        "fcos-resnet18__iou__flip__eta0.1__s0",
        "fcos-resnet18__iou__uniform+missing+class_flip__eta0.1__s0",
        "fcos-resnet18__iou__eta0__s1",
        "fcos-resnet18__iou__uniform__eta0.1__s1",
        "fcos-resnet18__iou__missing__eta0.1__s1",
        "fcos-resnet18__iou__flip__eta0.1__s1",
        "fcos-resnet18__iou__uniform+missing+class_flip__eta0.1__s1",
    ]
    cells = expand_grid(cfg)
    assert cells[0].to_dict().get("condition") is None
    assert cells[2].to_dict()["condition"] == "missing"
    data = cfg.to_dict()
    assert data["noise"][1] == {
        "model": "none", "boundary": "shift", "ratio": 1.0, "corruptions": ["missing"]}  # fmt: skip
    assert data["noise"][2]["name"] == "flip"
    again = load_config(data)
    assert again == cfg and again.fingerprint() == cfg.fingerprint()
    one = load_config({**VALID, "noise": UNA[:1]})  # a list of one mapping is that mapping
    assert one.fingerprint() == load_config(VALID).fingerprint()


def test_one_noise_mapping_keeps_its_ids_fingerprint_and_dict() -> None:
    """Every config written before noise conditions reads as before (hand-copied values)."""
    cfg = load_config(
        {**VALID, "noise": {"model": "oamil", "boundary": "truncate", "corruptions": ["missing"]}}
    )
    assert cfg.noise_conditions == () and cfg.conditions == (cfg.noise,)
    assert cfg.to_dict()["noise"] == {
        "model": "oamil", "boundary": "truncate", "ratio": 1.0, "corruptions": ["missing"]}  # fmt: skip
    assert "noise_conditions" not in cfg.to_dict()
    assert [c.cell_id for c in expand_grid(cfg)][:2] == [
        "retinanet-resnet18__iou__eta0__s0",
        "retinanet-resnet18__alpha-iou@2~w0.3__eta0__s0",
    ]
    assert all("condition" not in c.to_dict() for c in expand_grid(cfg))
    assert len(expand_grid(cfg)) == 2 * 3 * 2 * 2
    plain = load_config(VALID)
    assert plain.to_dict()["noise"] == {"model": "uniform", "boundary": "shift", "ratio": 1.0}


@pytest.mark.parametrize(
    ("noise", "words"),
    [
        ([], r"noise: Expected a non-empty list but got \[\]"),
        (
            [{"model": "uniform"}, {"ratio": 0.5}],
            "noise: Expected a distinct label .*'uniform' twice",
        ),
        ([{"model": "none"}, {}], r"noise\[0\].corruptions: Expected at least one corruption"),
        ({"model": "none"}, r"noise.corruptions: Expected at least one corruption"),
        (
            [{}, {"model": "none", "corruptions": ["missing"], "rate": 1}],
            r"noise\[1\].rate: .*unknown key",
        ),
        ([{}, {"model": "nope"}], r"noise\[1\].model: Expected one of .*none"),
        ([{}, {"name": "a/b"}], r"noise\[1\].name: Expected a label"),
        ([{}, "missing"], r"noise\[1\]: Expected a mapping"),
    ],
)
def test_bad_noise_conditions_are_one_line_errors(
    noise: object, words: str, tmp_path: Path
) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**VALID, "noise": noise}))
    with pytest.raises(ConfigError, match=words) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and len(info.value.errors) == 1
