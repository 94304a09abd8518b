"""Box conversions and IoU against hand-computed values and torchvision."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_convert as tv_box_convert
from torchvision.ops import box_iou as tv_box_iou

from noisybox.boxes import box_area, box_convert, box_iou, elementwise_box_iou

FORMATS = ["xyxy", "xywh", "cxcywh"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),  # identical
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),  # disjoint
        ([0, 0, 10, 10], [2, 2, 7, 7], 25 / 100),  # nested
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),  # half overlap
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching
    ],
)
def test_golden_iou(dtype: type, fmt: str, a: list[float], b: list[float], expected: float) -> None:
    a_arr = box_convert(np.array([a], dtype=dtype), "xyxy", fmt)
    b_arr = box_convert(np.array([b], dtype=dtype), "xyxy", fmt)
    assert elementwise_box_iou(a_arr, b_arr, fmt)[0] == pytest.approx(expected, rel=1e-6)
    assert box_iou(a_arr, b_arr, fmt)[0, 0] == pytest.approx(expected, rel=1e-6)


def test_against_torchvision() -> None:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 100, size=(50, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(1, 50, size=(50, 2))], axis=1)
    other = boxes[::-1] + rng.uniform(-5, 5, size=boxes.shape)
    other[:, 2:] = np.maximum(other[:, 2:], other[:, :2] + 1)
    ref = tv_box_iou(torch.from_numpy(boxes), torch.from_numpy(other)).numpy()
    np.testing.assert_allclose(box_iou(boxes, other), ref, rtol=1e-12)
    np.testing.assert_allclose(elementwise_box_iou(boxes, other), np.diag(ref), rtol=1e-12)
    for fmt in ["xywh", "cxcywh"]:
        ours = box_convert(boxes, "xyxy", fmt)
        theirs = tv_box_convert(torch.from_numpy(boxes), "xyxy", fmt).numpy()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
        np.testing.assert_allclose(box_convert(ours, fmt, "xyxy"), boxes, rtol=1e-12)


def test_empty_and_extra_columns() -> None:
    assert box_iou(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)
    assert elementwise_box_iou(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0,)
    boxes = np.array([[0.0, 0, 4, 2, 7.0]])
    out = box_convert(boxes, "xyxy", "cxcywh")
    np.testing.assert_array_equal(out, [[2.0, 1.0, 4.0, 2.0, 7.0]])
    assert box_area(boxes)[0] == 8.0


def test_degenerate_boxes_give_zero_not_nan() -> None:
    zero = np.array([[5.0, 5, 5, 5]])
    assert elementwise_box_iou(zero, zero)[0] == 0.0


def test_errors() -> None:
    with pytest.raises(ValueError, match="Expected box_format in"):
        box_convert(np.zeros((1, 4)), "xyxy", "yolo")
    with pytest.raises(ValueError, match="Expected boxes of shape"):
        box_area(np.zeros((3,)))
    with pytest.raises(ValueError, match="same number"):
        elementwise_box_iou(np.zeros((2, 4)), np.zeros((3, 4)))
