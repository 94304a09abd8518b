"""coco_evaluate against pycocotools' own COCOeval on the same detections."""

from __future__ import annotations

import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from noisybox.engine.evaluation import (
    IOU_THRESHOLDS,
    METRIC_NAMES,
    THRESHOLD_METRICS,
    coco_evaluate,
)


def _ground_truth(seed: int) -> dict:
    """Random COCO ground truth with small, medium and large boxes, a crowd box, an image
    without boxes and a category without boxes (its precision entries stay -1)."""
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id in range(1, 9):
        images.append({"id": image_id, "width": 320, "height": 240, "file_name": f"{image_id}.jpg"})
        if image_id == 8:
            continue
        for _ in range(int(rng.integers(1, 6))):
            side = float(rng.choice([12.0, 50.0, 130.0])) * rng.uniform(0.8, 1.2)
            w, h = side * rng.uniform(0.7, 1.3), side * rng.uniform(0.7, 1.3)
            x, y = rng.uniform(0, 320 - w), rng.uniform(0, 240 - h)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(rng.integers(1, 4)),
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": int(rng.uniform() < 0.05),
                }
            )
    categories = [{"id": k, "name": f"c{k}"} for k in (1, 2, 3, 7)]
    return {"images": images, "annotations": annotations, "categories": categories}


def _detections(gt: dict, seed: int) -> list[dict]:
    """Jittered copies of the boxes (some wrong class), missed boxes and false positives."""
    rng = np.random.default_rng(seed + 100)
    detections = []
    for ann in gt["annotations"]:
        if rng.uniform() < 0.15:
            continue
        x, y, w, h = ann["bbox"]
        jitter = rng.normal(0, rng.choice([0.003, 0.03, 0.08]), size=4) * [w, h, w, h]
        category = ann["category_id"] if rng.uniform() > 0.1 else int(rng.integers(1, 4))
        detections.append(
            {
                "image_id": ann["image_id"],
                "category_id": category,
                "bbox": [
                    x + jitter[0],
                    y + jitter[1],
                    max(w + jitter[2], 1),
                    max(h + jitter[3], 1),
                ],
                "score": float(rng.uniform(0.3, 1.0)),
            }
        )
    for _ in range(15):
        detections.append(
            {
                "image_id": int(rng.integers(1, 9)),
                "category_id": int(rng.integers(1, 4)),
                "bbox": [
                    *rng.uniform(0, 150, size=2).tolist(),
                    *rng.uniform(5, 90, size=2).tolist(),
                ],
                "score": float(rng.uniform(0.0, 0.6)),
            }
        )
    return detections


