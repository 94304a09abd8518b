"""Annotation-level noise (``--missing``, ``--class-flip``, ``--extra``, ``--relocate``):
counts as UNA defines them, independence from the box noise and of each other, and the
three writers."""

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
from noisybox.noise.annotation_noise import draw_annotation_noise, relocate_boxes
from noisybox.stats import compare_annotations

DATA = Path(__file__).parent / "data"
COCO_FILE = DATA / "coco" / "instances_tiny.json"
SOURCES = {"coco": COCO_FILE, "voc": DATA / "voc" / "VOC2007", "yolo": DATA / "yolo"}


SIZES = np.array([[100.0, 80.0], [640.0, 480.0], [30.0, 20.0]])
BOXES = np.array([[10.0, 10.0, 30.0, 20.0], [100.0, 50.0, 300.0, 250.0], [0.0, 0.0, 8.0, 6.0]])


def _draw(n: int = 200, **rates: float) -> object:
    """``n`` boxes on three images in turn (the boxes matter to ``relocate`` only)."""
    img = np.arange(n) % 3
    return draw_annotation_noise(n, SIZES, np.arange(n) % 4, np.arange(5), seed=3,
                                 boxes=BOXES[img], box_image_index=img, **rates)  # fmt: skip


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


# -- relocate: UNA's localization noise (make_loc) ------------------------------------------


def test_relocate_golden_value() -> None:
    noise = _draw(12, missing=0.25, relocate=0.25)
    assert np.flatnonzero(~noise.keep).tolist() == [2, 6, 9]  # type: ignore[attr-defined]
    assert np.flatnonzero(noise.relocated).tolist() == [0, 7, 10]  # type: ignore[attr-defined]
    # row 0, box (10, 10, 30, 20) on a 100 x 80 image, uniforms 0.1030 0.5108 0.7121 0.1782:
    # x = 0 + 40 u, y = 5 + 20 u, sorted: (4.12, 8.56, 20.43, 19.24); row 10, box
    # (100, 50, 300, 250) on 640 x 480: y = -50 + 400 * 0.1001 < 0 is clipped to 0
    assert noise.relocated_boxes.round(4).tolist() == [  # type: ignore[attr-defined]
        [4.1209, 8.5638, 20.434, 19.2419],
        [315.6707, 196.5503, 345.2843, 222.1738],
        [103.8897, 0.0, 197.9055, 335.4269],
    ]


def test_existing_draws_are_those_recorded_before_relocate() -> None:
    """Golden values of missing, class_flip and extra recorded with the code before
    relocate existed: appending it changed none of their draws."""
    noise = _draw(12, missing=0.25, class_flip=0.25, extra=0.25, relocate=0.25)
    assert np.flatnonzero(~noise.keep).tolist() == [2, 6, 9]  # type: ignore[attr-defined]
    assert np.flatnonzero(noise.relabelled).tolist() == [0, 7, 11]  # type: ignore[attr-defined]
    assert noise.categories[[0, 7, 11]].tolist() == [4, 4, 4]  # type: ignore[attr-defined]
    assert noise.extra_categories.tolist() == [3, 0, 1, 3]  # type: ignore[attr-defined]
    assert noise.extra_boxes[0].round(4).tolist() == [83.5123, 15.4262, 99.9082, 44.2573]  # type: ignore[attr-defined]


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.4])
def test_relocate_count_follows_una(rate: float) -> None:
    assert _draw(200, relocate=rate).counts["relocated"] == int(rate * 200)  # type: ignore[attr-defined]
    # like class_flip: int(r N) of the N boxes, drawn among the boxes kept
    noise = _draw(200, missing=rate, relocate=rate)
    assert noise.counts["relocated"] == int(rate * 200)  # type: ignore[attr-defined]
    assert not np.any(noise.relocated & ~noise.keep)  # type: ignore[attr-defined]
    # more to move than boxes left: all of them (UNA's idx[:num_noise])
    many = _draw(10, missing=0.6, relocate=0.9)
    assert many.counts["relocated"] == 10 - int(0.6 * 10)  # type: ignore[attr-defined]


