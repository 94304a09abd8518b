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
from noisybox.formats import MANIFEST_NAME, concat_annotations, read_annotations
from noisybox.noise import NoiseSpec, draw_box_noise
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
        source, tmp_path / "o", eta=0.1, seed=2, boundary="truncate", noise_model="gaussian"
    )
    manifest = json.loads((tmp_path / "o" / MANIFEST_NAME).read_text())
    assert manifest == json.loads(json.dumps(result.provenance))
    assert manifest["boundary"] == "truncate" and manifest["model"] == "gaussian"
    # rerunning over an earlier output replaces it
    corrupt_annotations(
        source, tmp_path / "o", eta=0.1, seed=2, boundary="truncate", noise_model="gaussian"
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
        corrupt_annotations(COCO_FILE, out, eta=0.1, noise_model="nope")
    assert not out.exists()


def test_ratio_and_eta_per_axis(tmp_path: Path) -> None:
    root = tmp_path / "voc"
    shutil.copytree(VOC_DIR, root)
    result = corrupt_annotations(root, tmp_path / "o", eta=0.2, eta_h=0.0, ratio=0.6, seed=0)
    clean = read_annotations(root)
    noisy = read_annotations(tmp_path / "o")
    # round(0.6 * 5) = 3 boxes drawn (replayed from the seed), and exactly those changed
    sizes = clean.boxes[:, 2:] - clean.boxes[:, :2]
    drawn = draw_box_noise(
        np.random.default_rng(0), sizes, NoiseSpec(eta=0.2, eta_h=0.0, ratio=0.6)
    )
    chosen = np.flatnonzero(np.any(drawn != 0, axis=1))
    changed = np.flatnonzero(np.any(noisy.boxes != clean.boxes, axis=1))
    assert chosen.size == 3 and changed.tolist() == chosen.tolist()
    assert result.counts["perturbed"] == 3
    np.testing.assert_array_equal(noisy.boxes[:, [1, 3]], clean.boxes[:, [1, 3]])


def _devkit(tmp_path: Path) -> Path:
    """VOCdevkit/VOC2007 and VOCdevkit/VOC2012 (the fixture's files renamed), each with a
    trainval list leaving one file out, and VOC0712: the merged folder of links that
    datasets/voc0712.md builds."""
    devkit = tmp_path / "VOCdevkit"
    stems = {"2007": ["000001", "000002", "000003"], "2012": ["2008_000001", "2008_000002", "2008_000003"]}  # fmt: skip
    merged = devkit / "VOC0712"
    (merged / "Annotations").mkdir(parents=True)
    (merged / "ImageSets" / "Main").mkdir(parents=True)
    listing = []
    for year, names in stems.items():
        root = devkit / f"VOC{year}"
        (root / "Annotations").mkdir(parents=True)
        (root / "ImageSets" / "Main").mkdir(parents=True)
        for src, stem in zip(sorted((VOC_DIR / "Annotations").glob("*.xml")), names, strict=True):
            shutil.copy(src, root / "Annotations" / f"{stem}.xml")
        trainval = [names[0], names[2]]
        (root / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(trainval) + "\n")
        for stem in trainval:
            (merged / "Annotations" / f"{stem}.xml").symlink_to(
                root / "Annotations" / f"{stem}.xml"
            )
        listing += trainval
    (merged / "ImageSets" / "Main" / "trainval.txt").write_text("\n".join(listing) + "\n")
    return devkit


def test_several_inputs_one_draw_equals_the_merged_folder(tmp_path: Path) -> None:
    devkit = _devkit(tmp_path)
    inputs = [devkit / "VOC2007", devkit / "VOC2012"]
    both = corrupt_annotations(inputs, tmp_path / "both", eta=0.3, seed=4, image_set="trainval")
    merged = corrupt_annotations(
        devkit / "VOC0712", tmp_path / "merged", eta=0.3, seed=4, image_set="trainval"
    )
    # the same boxes in the same order get the same draw: byte-identical XML files
    for year in ("2007", "2012"):
        for xml in sorted((tmp_path / "both" / f"VOC{year}" / "Annotations").iterdir()):
            assert xml.read_bytes() == (tmp_path / "merged" / "Annotations" / xml.name).read_bytes()
    assert both.stats.to_dict() == merged.stats.to_dict()
    assert both.counts == merged.counts and both.counts["boxes"] == 8
    assert [p.output_path.name for p in both.parts] == ["VOC2007", "VOC2012"]
    assert both.stats.mean_image_iou < 1.0


def test_several_inputs_figures_are_those_of_what_was_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = corrupt_annotations([VOC_DIR, COCO_FILE, YOLO_DIR], out, eta=0.2, seed=1)
    clean = [read_annotations(p) for p in (VOC_DIR, COCO_FILE, YOLO_DIR)]
    written = [read_annotations(out / p.name) for p in (VOC_DIR, COCO_FILE, YOLO_DIR)]
    whole = compare_annotations(concat_annotations(clean), concat_annotations(written))
    assert whole.to_dict() == result.stats.to_dict()
    # images of every input count once: the per-image mean is the image-weighted mean of parts
    parts = [compare_annotations(c, w) for c, w in zip(clean, written, strict=True)]
    assert result.stats.num_images == sum(p.num_images for p in parts) == 3 + 2 + 2
    assert result.stats.mean_image_iou == pytest.approx(
        sum(p.mean_image_iou * p.num_images for p in parts) / result.stats.num_images
    )
    assert result.stats.mean_iou == pytest.approx(
        sum(p.mean_iou * p.num_boxes for p in parts) / result.stats.num_boxes
    )
    # categories are matched by name across inputs: COCO's "cat" (id 1) and YOLO's (id 0)
    cats = [
        sum(c.category_names[k] == "cat" for k in c.categories[~c.iscrowd].tolist()) for c in clean
    ]
    assert cats[1] > 0 and cats[2] > 0
    assert result.stats.per_category["cat"]["num_boxes"] == sum(cats)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest == json.loads(json.dumps(result.provenance))
    assert manifest["source"] == ["VOC2007", "instances_tiny.json", "yolo"]
    assert [p["iou"]["mean_image_iou"] for p in manifest["parts"]] == [
        p.mean_image_iou for p in parts
    ]
    voc_manifest = json.loads((out / "VOC2007" / MANIFEST_NAME).read_text())
    assert voc_manifest["sources"] == manifest["source"] and voc_manifest["seed"] == 1
    assert voc_manifest["iou"] == parts[0].to_dict()


def test_several_inputs_same_seed_same_bytes(tmp_path: Path) -> None:
    runs = {
        name: corrupt_annotations([VOC_DIR, COCO_FILE], tmp_path / name, eta=0.2, seed=seed)
        for name, seed in (("a", 5), ("b", 5), ("c", 6))
    }
    assert _digest(runs["a"].output_path) == _digest(runs["b"].output_path)
    assert _digest(runs["a"].output_path) != _digest(runs["c"].output_path)


def test_several_inputs_refused_write_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(NoisyboxError, match="distinct names but got 'VOC2007' twice"):
        corrupt_annotations([VOC_DIR, VOC_DIR], out, eta=0.2)
    with pytest.raises(NoisyboxError, match="single YOLO input"):
        corrupt_annotations([YOLO_DIR, COCO_FILE], out, eta=0.2, image_root=YOLO_DIR / "images")
    bad = _coco_with_bad_box(tmp_path, [0, 0, -5, 10])
    with pytest.raises(NoisyboxError, match=r"in.json \(record 201\)"):
        corrupt_annotations([VOC_DIR, bad], out, eta=0.2)
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    # an input inside the output folder would be deleted by replacing the folder
    corrupt_annotations([VOC_DIR, COCO_FILE], out, eta=0.2)
    before = _digest(out)
    with pytest.raises(NoisyboxError, match="a folder holding .*never writes over its inputs"):
        corrupt_annotations([out / "VOC2007", COCO_FILE], out, eta=0.2)
    with pytest.raises(NoisyboxError, match="a path inside"):
        corrupt_annotations([VOC_DIR, out], out / "VOC2007" / "again", eta=0.2)
    # a run failing after an earlier one leaves the earlier output whole: all or nothing
    with pytest.raises(NoisyboxError, match=r"in.json \(record 201\)"):
        corrupt_annotations([VOC_DIR, bad], out, eta=0.3, seed=9)
    assert _digest(out) == before and (out / "VOC2007" / "Annotations").is_dir()
    assert not list(tmp_path.glob(".out*"))


def test_several_inputs_write_all_or_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure while writing the second input's copy leaves no output, or the earlier one
    untouched, and no temporary folder (the copies are built in one folder swapped in)."""
    import noisybox.corrupt.files as corrupt_module

    real = corrupt_module.write_annotations
    calls: list[Path] = []

    def failing_second(ann: object, path: Path, **kwargs: object) -> None:
        calls.append(Path(path))
        if len(calls) == 2:
            raise NoisyboxError("disk full (simulated)")
        real(ann, path, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(corrupt_module, "write_annotations", failing_second)
    out = tmp_path / "out"
    with pytest.raises(NoisyboxError, match="simulated"):
        corrupt_annotations([VOC_DIR, COCO_FILE], out, eta=0.2)
    assert len(calls) == 2 and not out.exists() and not list(tmp_path.glob(".out*"))
    monkeypatch.setattr(corrupt_module, "write_annotations", real)
    corrupt_annotations([VOC_DIR, COCO_FILE], out, eta=0.2)
    before = _digest(out)
    monkeypatch.setattr(corrupt_module, "write_annotations", failing_second)
    calls.clear()
    with pytest.raises(NoisyboxError, match="simulated"):
        corrupt_annotations([VOC_DIR, COCO_FILE], out, eta=0.3, seed=3)
    assert _digest(out) == before and not list(tmp_path.glob(".out*"))
