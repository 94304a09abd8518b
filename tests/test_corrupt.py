"""corrupt_annotations end to end on every format."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from noisybox.boxes import elementwise_box_iou
from noisybox.corrupt import corrupt_annotations
from noisybox.errors import NoisyboxError
from noisybox.formats import MANIFEST_NAME, read_annotations
from noisybox.noise import draw_box_noise
from noisybox.stats import compare_annotations

DATA = Path(__file__).parent / "data"
COCO_FILE = DATA / "coco" / "instances_tiny.json"
VOC_DIR = DATA / "voc" / "VOC2007"
YOLO_DIR = DATA / "yolo"
SOURCES = [COCO_FILE, VOC_DIR, YOLO_DIR]


def _out(source: Path, tmp_path: Path, name: str = "out") -> Path:
    return tmp_path / (f"{name}.json" if source.suffix == ".json" else name)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else "").encode())
        h.update(f.read_bytes())
    return h.hexdigest()


@pytest.mark.parametrize("source", SOURCES)
def test_reported_iou_is_iou_of_what_was_written(source: Path, tmp_path: Path) -> None:
    before = _digest(source)
    out = _out(source, tmp_path)
    result = corrupt_annotations(source, out, eta=0.3, seed=1)
    clean = read_annotations(source)
    written = read_annotations(out)
    keep = ~clean.iscrowd
    iou = elementwise_box_iou(clean.boxes[keep], written.boxes[keep])
    assert result.stats.mean_iou == pytest.approx(iou.mean(), abs=1e-9)
    assert compare_annotations(clean, written).to_dict() == result.stats.to_dict()
    assert result.stats.mean_iou < 1.0
    assert _digest(source) == before  # input untouched
    # every written box is inside its image with positive size
    sizes = written.box_image_sizes()
    assert np.all(written.boxes[:, 2:] > written.boxes[:, :2])
    assert np.all(written.boxes[:, :2] >= -1e-9) and np.all(written.boxes[:, 2:] <= sizes + 1e-9)


@pytest.mark.parametrize("source", SOURCES)
def test_same_seed_same_bytes(source: Path, tmp_path: Path) -> None:
    a = corrupt_annotations(source, _out(source, tmp_path, "a"), eta=0.2, seed=5)
    b = corrupt_annotations(source, _out(source, tmp_path, "b"), eta=0.2, seed=5)
    c = corrupt_annotations(source, _out(source, tmp_path, "c"), eta=0.2, seed=6)
    assert _digest(a.output_path) == _digest(b.output_path)
    assert _digest(a.output_path) != _digest(c.output_path)


@pytest.mark.parametrize("source", SOURCES)
def test_eta_zero_writes_the_same_boxes(source: Path, tmp_path: Path) -> None:
    result = corrupt_annotations(source, _out(source, tmp_path), eta=0.0)
    assert result.counts["perturbed"] == 0
    assert result.stats.mean_iou == 1.0
    np.testing.assert_array_equal(
        read_annotations(result.output_path).boxes, read_annotations(source).boxes
    )


def test_coco_crowd_untouched_area_kept_provenance(tmp_path: Path) -> None:
    result = corrupt_annotations(COCO_FILE, tmp_path / "o.json", eta=0.25, seed=3)
    src = json.loads(COCO_FILE.read_text())
    out = json.loads((tmp_path / "o.json").read_text())
    crowd = [a for a in out["annotations"] if a["iscrowd"]]
    assert crowd == [a for a in src["annotations"] if a["iscrowd"]]
    assert [a["area"] for a in out["annotations"]] == [a["area"] for a in src["annotations"]]
    prov = out["info"]["noisybox"]
    assert prov["seed"] == 3 and prov["eta"] == 0.25 and prov["model"] == "uniform"
    assert prov["iou"]["mean_iou"] == pytest.approx(result.stats.mean_iou)
    assert result.counts == {
        "boxes": 5,
        "perturbed": 4,
        "crowd_untouched": 1,
        "invalid": 0,
        "skipped": 0,
        "clipped": 0,
    }
    assert result.stats.num_excluded == 1


@pytest.mark.parametrize("source", [VOC_DIR, YOLO_DIR])
def test_manifest_beside_output(source: Path, tmp_path: Path) -> None:
    result = corrupt_annotations(
        source, tmp_path / "o", eta=0.1, seed=2, boundary="truncate", model="gaussian"
    )
    manifest = json.loads((tmp_path / "o" / MANIFEST_NAME).read_text())
    assert manifest == json.loads(json.dumps(result.provenance))
    assert manifest["boundary"] == "truncate" and manifest["model"] == "gaussian"
    # rerunning over an earlier output replaces it
    corrupt_annotations(
        source, tmp_path / "o", eta=0.1, seed=2, boundary="truncate", model="gaussian"
    )


def _coco_with_bad_box(tmp_path: Path, bbox: list[float]) -> Path:
    doc = json.loads(COCO_FILE.read_text())
    doc["annotations"][3]["bbox"] = bbox
    path = tmp_path / "in.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("bbox", "reason"),
    [([0, 0, 0, 10], "zero or negative size"), ([0, 0, -5, 10], "zero or negative size"),
     ([250, 0, 100, 10], "outside the image")],
)  # fmt: skip
def test_invalid_box_policies(tmp_path: Path, bbox: list[float], reason: str) -> None:
    path = _coco_with_bad_box(tmp_path, bbox)
    out = tmp_path / "out.json"
    with pytest.raises(NoisyboxError, match=rf"{reason}.*in.json \(record 201\)"):
        corrupt_annotations(path, out, eta=0.2)
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    skipped = corrupt_annotations(path, out, eta=0.2, on_invalid="skip")
    assert skipped.counts["skipped"] == 1 and skipped.stats.num_boxes == 3
    assert json.loads(out.read_text())["annotations"][3]["bbox"] == bbox
    clipped = corrupt_annotations(path, out, eta=0.2, on_invalid="clip")
    if reason == "outside the image":
        assert clipped.counts["clipped"] == 1 and clipped.stats.num_boxes == 4
        x, y, w, h = json.loads(out.read_text())["annotations"][3]["bbox"]
        assert x >= 0 and x + w <= 300 + 1e-9
    else:
        assert clipped.counts["skipped"] == 1


def test_bad_parameters_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "o.json"
    with pytest.raises(NoisyboxError, match=r"Expected eta in \[0, 1\)"):
        corrupt_annotations(COCO_FILE, out, eta=1.0)
    with pytest.raises(NoisyboxError, match="different from the input"):
        corrupt_annotations(COCO_FILE, COCO_FILE, eta=0.1)
    with pytest.raises(NoisyboxError, match="on_invalid"):
        corrupt_annotations(COCO_FILE, out, eta=0.1, on_invalid="ignore")
    with pytest.raises(NoisyboxError, match="noise model"):
        corrupt_annotations(COCO_FILE, out, eta=0.1, model="nope")
    assert not out.exists()


def test_ratio_and_eta_per_axis(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(VOC_DIR, root)
    result = corrupt_annotations(root, tmp_path / "o", eta=0.2, eta_h=0.0, ratio=0.6, seed=0)
    clean = read_annotations(root)
    noisy = read_annotations(tmp_path / "o")
    # round(0.6 * 5) = 3 boxes drawn (replayed from the seed), and exactly those changed
    sizes = clean.boxes[:, 2:] - clean.boxes[:, :2]
    drawn = draw_box_noise(np.random.default_rng(0), sizes, 0.2, 0.0, ratio=0.6)
    chosen = np.flatnonzero(np.any(drawn != 0, axis=1))
    changed = np.flatnonzero(np.any(noisy.boxes != clean.boxes, axis=1))
    assert chosen.size == 3 and changed.tolist() == chosen.tolist()
    assert result.counts["perturbed"] == 3
    np.testing.assert_array_equal(noisy.boxes[:, [1, 3]], clean.boxes[:, [1, 3]])
