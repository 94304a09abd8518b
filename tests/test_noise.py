"""The noise model: definition, boundary conditions, properties and distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from noisybox.boxes import box_convert
from noisybox.errors import NoisyboxError
from noisybox.noise import (
    NoiseSpec,
    apply_box_noise,
    draw_box_noise,
    get_noise_model,
    list_noise_models,
    perturb_boxes,
    register_noise_model,
)


@st.composite
def boxes_in_images(draw: st.DrawFn, max_n: int = 20) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(0, max_n))
    out, sizes = [], []
    for _ in range(n):
        w = draw(st.floats(2, 2000))
        h = draw(st.floats(2, 2000))
        bw = draw(st.floats(1, w))
        bh = draw(st.floats(1, h))
        x = draw(st.floats(0, w - bw))
        y = draw(st.floats(0, h - bh))
        out.append([x, y, min(x + bw, w), min(y + bh, h)])
        sizes.append([w, h])
    return np.array(out, dtype=np.float64).reshape(-1, 4), np.array(
        sizes, dtype=np.float64
    ).reshape(-1, 2)


ETA = st.floats(0.0, 0.99)
SETTINGS = settings(max_examples=60, deadline=None)


@SETTINGS
@given(boxes_in_images(), st.integers(0, 2**32 - 1), st.sampled_from(["xyxy", "xywh", "cxcywh"]))
def test_eta_zero_changes_nothing(data: tuple[np.ndarray, np.ndarray], seed: int, fmt: str) -> None:
    boxes, sizes = data
    boxes = box_convert(boxes, "xyxy", fmt)
    out = perturb_boxes(boxes, sizes, eta=0.0, box_format=fmt, rng=seed)
    assert out.tobytes() == boxes.tobytes()


@SETTINGS
@given(boxes_in_images(), ETA, st.integers(0, 2**32 - 1), st.sampled_from(["shift", "truncate"]),
       st.sampled_from(["uniform", "gaussian"]))  # fmt: skip
def test_output_positive_and_inside_image(
    data: tuple[np.ndarray, np.ndarray], eta: float, seed: int, boundary: str, model: str
) -> None:
    boxes, sizes = data
    out = perturb_boxes(boxes, sizes, eta=eta, boundary=boundary, noise_model=model, rng=seed)
    assert out.shape == boxes.shape
    assert np.all(out[:, 2] > out[:, 0]) and np.all(out[:, 3] > out[:, 1])
    assert np.all(out[:, :2] >= 0)
    assert np.all(out[:, 2] <= sizes[:, 0]) and np.all(out[:, 3] <= sizes[:, 1])
    if boundary == "shift":
        # eq. 5 with the one-pixel floor (images smaller than a pixel aside)
        assert np.all(out[:, 2:] - out[:, :2] >= np.minimum(1.0, sizes) - 1e-9)


@SETTINGS
@given(boxes_in_images(), ETA, st.integers(0, 2**32 - 1))
def test_before_clamp_each_coordinate_moves_at_most_eta_size(
    data: tuple[np.ndarray, np.ndarray], eta: float, seed: int
) -> None:
    boxes, _ = data
    wh = boxes[:, 2:] - boxes[:, :2]
    deltas = draw_box_noise(np.random.default_rng(seed), wh, NoiseSpec(eta=eta))
    bound = eta * np.concatenate([wh, wh], axis=1)
    assert np.all(np.abs(deltas) <= bound)
    # with a huge image the clamp never acts: centre and size moved by at most eta * size
    big = np.full((boxes.shape[0], 2), 1e7)
    out = perturb_boxes(boxes + 1e6, big, eta=eta, rng=seed)
    cxcywh_in = box_convert(boxes + 1e6, "xyxy", "cxcywh")
    cxcywh_out = box_convert(out, "xyxy", "cxcywh")
    tol = 1e-6
    assert np.all(np.abs(cxcywh_out - cxcywh_in) <= bound + tol)


@SETTINGS
@given(boxes_in_images(), ETA, st.integers(0, 2**32 - 1))
def test_seed_reproduces_byte_for_byte(
    data: tuple[np.ndarray, np.ndarray], eta: float, seed: int
) -> None:
    boxes, sizes = data
    a = perturb_boxes(boxes, sizes, eta=eta, rng=seed)
    b = perturb_boxes(boxes, sizes, eta=eta, rng=np.random.default_rng(seed))
    assert a.tobytes() == b.tobytes()


def test_paper_definition_by_hand() -> None:
    """Replay the draws: cx, w from U(-eta w, eta w); cy, h from U(-eta h, eta h); eq. 5."""
    boxes = np.array([[10.0, 20.0, 50.0, 100.0], [0.0, 0.0, 90.0, 10.0]])
    sizes = np.array([[100.0, 100.0], [100.0, 50.0]])
    eta = 0.3
    out = perturb_boxes(boxes, sizes, eta=eta, rng=7)
    u = np.random.default_rng(7).uniform(-1, 1, size=(2, 4))
    for k in range(2):
        x1, y1, x2, y2 = boxes[k]
        img_w, img_h = sizes[k]
        w, h = x2 - x1, y2 - y1
        cx = (x1 + x2) / 2 + u[k, 0] * eta * w
        cy = (y1 + y2) / 2 + u[k, 1] * eta * h
        nw = min(max(w + u[k, 2] * eta * w, 1.0), img_w)
        nh = min(max(h + u[k, 3] * eta * h, 1.0), img_h)
        cx = min(max(cx, nw / 2), img_w - nw / 2)
        cy = min(max(cy, nh / 2), img_h - nh / 2)
        np.testing.assert_allclose(
            out[k], [cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2], rtol=1e-12
        )


def test_shift_moves_box_back_inside() -> None:
    # a box at the border whose centre is pushed out comes back with its noisy size
    out = apply_box_noise(np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([[100.0, 100.0]]),
                          np.array([[-5.0, -5.0, 2.0, 0.0]]))  # fmt: skip
    np.testing.assert_allclose(out, [[0.0, 0.0, 12.0, 10.0]])
    # a size larger than the image is clipped to the image
    out = apply_box_noise(np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([[11.0, 100.0]]),
                          np.array([[0.0, 0.0, 5.0, 0.0]]))  # fmt: skip
    np.testing.assert_allclose(out, [[0.0, 0.0, 11.0, 10.0]])


def test_truncate_clips_corners_and_falls_back_to_clean() -> None:
    out = apply_box_noise(np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([[100.0, 100.0]]),
                          np.array([[-4.0, 0.0, 2.0, 0.0]]), boundary="truncate")  # fmt: skip
    np.testing.assert_allclose(out, [[0.0, 0.0, 7.0, 10.0]])
    clean = np.array([[0.0, 0.0, 2.0, 2.0]])
    out = apply_box_noise(clean, np.array([[100.0, 100.0]]), np.array([[-2.5, 0.0, 0.0, 0.0]]),
                          boundary="truncate")  # fmt: skip
    np.testing.assert_array_equal(out, clean)


def test_ratio_perturbs_exact_share_and_leaves_rest_bitwise() -> None:
    rng = np.random.default_rng(1)
    boxes = np.tile([[10.0, 10.0, 60.0, 40.0]], (1000, 1)) + rng.uniform(0, 5, (1000, 1))
    out = perturb_boxes(boxes, (200, 200), eta=0.2, ratio=0.3, rng=3)
    changed = np.any(out != boxes, axis=1)
    assert changed.sum() == 300


def test_eta_w_eta_h_are_independent() -> None:
    boxes = np.array([[40.0, 40.0, 60.0, 60.0]] * 50)
    out = perturb_boxes(boxes, (100, 100), eta=0.2, eta_h=0.0, rng=0)
    np.testing.assert_array_equal(out[:, [1, 3]], boxes[:, [1, 3]])
    assert np.any(out[:, [0, 2]] != boxes[:, [0, 2]])


def test_dtype_and_extra_columns_preserved() -> None:
    boxes = np.array([[10, 10, 20, 30, 5]], dtype=np.float32)
    out = perturb_boxes(boxes, (100, 100), eta=0.2, rng=0)
    assert out.dtype == np.float32 and out[0, 4] == 5


def test_uniform_distribution_matches_definition() -> None:
    """KS test of the normalised draws against U(-1, 1), and their moments."""
    n = 200_000
    rng = np.random.default_rng(12345)
    sizes = rng.uniform(5, 300, size=(n, 2))
    eta_w, eta_h = 0.2, 0.3
    deltas = get_noise_model("uniform")(np.random.default_rng(99), sizes, eta_w, eta_h)
    scale = np.stack([eta_w * sizes[:, 0], eta_h * sizes[:, 1]] * 2, axis=1)
    u = deltas / scale
    crit = 1.63 / math.sqrt(n)  # KS critical value at the 1% level
    for col in range(4):
        x = np.sort(u[:, col])
        cdf = (x + 1) / 2
        ecdf_hi = np.arange(1, n + 1) / n
        ecdf_lo = np.arange(0, n) / n
        d = max(np.max(ecdf_hi - cdf), np.max(cdf - ecdf_lo))
        assert d < crit, (col, d)
        assert abs(u[:, col].mean()) < 0.01
        assert u[:, col].var() == pytest.approx(1 / 3, rel=0.01)
    # the four coordinates are drawn independently
    corr = np.corrcoef(u.T)
    assert np.all(np.abs(corr[np.triu_indices(4, 1)]) < 0.01)


def test_gaussian_distribution_moments() -> None:
    n = 200_000
    sizes = np.full((n, 2), 50.0)
    deltas = get_noise_model("gaussian")(np.random.default_rng(5), sizes, 0.1, 0.2)
    assert deltas[:, 0].std() == pytest.approx(5.0, rel=0.01)
    assert deltas[:, 3].std() == pytest.approx(10.0, rel=0.01)
    assert abs(deltas[:, 1].mean()) < 0.05


def test_registry() -> None:
    assert {"uniform", "gaussian"} <= set(list_noise_models())
    with pytest.raises(ValueError, match="Expected a noise model in"):
        get_noise_model("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_noise_model("uniform")(lambda rng, s, a, b: np.zeros((s.shape[0], 4)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"eta": 1.0}, "Expected eta in"),
        ({"eta": -0.1}, "Expected eta in"),
        ({"eta_w": 1.5}, "Expected eta_w in"),
        ({"ratio": 1.5}, "Expected ratio in"),
        ({"min_size": 0.0}, "Expected min_size"),
    ],
)
def test_invalid_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(NoisyboxError, match=message):
        perturb_boxes(np.array([[0.0, 0, 1, 1]]), (10, 10), **kwargs)


def test_invalid_inputs() -> None:
    with pytest.raises(NoisyboxError, match="Expected finite boxes"):
        perturb_boxes(np.array([[0.0, 0, np.nan, 1]]), (10, 10))
    with pytest.raises(NoisyboxError, match="image_sizes"):
        perturb_boxes(np.array([[0.0, 0, 1, 1]]), np.ones((3, 2)))
    with pytest.raises(ValueError, match="boundary"):
        perturb_boxes(np.array([[0.0, 0, 1, 1]]), (10, 10), boundary="wrap")


@pytest.mark.parametrize(
    ("boxes", "sizes", "kwargs", "message"),
    [
        ([[10.0, 10, 5, 20]], (100, 100), {}, r"x2 > x1 and y2 > y1 but got \[10.0, 10.0, 5.0"),
        ([[10.0, 10, 10, 20]], (100, 100), {}, r"x2 > x1"),
        ([[10.0, 10, 20, 20]], (15, 100), {}, r"inside their image .* in a 15x100 image at row 0"),
        ([[-5.0, 10, 20, 20]], (100, 100), {}, r"inside their image"),
        ([[0.0, 0, 10, 10]], (100, 100), {"min_size": float("inf")}, r"min_size > 0 and finite"),
        ([[0.0, 0, 10, 10]], (100, 50), {"min_size": 60.0}, r"min_size at most the image side"),
    ],
)
def test_boxes_the_cli_rejects_are_rejected(
    boxes: list, sizes: tuple, kwargs: dict, message: str
) -> None:
    """perturb_boxes silently accepted inverted and outside-image boxes (issue 13, item 7)."""
    with pytest.raises(NoisyboxError, match=message):
        perturb_boxes(np.array(boxes), sizes, eta=0.2, **kwargs)


def test_boxes_within_the_tolerance_are_accepted() -> None:
    out = perturb_boxes(np.array([[-0.5, 0.0, 100.5, 50.0]]), (100, 100), eta=0.2, rng=0)
    assert np.all(out[:, :2] >= 0) and np.all(out[:, 2:] <= 100)