def test_relocate_counts_absent_unless_asked() -> None:
    assert "relocated" not in _draw(50, missing=0.2).counts  # type: ignore[attr-defined]
    assert _draw(3, relocate=0.2).counts["relocated"] == 0  # type: ignore[attr-defined]
    with pytest.raises(NoisyboxError, match="boxes and their image rows"):
        draw_annotation_noise(4, SIZES, np.zeros(4, int), np.arange(2), relocate=0.5)


def test_relocated_boxes_near_their_own_inside_the_image() -> None:
    rng = np.random.default_rng(0)
    wh = np.array([[200.0, 100.0]] * 2000)
    xy = rng.uniform(0, 150, size=(2000, 2)) * [1, 0.5]
    size = rng.uniform(0.5, 50, size=(2000, 2))
    boxes = np.concatenate([xy, np.minimum(xy + size, wh)], axis=1)
    new = relocate_boxes(boxes, wh, rng.uniform(size=(2000, 4)))
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert np.all(new[:, :2] >= 0) and np.all(new[:, 2:] <= wh)
    assert np.all(new[:, 2] - new[:, 0] >= 0.01) and np.all(new[:, 3] - new[:, 1] >= 0.01)
    # every corner lies in the 2w x 2h box centred on the clean one
    assert np.all(new[:, [0, 2]] >= (boxes[:, 0] - w / 2 - 1e-9)[:, None])
    assert np.all(new[:, [0, 2]] <= (boxes[:, 2] + w / 2 + 1e-9)[:, None])
    assert np.all(new[:, [1, 3]] >= (boxes[:, 1] - h / 2 - 1e-9)[:, None])
    assert np.all(new[:, [1, 3]] <= (boxes[:, 3] + h / 2 + 1e-9)[:, None])
    # where the 2w x 2h window lies inside the image, the corners are uniform over it:
    # the centre does not move on average, and E|u1 - u2| 2w = 2w / 3
    inner = (boxes[:, 0] - w / 2 >= 0) & (boxes[:, 2] + w / 2 <= wh[:, 0])
    assert inner.sum() > 1000
    shift = ((new[:, 0] + new[:, 2]) - (boxes[:, 0] + boxes[:, 2])) / 2 / w
    assert abs(shift[inner].mean()) < 0.03
    assert np.mean((new[:, 2] - new[:, 0])[inner] / w[inner]) == pytest.approx(2 / 3, abs=0.03)
    # extra columns are kept; nothing to move is nothing
    assert relocate_boxes(np.array([[0.0, 0, 4, 4, 7]]), wh[:1], np.full((1, 4), 0.5))[0, 4] == 7
    assert relocate_boxes(np.zeros((0, 4)), np.zeros((0, 2)), np.zeros((0, 4))).shape == (0, 4)


def test_relocate_is_independent_of_the_other_corruptions() -> None:
    base = _draw(300, missing=0.2, relocate=0.3)
    more = _draw(300, missing=0.2, relocate=0.3, class_flip=0.4, extra=0.2)
    assert np.array_equal(base.relocated, more.relocated)  # type: ignore[attr-defined]
    assert np.array_equal(base.relocated_boxes, more.relocated_boxes)  # type: ignore[attr-defined]
    without = _draw(300, missing=0.2, class_flip=0.4, extra=0.2)
    for name in ("keep", "categories", "relabelled", "extra_boxes", "extra_categories"):
        assert np.array_equal(getattr(without, name), getattr(more, name)), name
    # a relocated box may also be relabelled (UNA's make_class picks among all boxes)
    assert np.any(more.relocated & more.relabelled)  # type: ignore[attr-defined]


