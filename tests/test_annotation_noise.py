"""Annotation-level noise (``--missing``, ``--class-flip``, ``--extra``): counts as UNA
defines them, independence from the box noise, and the three writers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.corrupt import corrupt_annotations, corrupt_boxes
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations
from noisybox.noise.annotation import draw_annotation_noise
from noisybox.stats import compare_annotations

DATA = Path(__file__).parent / "data"
COCO_FILE = DATA / "coco" / "instances_tiny.json"
SOURCES = {"coco": COCO_FILE, "voc": DATA / "voc" / "VOC2007", "yolo": DATA / "yolo"}


def _draw(n: int = 200, **rates: float) -> object:
    sizes = np.array([[100.0, 80.0], [640.0, 480.0], [30.0, 20.0]])
    cats = np.arange(n) % 4
    return draw_annotation_noise(n, sizes, cats, np.arange(5), seed=3, **rates)


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.4])
def test_counts_follow_una(rate: float) -> None:
    noise = _draw(200, missing=rate, class_flip=rate, extra=rate)
    assert noise.counts["dropped"] == int(rate * 200)  # type: ignore[attr-defined]
    assert noise.counts["relabelled"] == int(rate * 200)  # type: ignore[attr-defined]
    assert noise.counts["added"] == round(rate * 200 / (1 - rate))  # type: ignore[attr-defined]
    added = noise.counts["added"]  # type: ignore[attr-defined]
    # the bogus boxes are the share `rate` of a set that had 200 boxes
    assert added / (200 + added) == pytest.approx(rate, abs=0.005)


def test_flips_always_change_the_class_and_never_touch_dropped_boxes() -> None:
    noise = _draw(500, missing=0.3, class_flip=0.5)
    flipped = noise.relabelled  # type: ignore[attr-defined]
    cats = np.arange(500) % 4
    assert np.all(noise.categories[flipped] != cats[flipped])  # type: ignore[attr-defined]
    assert np.all(noise.categories[~flipped] == cats[~flipped])  # type: ignore[attr-defined]
    assert not np.any(flipped & ~noise.keep)  # type: ignore[attr-defined]
    assert set(noise.categories.tolist()) <= set(range(5))  # type: ignore[attr-defined]


def test_extra_boxes_inside_their_image_and_at_least_a_pixel() -> None:
    noise = _draw(300, extra=0.5)
    boxes = noise.extra_boxes  # type: ignore[attr-defined]
    sizes = np.array([[100.0, 80.0], [640.0, 480.0], [30.0, 20.0]])[noise.extra_image_index]  # type: ignore[attr-defined]
    assert np.all(boxes[:, :2] >= 0) and np.all(boxes[:, 2:] <= sizes)
    assert np.all(boxes[:, 2:] - boxes[:, :2] >= 1.0)
    assert set(noise.extra_image_index.tolist()) == {0, 1, 2}  # type: ignore[attr-defined]


def test_seeded_and_independent_of_each_other() -> None:
    a = _draw(100, missing=0.2, extra=0.2)
    b = _draw(100, missing=0.2, extra=0.2, class_flip=0.3)
    assert np.array_equal(a.keep, b.keep)  # type: ignore[attr-defined]
    assert np.array_equal(a.extra_boxes, b.extra_boxes)  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("rates", "message"),
    [
        ({"missing": 1.0}, "Expected missing in [0, 1) but got 1.0"),
        ({"extra": -0.1}, "Expected extra in [0, 1) but got -0.1"),
        ({"class_flip": float("nan")}, "Expected class_flip in [0, 1)"),
    ],
)
def test_rates_outside_range_refused(rates: dict[str, float], message: str) -> None:
    with pytest.raises(NoisyboxError, match=message.replace("[", r"\[").replace(")", r"\)")):
        _draw(10, **rates)


def test_class_flip_needs_two_categories() -> None:
    with pytest.raises(NoisyboxError, match="at least two categories"):
        draw_annotation_noise(4, np.array([[10.0, 10.0]]), np.zeros(4, int), np.array([7]),
                              class_flip=0.5)  # fmt: skip


def test_box_noise_unchanged_by_annotation_noise() -> None:
    clean = read_annotations(COCO_FILE)
    plain = corrupt_boxes(clean, eta=0.2, seed=5)
    both = corrupt_boxes(clean, eta=0.2, seed=5, missing=0.3, class_flip=0.3, extra=0.3)
    assert plain.annotations.boxes.tobytes() == both.annotations.boxes.tobytes()
    assert both.edits is not None
    assert both.edits.keep[np.asarray(clean.iscrowd)].all()  # crowd boxes are never dropped


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_writers_drop_relabel_and_add_records(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / ("noisy.json" if fmt == "coco" else "noisy")
    result = corrupt_annotations(
        SOURCES[fmt], out, eta=0.1, seed=1, missing=0.3, class_flip=0.3, extra=0.3
    )
    c = result.counts
    assert c["dropped"] >= 1 and c["relabelled"] >= 1 and c["added"] >= 1
    clean = read_annotations(SOURCES[fmt])
    noisy = read_annotations(out)
    assert noisy.num_boxes == clean.num_boxes - c["dropped"] + c["added"]
    assert noisy.num_images == clean.num_images
    dropped = result.provenance["annotation_noise"]["dropped_records"]
    assert len(dropped) == c["dropped"]
    stats = compare_annotations(clean, noisy, partial=True, dropped=dropped)
    assert (stats.num_dropped, stats.num_added, stats.num_relabelled) == (
        c["dropped"], c["added"], c["relabelled"])  # fmt: skip
    assert stats.mean_iou == pytest.approx(result.stats.mean_iou, abs=1e-9)
    assert result.stats.num_dropped == c["dropped"]
    manifest = result.provenance
    assert manifest["annotation_noise"]["missing"] == {"rate": 0.3, "seed": [1, 1]}
    assert manifest["annotation_noise"]["extra"]["seed"] == [1, 3]
    # the kept records carry the drawn categories
    assert result.edits is not None
    kept_ids = [rid for rid, k in zip(clean.record_ids, result.edits.keep, strict=True) if k]
    if fmt == "coco":  # ids survive; YOLO and VOC number records by position
        row = {rid: k for k, rid in enumerate(noisy.record_ids)}
        got = [int(noisy.categories[row[rid]]) for rid in kept_ids]
        assert got == result.edits.categories[result.edits.keep].tolist()


def test_coco_keeps_every_other_key(tmp_path: Path) -> None:
    out = tmp_path / "n.json"
    corrupt_annotations(COCO_FILE, out, eta=0.0, seed=2, missing=0.3, extra=0.3)
    before = json.loads(COCO_FILE.read_text())
    after = json.loads(out.read_text())
    assert after["images"] == before["images"] and after["categories"] == before["categories"]
    old = {a["id"]: a for a in before["annotations"]}
    for ann in after["annotations"]:
        if ann["id"] in old:
            assert ann == old[ann["id"]]  # eta 0: kept records are untouched
        else:
            assert ann["id"] > max(old) and ann["iscrowd"] == 0


def test_voc_ids_renumbered_from_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "noisy"
    corrupt_annotations(SOURCES["voc"], out, eta=0.1, seed=1, missing=0.3)
    run = CliRunner().invoke(main, ["iou", str(SOURCES["voc"]), str(out), "--partial", "--json"])
    assert run.exit_code == 0, run.output
    figures = json.loads(run.stdout)
    assert (figures["num_dropped"], figures["num_added"], figures["num_relabelled"]) == (1, 0, 0)


def test_cli_options_and_iou_partial(tmp_path: Path) -> None:
    out = tmp_path / "n.json"
    run = CliRunner().invoke(
        main,
        [
            "corrupt",
            str(COCO_FILE),
            "-o",
            str(out),
            "--missing",
            "0.3",
            "--extra",
            "0.3",
            "--class-flip",
            "0.3",
            "--seed",
            "1",
            "--json",
            "-q",
        ],  # fmt: skip
    )
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    strict = CliRunner().invoke(main, ["iou", str(COCO_FILE), str(out)])
    assert strict.exit_code == 1 and "missing" in strict.stderr
    partial = CliRunner().invoke(main, ["iou", str(COCO_FILE), str(out), "--partial", "--json"])
    assert partial.exit_code == 0, partial.output
    assert json.loads(partial.stdout) == report["iou"]
    assert report["iou"]["num_dropped"] == report["counts"]["dropped"]
