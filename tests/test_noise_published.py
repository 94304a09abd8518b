"""The published box-noise models (``oamil``, ``gaussian-corner``, ``edge-jitter``): their
equations against hand-computed draws, their properties, and every entry point."""

from __future__ import annotations

import json
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from noisybox.cli import main
from noisybox.corrupt import corrupt_annotations
from noisybox.noise import BoxNoise, get_noise_model, list_noise_models, perturb_boxes
from noisybox.study.loading import load_config

DATA = Path(__file__).parent / "data"
PUBLISHED = ("oamil", "gaussian-corner", "edge-jitter")


def test_registered_with_their_names() -> None:
    assert set(PUBLISHED) <= set(list_noise_models())


def test_oamil_draws_in_the_sources_order() -> None:
    sizes = np.array([[40.0, 20.0], [10.0, 30.0]])
    deltas = get_noise_model("oamil")(np.random.default_rng(3), sizes, 0.3, 0.2)
    ref = np.random.default_rng(3)
    for (w, h), row in zip(sizes, deltas, strict=True):
        # per box: x offset, y offset, width scale, height scale
        u = [ref.uniform(-0.3, 0.3), ref.uniform(-0.2, 0.2), ref.uniform(-0.3, 0.3),
             ref.uniform(-0.2, 0.2)]  # fmt: skip
        np.testing.assert_allclose(row, [w * u[0], h * u[1], w * u[2], h * u[3]], rtol=1e-12)


def test_oamil_scales_width_and_height() -> None:
    # w' = w (1 + u3): the noisy width over the clean one lies in [1 - r, 1 + r]
    boxes = np.array([[100.0, 100.0, 140.0, 120.0]] * 500)
    out = perturb_boxes(
        boxes, (1000, 1000), eta=0.4, noise_model="oamil", boundary="truncate", rng=1
    )
    ratio = (out[:, 2] - out[:, 0]) / 40.0
    assert ratio.min() >= 0.6 - 1e-9 and ratio.max() <= 1.4 + 1e-9
    assert ratio.min() < 0.65 and ratio.max() > 1.35


def test_gaussian_corner_moments_and_independent_corners() -> None:
    n = 100_000
    sizes = np.full((n, 2), [50.0, 20.0])
    d = get_noise_model("gaussian-corner")(np.random.default_rng(5), sizes, 0.1, 0.2)
    # d_cx = (e1 + e2) / 2, d_w = e2 - e1 with e ~ N(0, (0.1 * 50)^2): std 5/sqrt(2), 5 sqrt(2)
    assert d[:, 0].std() == pytest.approx(5 / np.sqrt(2), rel=0.02)
    assert d[:, 2].std() == pytest.approx(5 * np.sqrt(2), rel=0.02)
    assert d[:, 1].std() == pytest.approx(4 / np.sqrt(2), rel=0.02)
    assert abs(np.corrcoef(d[:, 0], d[:, 2])[0, 1]) < 0.02


def test_gaussian_corner_redraws_boxes_below_one_pixel() -> None:
    sizes = np.array([[2.0, 2.0]] * 2000 + [[0.5, 3.0]])
    d = get_noise_model("gaussian-corner")(np.random.default_rng(0), sizes, 0.9, 0.9)
    assert np.all(sizes[:-1] + d[:-1, 2:] >= 1.0)
    assert np.all(d[-1] == 0.0)  # a clean box below one pixel is left alone, as in the source


def test_edge_jitter_integer_bounds() -> None:
    # w = 20 at p = 30: k = int(20 * 30 / 200) = 3, edges in [-3, 3); w = 5: k = max(1, 0) = 1
    sizes = np.array([[20.0, 5.0]] * 4000)
    d = get_noise_model("edge-jitter")(np.random.default_rng(2), sizes, 0.3, 0.3)
    dx1, dx2 = d[:, 0] - d[:, 2] / 2, d[:, 0] + d[:, 2] / 2
    dy1, dy2 = d[:, 1] - d[:, 3] / 2, d[:, 1] + d[:, 3] / 2
    assert set(np.unique(np.concatenate([dx1, dx2]))) == {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0}
    assert set(np.unique(np.concatenate([dy1, dy2]))) == {-1.0, 0.0}


