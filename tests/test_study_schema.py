"""The study schema (pydantic models): every committed study YAML and stored config loads to
the config it loaded to before the models (issue 30), and refusals name their YAML key."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from noisybox.study.grid import expand_grid
from noisybox.study.loading import load_config
from noisybox.study.name_checks import STORED
from noisybox.study.spec import BenchmarkConfig, ConfigError

REPO = Path(__file__).resolve().parents[1]
# Computed with the hand-written checker this schema replaced (tests/data/study_config_pins.json):
# per file, a digest of the resolved config (to_dict), its fingerprint, its cells and their ids.
PINS: dict[str, dict[str, Any]] = json.loads(
    (REPO / "tests" / "data" / "study_config_pins.json").read_text()
)
VALID: dict[str, Any] = {
    "dataset": {"builtin": "shapes", "num_train": 4, "num_val": 2, "image_size": 64},
    "detectors": ["fcos"],
    "losses": ["iou", {"name": "alpha-iou", "alpha": [2, 3]}],
    "etas": [0.0, 0.1],
    "seeds": [0],
    "schedule": {"epochs": 1, "batch_size": 2},
}


def _digest(obj: Any) -> str:
    blob = json.dumps(obj, sort_keys=True, default=str).replace(str(REPO), "<repo>")
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _pin(cfg: BenchmarkConfig) -> dict[str, Any]:
    ids = [c.cell_id for c in expand_grid(cfg)]
    return {
        "config": _digest(cfg.to_dict()),
        "fingerprint": cfg.fingerprint(),
        "cells": len(ids),
        "cell_ids": _digest(ids),
    }


def test_every_pinned_study_file_is_still_committed() -> None:
    # The pins hold every study file that existed when the models replaced the checker; a
    # study added later has no "before" to be pinned to, so it is not required here.
    assert len(PINS) >= 30
    missing = [k for k in PINS if not (REPO / k.split("#")[0]).is_file()]
    assert not missing


@pytest.mark.parametrize("key", sorted(PINS))
def test_committed_study_files_load_as_before(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOISYBOX_BCCD", "/nonexistent/BCCD")  # bccd: null reads it
    path = REPO / key.split("#")[0]
    if path.suffix == ".json":  # a results folder's stored config, as report and status read it
        stored = json.loads(path.read_text())
        registries = STORED if key.endswith("#stored") else None
        base = stored.get("base_dir", ".")
        cfg = load_config(stored["config"], base_dir=base, check_paths=False, registries=registries)
    else:
        cfg = load_config(path, check_paths=False)
    pin, expected = _pin(cfg), dict(PINS[key])
    if str(REPO) in json.dumps(cfg.to_dict(), default=str):
        # Paths resolved against the checkout: the fingerprint hashes them as they are, so it
        # differs from one checkout to another; the config digest (paths relative) holds it.
        pin.pop("fingerprint"), expected.pop("fingerprint")
    assert pin == expected


def _errors(tmp_path: Path, **changes: Any) -> list[str]:
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump({**VALID, **changes}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"Invalid benchmark config {path} (")
    return info.value.errors


def test_refusals_name_their_key_in_yaml_order(tmp_path: Path) -> None:
    errors = _errors(
        tmp_path,
        losses=[{"name": "alpha-iou", "alpha": [1, -1.0], "colour": 1}, {"alpha": 2}],
        dataset={"builtin": "shapes", "num_train": 0, "size": 3},
        noise=[{}, {"model": "none", "corruptions": "missing", "rate": 1}],
        schedule={"epochs": 1.5, "lrate": 1},
        colour="red",
    )
    assert errors == [
        "config.colour: Expected one of the keys name, description, dataset, detectors, losses, "
        "etas, seeds, noise, schedule, device, collapse, report, protocol, mode "
        "but got unknown key 'colour'",
        "dataset.size: Expected one of the keys builtin, num_train, num_val, num_calib, "
        "image_size, seed but got unknown key 'size'",
        "dataset.num_train: Expected an integer in [1, 100000] but got 0",
        "losses[0].colour: Expected one of the keys name, alpha, alpha_warmup "
        "but got unknown key 'colour'",
        "losses[0].alpha[1]: Expected alpha >= 0 and finite but got -1.0",
        "losses[1].name: Expected this key but it is missing",
        "noise[1].rate: Expected one of the keys model, boundary, ratio, corruptions, name "
        "but got unknown key 'rate'",
        errors[7],  # the schedule's keys: TrainConfig's fields
        "schedule.epochs: Expected an integer in [1, inf] but got 1.5",
    ]
    assert errors[7].startswith("schedule.lrate: Expected one of the keys amp, batch_size")


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"dataset": {"train_annotations": "study.yaml"}},
         "dataset.train_images: Expected this key (or dataset.builtin) but it is missing"),
        ({"dataset": {"voc": "VOC", "root": "VOC"}}, "dataset.root: Expected voc: PATH (root "
         "goes with a dataset name)"),
        ({"losses": [{"name": "torchvision", "alpha": 2}]}, "losses[0].alpha: Expected no alpha "
         "for the stock 'torchvision' loss but got 2.0"),
        ({"seeds": [1, 1]}, "seeds: Expected distinct values but got [1, 1]"),
        ({"noise": [{}, {"ratio": 0.5}]}, "noise: Expected a distinct label per noise condition "
         "(set name:) but got 'uniform' twice"),
        ({"detectors": ["fcos", {"name": "fcos", "options": {"lr": 0.1}}]}, "detectors: Expected "
         "each detector-backbone once but got 'fcos-resnet18' twice"),
        ({"detectors": [{"name": "fcos", "options": {"optimizer": "lbfgs"}}]},
         "detectors[0].options: Expected optimizer in ['sgd', 'adamw'] but got 'lbfgs'"),
        ({"collapse": {"min_fg_iou": 2}}, "collapse.min_fg_iou: Expected a number in [0, 1] "
         "but got 2"),
        ({"schedule": []}, "schedule: Expected a mapping but got []"),
        ({"etas": 0.1}, "etas: Expected a non-empty list but got 0.1"),
        ({"detectors": []}, "detectors: Expected a non-empty list but got []"),
        ({"mode": None}, "mode: Expected one of study, calibration but got None"),
    ],
)  # fmt: skip
def test_first_refusal(tmp_path: Path, changes: dict[str, Any], line: str) -> None:
    assert _errors(tmp_path, **changes)[0] == line


def test_a_stored_loss_the_registry_lacks_is_refused_not_raised() -> None:
    """A stored config read without the registries' names reaches the loss registry for its
    default alpha: an unknown name is a refusal of that key, not an exception."""
    with pytest.raises(ConfigError) as info:
        load_config({**VALID, "losses": ["no-such-loss"]}, registries=STORED)
    (line,) = info.value.errors
    assert line.startswith("losses[0].name: Expected a loss name in")


def test_old_import_paths_still_load() -> None:
    from noisybox.benchmark import load_config as facade

    with pytest.warns(FutureWarning, match="use .noisybox.study.loading"):
        from noisybox.study.config import BenchmarkConfig as OldConfig
        from noisybox.study.config import load_config as old

    assert old is load_config is facade and OldConfig is BenchmarkConfig
    assert old(VALID).schedule == {"epochs": 1, "batch_size": 2}
