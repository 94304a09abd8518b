"""Trustworthy results (#28): provenance in records, a validation split and calibration that
never reads the test split, pre-registered protocols stamped before the first cell, and the
live evaluation lines."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.data import make_shapes_dataset
from noisybox.errors import NoisyboxError
from noisybox.report.writer import write_report
from noisybox.study.loading import ConfigError, load_config
from noisybox.study.protocol import protocol_skeleton
from noisybox.study.provenance import (
    code_identity,
    code_versions,
    describe_code,
    source_sha256,
)
from noisybox.study.results import ResultsFolder
from noisybox.study.runner import calibration_config, run_benchmark

REPO = Path(__file__).resolve().parents[1]
TINY = {
    "name": "tiny",
    "dataset": {"builtin": "shapes", "num_train": 6, "num_val": 4, "image_size": 64, "seed": 0},
    "detectors": [{"name": "retinanet", "backbone": "resnet18", "options": {"fpn_channels": 32}}],
    "losses": ["iou", {"name": "alpha-iou", "alpha": 3}],
    "etas": [0.0],
    "seeds": [0],
    "schedule": {"epochs": 1, "batch_size": 3, "image_size": 64, "workers": 0},
    "device": "cpu",
}


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)


def test_code_identity_names_the_checkout_and_hashes_the_sources() -> None:
    code = code_identity()
    assert code["source_sha256"] == source_sha256()
    assert len(code["source_sha256"]) == 64
    if (REPO / ".git").exists():  # a checkout: the commit and whether it was dirty
        assert len(code["git_commit"]) == 40
        assert isinstance(code["git_dirty"], bool)


@pytest.mark.slow
def test_records_carry_provenance_and_other_code_cannot_resume(tmp_path: Path) -> None:
    cfg = load_config(TINY)
    out = tmp_path / "out"
    run_benchmark(cfg, out, shard=(0, 2), progress=False)  # the iou cell only
    folder = ResultsFolder(out)
    (record,) = folder.load_records()
    prov = record["provenance"]
    assert prov["code"] == code_identity()
    assert set(prov["libraries"]) >= {"torch", "torchvision", "numpy", "python"}
    assert prov["device"] == "cpu" and prov["dtype"] == "float32" and prov["threads"] >= 1
    assert len(prov["config_sha256"]) == 64
    assert record["evaluated_on"] == "test"

    # the finished cell was trained by other code: continuing is refused, nothing written
    record["provenance"]["code"] = {"version": "0.0.9", "source_sha256": "0" * 64}
    folder.write_record(record)
    before = folder.config_json.read_bytes()
    with pytest.raises(NoisyboxError, match="--allow-code-change"):
        run_benchmark(cfg, out, progress=False)
    assert folder.config_json.read_bytes() == before
    assert len(folder.load_records()) == 1

    result = CliRunner().invoke(main, ["run-benchmark", "--out", str(out), "-q", "-j", "1"])
    assert result.exit_code == 1 and "--allow-code-change" in result.output
    # the cli needs a config: give the stored one
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    result = CliRunner().invoke(main, ["run-benchmark", str(config), "--out", str(out), "-j", "1"])
    assert result.exit_code == 1 and "other code trained" in result.output

    result = CliRunner().invoke(
        main,
        ["run-benchmark", str(config), "--out", str(out), "-j", "1", "--allow-code-change"],
    )
    assert result.exit_code == 0, result.output
    # which checkout trains is said before the first cell: python -m imports the current
    # folder's package first, whatever PYTHONPATH says
    from noisybox.study.provenance import package_root

    assert f"code: {describe_code(code_identity())} in {package_root()}" in result.output
    stored = folder.read_stored()
    assert stored["code_changes"][0]["from"] == ["000000000000"]
    versions = code_versions(folder.load_records())
    assert len(versions) == 2
    text = write_report(out, plots=False).markdown
    assert "## Code" in text and "noisybox 0.0.9" in text and "--allow-code-change" in text
    status = CliRunner().invoke(main, ["status", str(out)])
    assert status.exit_code == 0 and "noisybox 0.0.9" in status.output


def test_report_of_records_without_provenance_says_so(tmp_path: Path) -> None:
    published = REPO / "benchmarks" / "results" / "paper-mini"
    out = tmp_path / "paper-mini"
    shutil.copytree(published, out, ignore=shutil.ignore_patterns("report"))
    text = write_report(out, plots=False).markdown
    assert "which code trained them cannot be told" in text


def test_shapes_validation_split_leaves_train_and_test_unchanged(tmp_path: Path) -> None:
    old = make_shapes_dataset(tmp_path / "a", num_train=3, num_val=2, num_calib=0, image_size=64)
    new = make_shapes_dataset(tmp_path / "b", num_train=3, num_val=2, num_calib=2, image_size=64)
    assert old.calib_annotations is None and not (tmp_path / "a" / "instances_calib.json").exists()
    for name in ("instances_train.json", "instances_val.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    calib = json.loads(new.calib_annotations.read_text())
    val = json.loads(new.val_annotations.read_text())
    assert len(calib["images"]) == 2 and calib["info"]["split"] == "calib"
    assert calib["annotations"] != val["annotations"]  # its own stream


def test_make_dataset_writes_the_validation_split(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["make-dataset", "shapes", str(tmp_path / "s"), "--num-train", "2", "--num-val", "1"]
        + ["--num-calib", "1", "--image-size", "64", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["num_calib"] == 1
    assert (tmp_path / "s" / "images" / "calib" / "000001.png").is_file()


def test_calibration_config_is_clean_and_evaluates_on_val() -> None:
    study = load_config({**TINY, "etas": [0, 0.3], "seeds": [3, 4]})
    calib = calibration_config(study, losses=["alpha-iou"], schedule={"epochs": 7})
    assert calib.mode == "calibration" and calib.etas == (0.0,) and calib.seeds == (3,)
    assert [spec.name for spec in calib.losses] == ["alpha-iou"]
    assert calib.schedule["epochs"] == 7 and calib.name == "tiny-calibration"
    assert calib.fingerprint() != study.fingerprint()
    with pytest.raises(ConfigError, match="epochs"):
        calibration_config(study, schedule={"epochs": -1})
    with pytest.raises(ConfigError, match="losses"):
        calibration_config(study, losses=["giou"])


@pytest.mark.slow
def test_calibration_never_reads_the_test_split(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "etas": [0, 0.3], "losses": ["iou"]}))
    out = tmp_path / "calib"
    # the dataset as the calibration generates it, then its test split taken away: a read
    # of it would fail the run
    make_shapes_dataset(out / "work" / "data" / "shapes", num_train=6, num_val=4, image_size=64)
    (out / "work" / "data" / "shapes" / "dataset.json").write_text(
        json.dumps({"num_train": 6, "num_val": 4, "image_size": 64, "seed": 0})
    )
    (out / "work" / "data" / "shapes" / "instances_val.json").unlink()
    shutil.rmtree(out / "work" / "data" / "shapes" / "images" / "val")
    result = CliRunner().invoke(
        main, ["calibrate", str(config), "--out", str(out), "--set", "eval_every=1", "-j", "1"]
    )
    assert result.exit_code == 0, result.output
    (record,) = ResultsFolder(out).load_records()
    assert record["evaluated_on"] == "val" and record["cell"]["eta"] == 0
    assert record["train_config"]["test_annotations"].endswith("instances_calib.json")
    assert "## Calibration" in (out / "report" / "report.md").read_text()
    assert "epoch 1/1 eval: AP50" in result.output  # the live evaluation line (stderr)


def _study(tmp_path: Path, protocol: str | None = "PROTOCOL.md") -> Path:
    data = dict(TINY)
    if protocol is not None:
        data["protocol"] = protocol
    config = tmp_path / "study.yaml"
    config.write_text(yaml.safe_dump(data))
    return config


def test_a_named_protocol_must_exist(tmp_path: Path) -> None:
    config = _study(tmp_path)
    with pytest.raises(ConfigError, match="protocol: Expected an existing protocol file"):
        load_config(str(config))
    result = CliRunner().invoke(main, ["run-benchmark", str(config), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "noisybox protocol" in result.output
    assert not (tmp_path / "o").exists()


def test_protocol_skeleton_command(tmp_path: Path) -> None:
    config = _study(tmp_path, protocol=None)
    target = tmp_path / "PROTOCOL.md"
    result = CliRunner().invoke(main, ["protocol", str(config), "-o", str(target)])
    assert result.exit_code == 0, result.output
    text = target.read_text()
    assert "## Primary metric and decision rule" in text and "1 comparisons of mAP" in text
    assert "test split was not used for any choice" in text
    again = CliRunner().invoke(main, ["protocol", str(config), "-o", str(target)])
    assert again.exit_code == 1 and "it is kept" in again.output
    assert target.read_text() == text
    assert protocol_skeleton(load_config(str(config)).to_dict()) == text


@pytest.mark.slow
def test_protocol_is_stamped_before_the_first_cell_and_edits_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    protocol = tmp_path / "PROTOCOL.md"
    protocol.write_text("# Protocol\n\nPrimary: mAP at eta 0.\n")
    cfg = load_config(str(_study(tmp_path)))
    out = tmp_path / "out"
    seen: list[dict] = []
    import noisybox.study.runner as runner

    original = runner.launchers.run_local

    def spy(*args, **kwargs):  # the stamp is on disk when the first cell starts
        seen.append(json.loads((out / "benchmark.json").read_text()).get("protocol"))
        return original(*args, **kwargs)

    monkeypatch.setattr(runner.launchers, "run_local", spy)
    run_benchmark(cfg, out, shard=(0, 2), progress=False)
    assert seen[0] is not None and seen[0]["records_before"] == 0
    stamp = json.loads((out / "benchmark.json").read_text())["protocol"]
    assert stamp["text"] == protocol.read_text()
    assert "unchanged since" in write_report(out, plots=False).markdown

    protocol.write_text("# Protocol\n\nPrimary: mAP75:95 at eta 0.\n")  # edited afterwards
    run_benchmark(cfg, out, progress=False)  # the second cell: the stamp stays
    assert json.loads((out / "benchmark.json").read_text())["protocol"] == stamp
    text = write_report(out, plots=False).markdown
    assert "edited after it was stamped" in text
    assert "-Primary: mAP at eta 0." in text and "+Primary: mAP75:95 at eta 0." in text


# --------------------------------------------------------------------------- VOC image sets

BCCD = Path(
    os.environ.get("NOISYBOX_BCCD") or REPO.parent / "shared" / "realdata" / "bccd" / "BCCD"
)
needs_bccd = pytest.mark.skipif(not (BCCD / "Annotations").is_dir(), reason="BCCD not present")


def _voc_config(dataset: dict) -> dict:
    return {**TINY, "dataset": dataset, "losses": ["iou"]}


@needs_bccd
def test_bccd_by_name_gives_its_splits(tmp_path: Path) -> None:
    from noisybox.study.datasets import prepare_dataset
    from noisybox.study.results import open_results_folder

    study = load_config(_voc_config({"bccd": str(BCCD)}))
    assert study.dataset.image_sets["train"] == "trainval"
    folder, _ = open_results_folder(study, tmp_path / "s")
    data = prepare_dataset(study, folder)
    assert len(list((data.train_annotations / "Annotations").glob("*.xml"))) == 292
    assert len(list((data.test_annotations / "Annotations").glob("*.xml"))) == 72
    calib = calibration_config(study)
    folder, _ = open_results_folder(calib, tmp_path / "c")
    data = prepare_dataset(calib, folder)
    assert data.evaluated_on == "val"
    assert len(list((data.train_annotations / "Annotations").glob("*.xml"))) == 205
    assert len(list((data.test_annotations / "Annotations").glob("*.xml"))) == 87
    assert not (tmp_path / "c" / "work" / "data" / "voc" / "test").exists()
    # the environment variable stands for the path
    os.environ["NOISYBOX_BCCD"] = str(BCCD)
    try:
        assert load_config(_voc_config({"bccd": None})).dataset.voc == str(BCCD)
    finally:
        del os.environ["NOISYBOX_BCCD"]


def _copy_bccd(tmp_path: Path) -> Path:
    copy = tmp_path / "BCCD"
    shutil.copytree(BCCD / "Annotations", copy / "Annotations")
    shutil.copytree(BCCD / "ImageSets", copy / "ImageSets")
    (copy / "JPEGImages").symlink_to(BCCD / "JPEGImages")
    return copy


@needs_bccd
def test_changed_or_partial_bccd_is_refused_in_one_line(tmp_path: Path) -> None:
    copy = _copy_bccd(tmp_path)
    xml = copy / "Annotations" / "BloodImage_00001.xml"
    xml.write_text(xml.read_text().replace("<xmin>", "<xmin>1", 1))
    with pytest.raises(ConfigError, match="annotation files or split lists were changed"):
        load_config(_voc_config({"bccd": str(copy)}))
    # the same copy as a plain VOC folder with its image sets is accepted
    assert load_config(_voc_config({"voc": str(copy)})).dataset.name is None
    xml.unlink()
    with pytest.raises(ConfigError, match="partial copy"):
        load_config(_voc_config({"bccd": str(copy)}))


def test_voc_image_sets_must_not_share_test_images(tmp_path: Path) -> None:
    root = tmp_path / "VOC"
    shutil.copytree(REPO / "tests" / "data" / "voc" / "VOC2007", root)
    main_dir = root / "ImageSets" / "Main"
    (main_dir / "trainval.txt").write_text("000001\n000002\n")
    (main_dir / "val.txt").write_text("000002\n")
    (main_dir / "train.txt").write_text("000001\n")
    (main_dir / "test.txt").write_text("000002\n000003\n")
    with pytest.raises(ConfigError, match="share no image"):
        load_config(_voc_config({"voc": str(root)}))
    (main_dir / "test.txt").write_text("000003\n")
    cfg = load_config(_voc_config({"voc": str(root)}))
    assert cfg.dataset.image_sets == {
        "train": "trainval",
        "val": "val",
        "test": "test",
        "calibration_train": "train",
    }
    assert load_config(cfg.to_dict()) == cfg


@needs_bccd
def test_a_voc_folder_of_other_classes_has_only_its_own(tmp_path: Path) -> None:
    from noisybox.data import DetectionDataset
    from noisybox.formats import read_annotations

    ann = read_annotations(str(BCCD), image_set="test")
    assert ann.category_names == {0: "Platelets", 1: "RBC", 2: "WBC"}
    assert DetectionDataset(ann, BCCD).num_classes == 4  # 3 and the background
    pascal = read_annotations(str(REPO / "tests" / "data" / "voc" / "VOC2007"))
    assert pascal.category_names[14] == "person"  # Pascal numbering kept


def test_voc_image_sets_of_two_year_folders_read_as_one(tmp_path: Path) -> None:
    from noisybox.data.voc_splits import write_voc_split
    from noisybox.formats import read_annotations

    fixture = REPO / "tests" / "data" / "voc" / "VOC2007"
    a, b = tmp_path / "VOC2007", tmp_path / "VOC2012"
    shutil.copytree(fixture, a)
    (b / "Annotations").mkdir(parents=True)
    (b / "ImageSets" / "Main").mkdir(parents=True)
    for xml in sorted((fixture / "Annotations").glob("*.xml")):
        (b / "Annotations" / f"2012_{xml.name}").write_bytes(xml.read_bytes())
    ids = sorted(p.stem for p in (fixture / "Annotations").glob("*.xml"))
    (a / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(ids[:2]) + "\n")
    (a / "ImageSets" / "Main" / "test.txt").write_text(ids[2] + "\n")
    (b / "ImageSets" / "Main" / "trainval.txt").write_text(
        "\n".join(f"2012_{i}" for i in ids) + "\n"
    )
    cfg = load_config(
        _voc_config({"voc": [str(a), str(b)], "val": "trainval", "calibration_train": "test"}),
        check_paths=False,
    )
    assert cfg.dataset.voc == (str(a), str(b))
    assert load_config(cfg.to_dict(), check_paths=False) == cfg
    split = write_voc_split([a, b], "trainval", tmp_path / "out" / "trainval")
    assert len(list((split / "Annotations").glob("*.xml"))) == 2 + len(ids)
    assert (split / "JPEGImages" / f"2012_{ids[0]}.jpg").is_symlink()
    assert read_annotations(str(split)).num_images == 2 + len(ids)
    again = write_voc_split([a, b], "trainval", tmp_path / "out" / "trainval")
    assert again == split
    test = write_voc_split([a, b], "test", tmp_path / "out" / "test")  # VOC2007 only
    assert [p.stem for p in (test / "Annotations").glob("*.xml")] == [ids[2]]
    with pytest.raises(NoisyboxError, match="ImageSets/Main/val.txt"):
        write_voc_split([a, b], "val", tmp_path / "out" / "val")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(NoisyboxError):
        write_voc_split([a, b], "test", tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"


def test_the_report_finds_the_protocol_beside_the_results_on_another_machine(
    tmp_path: Path,
) -> None:
    from noisybox.study.protocol import protocol_section

    text = "# Protocol\n\nPrimary: mAP.\n"
    stored = {
        "config": {"protocol": "PROTOCOL.md"},
        "base_dir": str(tmp_path / "gone"),  # the checkout the study ran from: not here
        "protocol": {
            "file": "PROTOCOL.md",
            "sha256": __import__("hashlib").sha256(text.encode()).hexdigest(),
            "stamped_at": "t",
            "records_before": 0,
            "text": text,
        },
    }
    moved = tmp_path / "results"
    moved.mkdir()
    lines = "\n".join(protocol_section(stored, moved))
    assert "is not found beside the results" in lines and str(tmp_path) not in lines
    (moved / "PROTOCOL.md").write_text(text)
    assert "unchanged since" in "\n".join(protocol_section(stored, moved))
