"""One set of bounds for ``eta``, ``alpha`` and ``alpha_warmup``: the CLI, the Python API and
a study YAML refuse the same values with the same message (:mod:`noisybox.settings`)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.corrupt import corrupt_annotations
from noisybox.engine import TrainConfig
from noisybox.losses import get_loss
from noisybox.noise import BoxNoise, perturb_boxes
from noisybox.settings import ALPHA, ALPHA_WARMUP, ETA, LossSpec, SettingError
from noisybox.study.loading import ConfigError, load_config

COCO = Path(__file__).parent / "data" / "coco" / "instances_tiny.json"
NAN = float("nan")

STUDY: dict[str, Any] = {
    "dataset": {"builtin": "shapes", "num_train": 4, "num_val": 2, "image_size": 64},
    "detectors": ["fcos"],
    "losses": ["iou"],
    "etas": [0.0],
    "seeds": [0],
    "schedule": {"epochs": 1, "batch_size": 2, "image_size": 64, "workers": 0},
}


def _study_error(tmp_path: Path, **changes: Any) -> str:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**STUDY, **changes}))
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    return str(info.value)


@pytest.mark.parametrize("eta", [1.0, -0.1, NAN])
def test_eta_refused_alike_everywhere(tmp_path: Path, eta: float) -> None:
    message = ETA.message(eta)
    assert message == f"Expected eta in [0, 1) but got {eta!r}"
    result = CliRunner().invoke(
        main, ["corrupt", str(COCO), "--output", str(tmp_path / "o.json"), "--eta", str(eta)]
    )
    assert result.exit_code == 2 and message in result.output, result.output
    boxes, sizes = np.array([[0.0, 0, 10, 10]]), np.array([[100.0, 100]])
    for call in (
        lambda: perturb_boxes(boxes, sizes, eta=eta),
        lambda: corrupt_annotations(COCO, tmp_path / "o.json", eta=eta),
        lambda: BoxNoise(eta=eta),
    ):
        with pytest.raises(ValueError) as info:
            call()
        assert message in str(info.value)
    assert f"etas[0]: {message}" in _study_error(tmp_path, etas=[eta])


@pytest.mark.parametrize(("alpha", "warmup"), [(-1.0, None), (NAN, None), (None, 1.5), (None, NAN)])
def test_alpha_and_warmup_refused_alike_everywhere(
    tmp_path: Path, alpha: float | None, warmup: float | None
) -> None:
    bound, value, key = (
        (ALPHA, alpha, "alpha")
        if alpha is not None
        else (
            ALPHA_WARMUP,
            warmup,
            "alpha_warmup",
        )
    )
    message = bound.message(value)
    option = "--" + key.replace("_", "-")
    result = CliRunner().invoke(main, ["train", option, str(value)])
    assert result.exit_code == 2 and message in result.output, result.output
    with pytest.raises(ValueError) as info:
        TrainConfig(train_annotations="a.json", **{key: value}).validate()
    assert message in str(info.value)
    if key == "alpha":
        with pytest.raises(ValueError) as info:
            get_loss("alpha-iou", alpha=value)
        assert message in str(info.value)
    with pytest.raises(ValueError) as info:
        LossSpec("alpha-iou", **{key: value})
    assert str(info.value) == message
    loss = {"name": "alpha-iou", key: value}
    assert f"losses[0].{key}: {message}" in _study_error(tmp_path, losses=[loss])


def test_the_bounds() -> None:
    assert ETA.check(0) == 0.0 and ALPHA.check(0) == 0.0 and ALPHA_WARMUP.check(1) == 1.0
    for bound, bad in (
        (ETA, 1),
        (ALPHA, math.inf),
        (ALPHA_WARMUP, 1.0001),
        (ETA, True),
        (ETA, "x"),
    ):
        with pytest.raises(SettingError, match="^Expected "):
            bound.check(bad)


def test_a_study_may_ask_for_alpha_zero_and_a_full_warmup() -> None:
    cfg = load_config({**STUDY, "losses": [{"name": "alpha-iou", "alpha": 0, "alpha_warmup": 1}]})
    (loss,) = cfg.losses
    assert (loss.name, loss.alpha, loss.alpha_warmup) == ("alpha-iou", 0.0, 1.0)
    assert loss.label == "alpha-iou@0"
