"""``noisybox corrupt`` and ``noisybox iou`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from noisybox.cli import main

DATA = Path(__file__).parent / "data"
COCO_FILE = DATA / "coco" / "instances_tiny.json"
VOC_DIR = DATA / "voc" / "VOC2007"
YOLO_DIR = DATA / "yolo"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_corrupt_prints_figures_and_iou_agrees(tmp_path: Path) -> None:
    out = tmp_path / "noisy.json"
    code, stdout, _ = _run("corrupt", "--eta", "0.2", str(COCO_FILE), "-o", str(out), "--seed", "4")
    assert code == 0, stdout
    assert "mean IoU per box" in stdout and "mean IoU per image" in stdout
    assert "share IoU < 0.5" in stdout and "cat:" in stdout and "crowd untouched: 1" in stdout
    code, js, _ = _run(
        "corrupt", "--eta", "0.2", str(COCO_FILE), "-o", str(out), "--seed", "4", "--json", "-q"
    )
    report = json.loads(js)
    assert report["seed"] == 4 and report["iou"]["num_boxes"] == 4
    code, js2, _ = _run("iou", str(COCO_FILE), str(out), "--json")
    assert code == 0 and json.loads(js2) == report["iou"]


@pytest.mark.parametrize("source", [VOC_DIR, YOLO_DIR])
def test_corrupt_folders(source: Path, tmp_path: Path) -> None:
    code, stdout, _ = _run("corrupt", str(source), "-o", str(tmp_path / "o"), "--eta", "0.1",
                           "--boundary", "truncate", "--noise-model", "gaussian", "--ratio", "0.5")  # fmt: skip
    assert code == 0, stdout
    assert (tmp_path / "o" / "noisybox-manifest.json").is_file()


@pytest.mark.parametrize("eta", ["1.0", "-0.1", "1.5"])
def test_eta_outside_range_refused(eta: str, tmp_path: Path) -> None:
    code, _, err = _run("corrupt", "--eta", eta, str(COCO_FILE), "-o", str(tmp_path / "o.json"))
    assert code == 2 and "--eta" in err
    assert not (tmp_path / "o.json").exists()


def test_bad_input_one_line_no_traceback_no_output(tmp_path: Path) -> None:
    doc = json.loads(COCO_FILE.read_text())
    doc["annotations"][1]["bbox"] = [0, 0, float("nan"), 5]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))  # json writes NaN, which is not valid strict JSON
    before = bad.read_bytes()
    out = tmp_path / "o.json"
    code, stdout, err = _run("corrupt", str(bad), "-o", str(out))
    assert code == 1
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Expected")
    assert "bad.json" in lines[0] and "102" in lines[0] and "non-finite" in lines[0]
    assert not out.exists() and bad.read_bytes() == before
    code, _, err = _run("corrupt", str(bad), "-o", str(out), "--on-invalid", "skip")
    assert code == 0 and out.exists()


def test_malformed_json_and_same_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [')
    code, _, err = _run("corrupt", str(bad), "-o", str(tmp_path / "o.json"))
    assert code == 1 and "Expected valid JSON" in err and "bad.json" in err
    code, _, err = _run("corrupt", str(COCO_FILE), "-o", str(COCO_FILE))
    assert code == 1 and "different from the input" in err


def test_iou_missing_record(tmp_path: Path) -> None:
    doc = json.loads(COCO_FILE.read_text())
    doc["annotations"] = doc["annotations"][:2]
    other = tmp_path / "fewer.json"
    other.write_text(json.dumps(doc))
    code, _, err = _run("iou", str(COCO_FILE), str(other))
    assert code == 1 and "record 103" in err and "missing" in err


def test_voc_image_set_and_yolo_labels_folder(tmp_path: Path) -> None:
    code, js, _ = _run(
        "corrupt", str(VOC_DIR), "-o", str(tmp_path / "v"), "--image-set", "train", "--json"
    )
    assert code == 0 and json.loads(js)["counts"]["boxes"] == 4
    assert sorted(p.name for p in (tmp_path / "v" / "Annotations").iterdir()) == [
        "000001.xml",
        "000003.xml",
    ]
    labels = YOLO_DIR / "labels"
    code, js, _ = _run("corrupt", str(labels), "-o", str(tmp_path / "y"), "--format", "yolo",
                       "--image-root", str(YOLO_DIR / "images"), "--json")  # fmt: skip
    assert code == 0 and json.loads(js)["counts"]["boxes"] == 4


def test_library_progress_goes_to_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from noisybox.corrupt import corrupt_annotations

    corrupt_annotations(VOC_DIR, tmp_path / "o", eta=0.1, progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "corrupt" in captured.err


def test_corrupt_plot_writes_histogram_png(tmp_path: Path) -> None:
    out, plot = tmp_path / "noisy.json", tmp_path / "hist.png"
    code, stdout, _ = _run(
        "corrupt", "--eta", "0.3", str(COCO_FILE), "-o", str(out), "-q", "--plot", str(plot)
    )
    assert code == 0, stdout
    data = plot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_corrupt_leads_with_the_papers_statistic(tmp_path: Path) -> None:
    code, stdout, _ = _run("corrupt", str(VOC_DIR), "-o", str(tmp_path / "o"), "--eta", "0.3")
    assert code == 0, stdout
    figures = [line for line in stdout.splitlines() if line.startswith("mean IoU")]
    assert figures[0].startswith("mean IoU per image") and "paper's statistic" in figures[0]
    assert figures[1].startswith("mean IoU per box")
    code, js, _ = _run("corrupt", str(VOC_DIR), "-o", str(tmp_path / "o"), "--eta", "0.3", "--json")
    report = json.loads(js)
    assert list(report)[:6] == ["output", "tool", "noisybox_version", "source", "format", "iou"]
    assert list(report["iou"])[:3] == ["paper_statistic", "mean_image_iou", "mean_iou"]
    assert report["iou"]["paper_statistic"] == "mean_image_iou"
    manifest = json.loads((tmp_path / "o" / "noisybox-manifest.json").read_text())
    assert list(manifest["iou"])[:3] == ["paper_statistic", "mean_image_iou", "mean_iou"]


def test_corrupt_several_inputs_one_command(tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ("corrupt", str(VOC_DIR), str(COCO_FILE), "-o", str(out), "--eta", "0.3", "--seed", "2")
    code, stdout, _ = _run(*args)
    assert code == 0, stdout
    assert "2 inputs drawn as one set (VOC2007 (voc), instances_tiny.json (coco))" in stdout
    assert "  VOC2007: " in stdout and "  instances_tiny.json: " in stdout
    code, js, _ = _run(*args, "--json")
    report = json.loads(js)
    assert report["source"] == ["VOC2007", "instances_tiny.json"] and report["seed"] == 2
    assert report["counts"]["boxes"] == 10 and report["iou"]["num_boxes"] == 9
    assert (out / "VOC2007" / "Annotations").is_dir() and (out / "instances_tiny.json").is_file()
    # a noisy copy inside is compared with its clean input as usual
    code, js2, _ = _run("iou", str(COCO_FILE), str(out / "instances_tiny.json"), "--json")
    assert (
        code == 0
        and json.loads(js2)["mean_image_iou"] == report["parts"][1]["iou"]["mean_image_iou"]
    )


def test_corrupt_several_inputs_one_line_errors(tmp_path: Path) -> None:
    out = tmp_path / "o"
    code, _, err = _run(
        "corrupt", str(VOC_DIR), str(VOC_DIR / "Annotations" / ".."), "-o", str(out)
    )
    assert code == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and "distinct names" in err
    code, _, err = _run("corrupt", "-o", str(out))
    assert code == 2 and "Missing argument" in err
    assert not out.exists()