def test_edge_jitter_zero_rate_axis_untouched() -> None:
    d = get_noise_model("edge-jitter")(np.random.default_rng(2), np.full((50, 2), 80.0), 0.2, 0.0)
    assert np.all(d[:, [1, 3]] == 0.0) and np.any(d[:, [0, 2]] != 0.0)


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(PUBLISHED), st.floats(0.0, 0.99), st.integers(0, 2**32 - 1))
def test_inside_image_positive_and_seeded(model: str, eta: float, seed: int) -> None:
    boxes = np.array([[0.0, 0.0, 30.0, 20.0], [40.0, 50.0, 99.0, 80.0], [5.0, 5.0, 7.0, 6.0]])
    out = perturb_boxes(boxes, (100, 80), eta=eta, noise_model=model, boundary="truncate", rng=seed)
    assert np.all(out[:, 2] > out[:, 0]) and np.all(out[:, 3] > out[:, 1])
    assert np.all(out[:, :2] >= 0) and np.all(out[:, 2:] <= [100, 80])
    again = perturb_boxes(
        boxes, (100, 80), eta=eta, noise_model=model, boundary="truncate", rng=seed
    )
    assert out.tobytes() == again.tobytes()


@pytest.mark.parametrize("model", PUBLISHED)
def test_eta_zero_changes_nothing(model: str) -> None:
    boxes = np.array([[1.0, 2.0, 30.0, 20.0], [40.0, 50.0, 99.0, 80.0]])
    out = perturb_boxes(boxes, (100, 80), eta=0.0, noise_model=model, rng=0)
    assert out.tobytes() == boxes.tobytes()


@pytest.mark.parametrize("model", PUBLISHED)
def test_albumentations_transform(model: str) -> None:
    image = np.zeros((60, 120, 3), dtype=np.uint8)
    boxes = [[10.0, 5.0, 50.0, 45.0], [60.0, 10.0, 118.0, 58.0]]
    compose = A.Compose(
        [BoxNoise(eta=0.3, noise_model=model, boundary="truncate")],
        bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
        seed=4,
    )
    out = np.asarray(compose(image=image, bboxes=boxes, labels=[1, 2])["bboxes"])
    assert out.shape == (2, 4) and not np.array_equal(out, boxes)
    assert np.all(out[:, :2] >= -1e-4) and np.all(out[:, 2:] <= np.array([120, 60]) + 1e-4)


@pytest.mark.parametrize("model", PUBLISHED)
def test_corrupt_api_and_cli(model: str, tmp_path: Path) -> None:
    source = DATA / "coco" / "instances_tiny.json"
    result = corrupt_annotations(
        source, tmp_path / "a.json", eta=0.2, noise_model=model, boundary="truncate", seed=1
    )
    assert result.provenance["model"] == model and result.counts["perturbed"] > 0
    run = CliRunner().invoke(
        main,
        [
            "corrupt",
            str(source),
            "-o",
            str(tmp_path / "b.json"),
            "--eta",
            "0.2",
            "--model",
            model,
            "--boundary",
            "truncate",
            "--seed",
            "1",
            "--json",
            "-q",
        ],  # fmt: skip
    )
    assert run.exit_code == 0, run.output
    assert json.loads(run.stdout)["iou"] == result.provenance["iou"]


@pytest.mark.parametrize("model", PUBLISHED)
def test_benchmark_yaml_accepts_the_model(model: str) -> None:
    cfg = load_config(
        {
            "name": "unit",
            "dataset": {"builtin": "shapes", "num_train": 4, "num_val": 2, "image_size": 64},
            "detectors": ["fcos"],
            "losses": ["iou"],
            "etas": [0.0, 0.1],
            "noise": {"model": model, "boundary": "truncate"},
            "seeds": [0],
            "schedule": {"epochs": 1, "batch_size": 2, "image_size": 64, "workers": 0},
        }
    )
    assert cfg.noise.model == model and cfg.noise.boundary == "truncate"