def test_relocate_keeps_box_noise_of_the_others_and_never_moves_crowd() -> None:
    clean = read_annotations(COCO_FILE)
    plain = corrupt_boxes(clean, eta=0.2, seed=5)
    moved = corrupt_boxes(clean, eta=0.2, seed=5, relocate=0.5)
    assert moved.edits is not None and moved.edits.relocated is not None
    rows = moved.edits.relocated
    assert rows.sum() == moved.counts["relocated"] == int(0.5 * (~clean.iscrowd).sum())
    assert not np.any(rows & clean.iscrowd)
    assert np.array_equal(plain.annotations.boxes[~rows], moved.annotations.boxes[~rows])
    assert not np.array_equal(plain.annotations.boxes[rows], moved.annotations.boxes[rows])
    assert moved.edits.keep.all() and np.array_equal(moved.edits.categories, clean.categories)


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_writers_write_relocated_boxes_and_keep_everything_else(fmt: str, tmp_path: Path) -> None:
    out = tmp_path / ("noisy.json" if fmt == "coco" else "noisy")
    result = corrupt_annotations(SOURCES[fmt], out, eta=0.0, seed=4, relocate=0.6)
    clean = read_annotations(SOURCES[fmt])
    noisy = read_annotations(out)
    assert result.edits is not None and result.edits.relocated is not None
    moved = result.edits.relocated
    assert moved.sum() == result.counts["relocated"] >= 1
    # same records, ids, images and classes; the relocated boxes as written, the rest clean
    assert noisy.record_ids == clean.record_ids
    assert np.array_equal(noisy.categories, clean.categories)
    assert np.array_equal(noisy.box_image_index, clean.box_image_index)
    assert np.allclose(noisy.boxes, result.annotations.boxes, atol=1e-6)
    assert np.array_equal(noisy.boxes[~moved], clean.boxes[~moved])
    record = result.provenance["annotation_noise"]
    assert record["relocate"] == {"rate": 0.6, "seed": [4, 4]}
    ids = [rid for rid, m in zip(clean.record_ids, moved.tolist(), strict=True) if m]
    assert record["relocated_records"] == ids
    # measured apart: the figures over the others (eta 0: IoU 1), the relocated ones alone
    assert result.stats.mean_iou == 1.0 and result.stats.relocated is not None
    assert result.stats.relocated["num_boxes"] == len(ids)
    again = compare_annotations(clean, noisy, relocated=ids)
    assert again.to_dict() == result.stats.to_dict()
    if fmt == "coco":  # every key of every record but the moved boxes' bbox
        before = json.loads(COCO_FILE.read_text())
        after = json.loads(out.read_text())
        assert after["images"] == before["images"]
        for a, b in zip(after["annotations"], before["annotations"], strict=True):
            if a["id"] in ids:
                a, b = ({k: v for k, v in x.items() if k != "bbox"} for x in (a, b))
            assert a == b


def test_relocate_with_missing_on_voc_matches_by_the_manifest(tmp_path: Path) -> None:
    out = tmp_path / "noisy"
    result = corrupt_annotations(SOURCES["voc"], out, eta=0.1, seed=1, missing=0.3,
                                 relocate=0.4)  # fmt: skip
    run = CliRunner().invoke(main, ["iou", str(SOURCES["voc"]), str(out), "--partial", "--json"])
    assert run.exit_code == 0, run.output
    figures = json.loads(run.stdout)
    assert figures == result.provenance["iou"]
    assert figures["relocated"]["num_boxes"] == result.counts["relocated"] >= 1
    assert figures["num_dropped"] == result.counts["dropped"] >= 1


def test_cli_relocate_and_iou(tmp_path: Path) -> None:
    out = tmp_path / "n.json"
    args = ["corrupt", str(COCO_FILE), "-o", str(out), "--relocate", "0.5", "--seed", "2"]
    run = CliRunner().invoke(main, [*args, "--json", "-q"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert report["counts"]["relocated"] == report["iou"]["relocated"]["num_boxes"] == 2
    # the same records: iou works without --partial and reports them apart too
    for extra in ([], ["--partial"]):
        again = CliRunner().invoke(main, ["iou", str(COCO_FILE), str(out), "--json", *extra])
        assert again.exit_code == 0, again.output
        assert json.loads(again.stdout) == report["iou"]
    text = CliRunner().invoke(main, [*args[:3], str(tmp_path / "t.json"), *args[4:]])
    assert "relocated: 2" in text.stdout and "records relocated: 2" in text.stdout


def test_no_relocated_key_without_relocate(tmp_path: Path) -> None:
    result = corrupt_annotations(COCO_FILE, tmp_path / "n.json", eta=0.2, seed=0, missing=0.3)
    assert "relocated" not in result.provenance["iou"]
    assert "relocated" not in result.counts
    assert "relocated_records" not in result.provenance["annotation_noise"]


@pytest.mark.parametrize("rate", [1.0, -0.1, float("nan")])
def test_relocate_rate_outside_range_refused(rate: float) -> None:
    with pytest.raises(NoisyboxError, match=r"Expected relocate in \[0, 1\) but got"):
        corrupt_boxes(read_annotations(COCO_FILE), eta=0.1, relocate=rate)