def _reference(gt: dict, detections: list[dict], iou_thresholds=None) -> np.ndarray:
    """COCOeval's own ``stats`` through the usual COCO / loadRes path."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(detections))
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        if iou_thresholds is not None:
            evaluator.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_cocoeval_stats(seed: int) -> None:
    gt = _ground_truth(seed)
    detections = _detections(gt, seed)
    metrics = coco_evaluate(gt, detections)
    stats = _reference(gt, detections)
    assert metrics["map"] == pytest.approx(stats[0], abs=1e-12)
    assert metrics["ap50"] == pytest.approx(stats[1], abs=1e-12)
    assert metrics["ap75"] == pytest.approx(stats[2], abs=1e-12)
    assert metrics["ap_small"] == pytest.approx(stats[3], abs=1e-12)
    assert metrics["ap_medium"] == pytest.approx(stats[4], abs=1e-12)
    assert metrics["ap_large"] == pytest.approx(stats[5], abs=1e-12)
    assert 0.0 < metrics["ap95"] < metrics["ap50"] < 1.0


def test_every_threshold_matches_a_single_threshold_cocoeval() -> None:
    gt = _ground_truth(3)
    detections = _detections(gt, 3)
    metrics = coco_evaluate(gt, detections)
    for name, threshold in zip(THRESHOLD_METRICS, IOU_THRESHOLDS, strict=True):
        assert metrics[name] == pytest.approx(_reference(gt, detections, [threshold])[0], abs=1e-12)
    expected = np.mean([metrics[f"ap{t}"] for t in (75, 80, 85, 90, 95)])
    assert metrics["map_75_95"] == pytest.approx(expected)
    assert metrics["map"] == pytest.approx(np.mean([metrics[n] for n in THRESHOLD_METRICS]))


def test_names_and_order() -> None:
    assert tuple(f"ap{t}" for t in range(50, 100, 5)) == THRESHOLD_METRICS
    gt = _ground_truth(0)
    assert tuple(coco_evaluate(gt, _detections(gt, 0))) == METRIC_NAMES


def test_empty_detections_give_zeros_and_no_output(capsys: pytest.CaptureFixture[str]) -> None:
    gt = _ground_truth(0)
    assert coco_evaluate(gt, []) == dict.fromkeys(METRIC_NAMES, 0.0)
    coco_evaluate(gt, _detections(gt, 0))
    assert capsys.readouterr().out == ""


def test_perfect_detections_score_one_even_with_annotation_id_zero() -> None:
    gt = _ground_truth(4)
    gt["annotations"] = [ann for ann in gt["annotations"] if not ann["iscrowd"]]
    for ann in gt["annotations"]:
        ann["id"] -= 1  # COCOeval would count a match to id 0 as a false positive
    detections = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 1.0,
        }
        for a in gt["annotations"]
    ]
    metrics = coco_evaluate(gt, detections)
    for name in (*THRESHOLD_METRICS, "map", "map_75_95"):
        assert metrics[name] == pytest.approx(1.0, abs=1e-9)


def test_inputs_are_not_modified() -> None:
    gt = _ground_truth(5)
    detections = _detections(gt, 5)
    gt_before, det_before = copy.deepcopy(gt), copy.deepcopy(detections)
    coco_evaluate(gt, detections)
    assert gt == gt_before
    assert detections == det_before


def test_ground_truth_as_path_dict_and_annotations_agree(tmp_path) -> None:
    from noisybox.formats import read_annotations

    gt = _ground_truth(6)
    path = tmp_path / "gt.json"
    path.write_text(json.dumps(gt))
    detections = _detections(gt, 6)
    from_dict = coco_evaluate(gt, detections)
    assert coco_evaluate(path, detections) == from_dict
    assert coco_evaluate(str(path), detections) == from_dict
    assert coco_evaluate(read_annotations(path), detections) == pytest.approx(from_dict)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_id": 99}, "image_id from the ground truth but got 99"),
        ({"category_id": 5}, "category_id in \\[1, 2, 3, 7\\] but got 5"),
        ({"bbox": [1, 2, 3]}, "bbox"),
    ],
)
def test_bad_detections_raise(change: dict, message: str) -> None:
    gt = _ground_truth(0)
    detection = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.5, **change}
    with pytest.raises(ValueError, match=message):
        coco_evaluate(gt, [detection])


def test_missing_ground_truth_key_raises() -> None:
    with pytest.raises(ValueError, match="'annotations' list"):
        coco_evaluate({"images": [], "categories": []}, [])


def test_known_answer_with_partial_overlaps() -> None:
    """AP50, AP75 and mAP of four scored boxes, worked out by hand from the COCO definition.

    Two ground-truth boxes g1 = [0, 0, 10, 10] and g2 = [20, 0, 10, 10] (xywh, one image,
    one category); detections by score: d1 (0.9) overlaps g1 with IoU 0.82, d2 (0.8) hits
    nothing, d3 (0.7) overlaps g2 with IoU 0.62, d4 (0.6) overlaps g1 with IoU 0.92.
    Each threshold t matches greedily in score order (IoU >= t, one detection per box);
    AP is the mean over the 101 recall points r = 0, 0.01, ..., 1 of the precision
    envelope at the first rank whose recall reaches r (0 when none does).

    - t = 0.50, 0.55, 0.60: TP FP TP FP, recall .5 .5 1 1, precision 1 .5 2/3 .5,
      envelope 1 2/3 2/3 .5: 51 points at 1 (r <= .5), 50 at 2/3 -> (51 + 100/3) / 101.
    - t = 0.65 ... 0.80: only d1 matches: 51 points at 1 -> 51 / 101.
    - t = 0.85, 0.90: only d4 matches, at rank 4 (precision 1/4) -> 51 / 4 / 101.
    - t = 0.95: nothing matches -> 0.
    """
    gt = {
        "images": [{"id": 1, "width": 100, "height": 100}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [20, 0, 10, 10], "area": 100, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "box"}],
    }  # fmt: skip
    detections = [
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 8.2], "score": 0.9},
        {"image_id": 1, "category_id": 1, "bbox": [50, 50, 10, 10], "score": 0.8},
        {"image_id": 1, "category_id": 1, "bbox": [20, 0, 6.2, 10], "score": 0.7},
        {"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 9.2], "score": 0.6},
    ]
    low, mid, high = (51 + 100 / 3) / 101, 51 / 101, 51 / 4 / 101
    expected = [low] * 3 + [mid] * 4 + [high] * 2 + [0.0]
    metrics = coco_evaluate(gt, detections)
    assert [metrics[name] for name in THRESHOLD_METRICS] == pytest.approx(expected, abs=1e-12)
    assert metrics["ap50"] == pytest.approx(253 / 303, abs=1e-12)
    assert metrics["ap75"] == pytest.approx(51 / 101, abs=1e-12)
    assert metrics["map"] == pytest.approx(482.5 / 1010, abs=1e-12)
    assert metrics["map_75_95"] == pytest.approx((2 * mid + 2 * high) / 5, abs=1e-12)
