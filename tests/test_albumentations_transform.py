"""BoxNoise inside a real albumentations Compose."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from noisybox.boxes import box_convert, elementwise_box_iou
from noisybox.noise import BoxNoise

H, W = 60, 120
IMAGE = np.zeros((H, W, 3), dtype=np.uint8)
XYXY = np.array([[10.0, 5.0, 50.0, 45.0], [0.0, 0.0, 120.0, 60.0], [100.0, 40.0, 118.0, 58.0]])


def _to(fmt: str, xyxy: np.ndarray) -> list[list[float]]:
    if fmt == "coco":
        return box_convert(xyxy, "xyxy", "xywh").tolist()
    if fmt == "yolo":
        return (box_convert(xyxy, "xyxy", "cxcywh") / [W, H, W, H]).tolist()
    return xyxy.tolist()


def _from(fmt: str, boxes: object) -> np.ndarray:
    arr = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if fmt == "coco":
        return box_convert(arr, "xywh", "xyxy")
    if fmt == "yolo":
        return box_convert(arr * [W, H, W, H], "cxcywh", "xyxy")
    return arr


def _compose(fmt: str, seed: int, **kw: object) -> A.Compose:
    return A.Compose(
        [BoxNoise(**kw)],
        bbox_params=A.BboxParams(format=fmt, label_fields=["labels"]),
        seed=seed,
    )


@pytest.mark.parametrize("fmt", ["coco", "pascal_voc", "yolo"])
def test_noise_in_compose(fmt: str) -> None:
    out = _compose(fmt, 1, eta=0.3)(image=IMAGE, bboxes=_to(fmt, XYXY), labels=[1, 2, 3])
    noisy = _from(fmt, out["bboxes"])
    assert out["labels"] == [1, 2, 3]
    assert np.array_equal(out["image"], IMAGE)
    iou = elementwise_box_iou(XYXY, noisy)
    assert np.all(iou < 1.0) and np.all(iou > 0.0)
    assert np.all(noisy[:, :2] >= -1e-4) and np.all(noisy[:, 2:] <= np.array([W, H]) + 1e-4)
    assert np.all(noisy[:, 2:] - noisy[:, :2] >= 1.0 - 1e-4)  # one-pixel floor in pixels


@pytest.mark.parametrize("fmt", ["coco", "pascal_voc", "yolo"])
def test_compose_seed_reproduces(fmt: str) -> None:
    run = [
        _compose(fmt, s, eta=0.2)(image=IMAGE, bboxes=_to(fmt, XYXY), labels=[1, 2, 3])["bboxes"]
        for s in (7, 7, 8)
    ]
    np.testing.assert_array_equal(run[0], run[1])
    assert not np.array_equal(run[0], run[2])
    # successive calls of one pipeline draw fresh noise
    pipe = _compose(fmt, 7, eta=0.2)
    a = pipe(image=IMAGE, bboxes=_to(fmt, XYXY), labels=[1, 2, 3])["bboxes"]
    b = pipe(image=IMAGE, bboxes=_to(fmt, XYXY), labels=[1, 2, 3])["bboxes"]
    assert not np.array_equal(a, b)


def test_eta_zero_is_identity_and_moves_are_bounded() -> None:
    out = _compose("pascal_voc", 0, eta=0.0)(image=IMAGE, bboxes=XYXY.tolist(), labels=[1, 2, 3])
    np.testing.assert_allclose(out["bboxes"], XYXY, atol=1e-4)
    # large image, no clamp: every coordinate moves by at most eta * size, as in perturb_boxes
    big = np.zeros((2000, 2000, 3), dtype=np.uint8)
    boxes = XYXY + 500
    out = _compose("pascal_voc", 3, eta=0.1)(image=big, bboxes=boxes.tolist(), labels=[1, 2, 3])
    delta = box_convert(np.asarray(out["bboxes"]), "xyxy", "cxcywh") - box_convert(
        boxes, "xyxy", "cxcywh"
    )
    wh = boxes[:, 2:] - boxes[:, :2]
    assert np.all(np.abs(delta) <= 0.1 * np.concatenate([wh, wh], axis=1) + 1e-3)


def test_with_other_transforms_and_empty_boxes() -> None:
    pipe = A.Compose(
        [A.HorizontalFlip(p=1.0), BoxNoise(eta=0.1, boundary="truncate", ratio=0.5)],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
        seed=0,
    )
    out = pipe(image=IMAGE, bboxes=XYXY.tolist(), labels=[1, 2, 3])
    assert len(out["bboxes"]) == 3
    empty = pipe(image=IMAGE, bboxes=[], labels=[])
    assert len(empty["bboxes"]) == 0


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError):
        BoxNoise(eta=1.0)
    with pytest.raises(ValueError, match="noise model"):
        BoxNoise(noise_model="nope")
