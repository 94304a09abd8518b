"""The loss spec (:class:`noisybox.settings.LossSpec`): one value for a loss's name, alpha,
warm-up and parameters, taken by ``TrainConfig``, the Ultralytics plug and the study grid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from noisybox.engine import TrainConfig
from noisybox.errors import NoisyboxError
from noisybox.losses import STOCK_LOSS, get_loss, list_losses, registry
from noisybox.losses.registry import default_alpha, register_loss, resolve_loss_spec
from noisybox.settings import (
    ALPHA,
    ALPHA_WARMUP,
    DEFAULT_ALPHA_WARMUP,
    Bound,
    LossSpec,
    SettingError,
    alpha_at_step,
)
from noisybox.study.grid import Cell, expand_grid
from noisybox.study.loading import DetectorSpec, NoiseConfig, load_config

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_the_old_import_paths_name_the_same_objects() -> None:
    import noisybox.engine.schedules as schedules
    import noisybox.losses as losses
    import noisybox.losses.alpha_schedule as alpha_schedule
    import noisybox.study.spec as study_spec

    assert losses.LossSpec is study_spec.LossSpec is LossSpec
    for module in (losses, alpha_schedule, schedules):
        assert module.alpha_at_step is alpha_at_step
    assert losses.DEFAULT_ALPHA_WARMUP == alpha_schedule.DEFAULT_ALPHA_WARMUP == 0.3


def test_bounds_are_checked_once_with_the_settings_messages() -> None:
    assert LossSpec("alpha-iou", 0).alpha == 0.0  # -log(IoU), as the CLI allows
    assert LossSpec("alpha-iou", 3, 1).alpha_warmup == 1.0  # a ramp over the whole run
    for kwargs, bound, value in (
        ({"alpha": -1}, ALPHA, -1),
        ({"alpha": float("inf")}, ALPHA, float("inf")),
        ({"alpha_warmup": -0.1}, ALPHA_WARMUP, -0.1),
        ({"alpha_warmup": 1.5}, ALPHA_WARMUP, 1.5),
    ):
        with pytest.raises(SettingError) as info:
            LossSpec("alpha-iou", **kwargs)  # type: ignore[arg-type]
        assert str(info.value) == bound.message(value)
    with pytest.raises(SettingError, match="^Expected a loss name"):
        LossSpec("alpha-iou@3")


def test_params_are_hashable_and_read_back_as_kwargs() -> None:
    spec = LossSpec("wiou-v3", params={"focus_delta": 2.0, "focus_alpha": 1.5})
    assert spec.params == (("focus_alpha", 1.5), ("focus_delta", 2.0))
    assert spec == LossSpec("wiou-v3", params=(("focus_delta", 2.0), ("focus_alpha", 1.5)))
    assert len({spec, LossSpec("wiou-v3", params={"focus_alpha": 1.5, "focus_delta": 2.0})}) == 1
    assert spec.kwargs == {"focus_alpha": 1.5, "focus_delta": 2.0}
    hash(LossSpec("giou", params={"sizes": [1, 2]}))
    with pytest.raises(SettingError, match="^Expected loss params"):
        LossSpec("giou", params=[1, 2])  # type: ignore[arg-type]


# alphas and warm-ups that ``:g`` writes exactly, so that text round-trips to the same spec
_ALPHAS = st.one_of(st.none(), st.integers(0, 400).map(lambda n: n / 8))
_WARMUPS = st.one_of(st.none(), st.integers(0, 20).map(lambda n: n / 20))


@given(st.sampled_from([STOCK_LOSS, *list_losses()]), _ALPHAS, _WARMUPS)
def test_parse_reads_back_every_label(name: str, alpha: float | None, warmup: float | None) -> None:
    spec = LossSpec(name, alpha, warmup)
    parsed = LossSpec.parse(spec.id_label)
    assert parsed.id_label == spec.id_label
    if spec.shows_alpha or spec.alpha is None:
        assert parsed == spec
    else:  # a plain name's implied alpha 1 reads back as its (registered) default
        assert parsed == LossSpec(name, None, warmup) and spec.alpha == 1.0


def test_parse_grammar() -> None:
    assert LossSpec.parse("alpha-iou@3~w0.3") == LossSpec("alpha-iou", 3.0, 0.3)
    assert LossSpec.parse("iou@2") == LossSpec("iou", 2.0)
    assert LossSpec.parse("giou~w0") == LossSpec("giou", None, 0.0)
    assert LossSpec.parse("alpha-iou@1e-1") == LossSpec("alpha-iou", 0.1)


@pytest.mark.parametrize(
    "text",
    ["", "@3", "iou@", "iou@x", "iou~w", "iou@3@4", "iou~w0.1@3", "a b", "iou@3\n", "iou~x1"],
)
def test_parse_refuses_bad_text_in_one_line(text: str) -> None:
    with pytest.raises(SettingError) as info:
        LossSpec.parse(text)
    message = str(info.value)
    assert "\n" not in message and message.startswith("Expected a loss spec NAME[@ALPHA]")
    assert repr(text) in message


@pytest.mark.parametrize(
    ("text", "bound", "value"),
    [("iou@-1", ALPHA, -1.0), ("iou@nan", ALPHA, float("nan")), ("iou~w2", ALPHA_WARMUP, 2.0)],
)
def test_parse_refuses_numbers_outside_their_bound(text: str, bound: Bound, value: float) -> None:
    with pytest.raises(SettingError) as info:
        LossSpec.parse(text)
    assert str(info.value) == bound.message(value)


def test_default_alpha_is_read_from_the_registry_without_building(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the losses registered below stay in this test (others iterate over every loss)
    monkeypatch.setattr(registry._LOSSES, "_entries", dict(registry._LOSSES._entries))
    for name in list_losses():
        alpha = get_loss(name).alpha
        assert default_alpha(name) == float(alpha), name
    assert default_alpha(STOCK_LOSS) is None

    def refuse(**kwargs: object) -> object:
        raise AssertionError("built")

    register_loss("test-declared-alpha", alpha=2.5, override=True)(refuse)
    assert default_alpha("test-declared-alpha") == 2.5
    assert resolve_loss_spec(LossSpec("test-declared-alpha")).alpha == 2.5

    def with_signature(alpha: float = 0.5, **kwargs: object) -> object:
        raise AssertionError("built")

    register_loss("test-signature-alpha", override=True)(with_signature)
    assert default_alpha("test-signature-alpha") == 0.5
    with pytest.raises(NoisyboxError, match="loss name"):
        default_alpha("no-such-loss")
    # a factory that declares nothing is built once, with no arguments
    register_loss("test-undeclared-alpha", override=True)(lambda **kw: get_loss("alpha-iou"))
    assert default_alpha("test-undeclared-alpha") == 3.0


def test_resolved_alpha_and_warmup() -> None:
    def alpha(spec: LossSpec) -> float | None:
        return resolve_loss_spec(spec).alpha

    assert alpha(LossSpec("alpha-giou")) == 3.0
    assert alpha(LossSpec("giou")) == 1.0
    assert alpha(LossSpec("giou", 2)) == 2.0
    assert alpha(LossSpec("giou", params={"alpha": 1.5})) == 1.5  # as get_loss builds
    assert alpha(LossSpec(STOCK_LOSS)) is None
    assert LossSpec("giou").resolved_warmup == DEFAULT_ALPHA_WARMUP
    expected = LossSpec("alpha-giou", 3.0, DEFAULT_ALPHA_WARMUP)
    assert resolve_loss_spec(LossSpec("alpha-giou")) == expected


@pytest.mark.parametrize(("alpha", "warmup"), [(3.0, 0.3), (0.5, 0.0), (2.0, 1.0), (None, None)])
def test_alpha_at_follows_the_schedule(alpha: float | None, warmup: float | None) -> None:
    spec = resolve_loss_spec(LossSpec("alpha-iou", alpha, warmup))
    target = 3.0 if alpha is None else alpha
    ramp = DEFAULT_ALPHA_WARMUP if warmup is None else warmup
    for step in range(0, 41, 3):
        assert spec.alpha_at(step, 40) == alpha_at_step(step, 40, target, ramp)
    assert resolve_loss_spec(LossSpec(STOCK_LOSS)).alpha_at(0, 40) is None


def test_train_config_reads_its_flat_keys_as_one_spec() -> None:
    stored = {
        "train_annotations": "a.json",
        "loss": "wiou-v3",
        "alpha": 2,
        "alpha_warmup": 0.5,
        "loss_kwargs": {"focus_delta": 2.0},
    }
    cfg = TrainConfig.from_dict(stored)
    assert cfg.loss_spec == LossSpec("wiou-v3", 2.0, 0.5, {"focus_delta": 2.0})
    data = cfg.to_dict()
    assert "loss_spec" not in data and {k: data[k] for k in stored} == stored
    # an old dict without the loss keys: the stock loss, its default warm-up
    assert TrainConfig.from_dict({"train_annotations": "a.json"}).loss_spec == LossSpec(
        STOCK_LOSS, None, DEFAULT_ALPHA_WARMUP
    )


def test_train_config_takes_a_spec_and_stores_it_flat() -> None:
    spec = LossSpec("wiou-v3", 2.0, 0.5, {"focus_delta": 2.0})
    cfg = TrainConfig("a.json", loss=spec)
    flat = TrainConfig(
        "a.json", loss="wiou-v3", alpha=2.0, alpha_warmup=0.5, loss_kwargs={"focus_delta": 2.0}
    )
    assert cfg == flat and cfg.to_dict() == flat.to_dict() and cfg.loss_spec == spec
    assert TrainConfig.from_dict(cfg.to_dict()).loss_spec == spec
    # an unset warm-up keeps the config's
    assert TrainConfig("a.json", loss=LossSpec("giou"), alpha_warmup=0.1).alpha_warmup == 0.1
    with pytest.raises(NoisyboxError, match="^Expected alpha inside loss=LossSpec"):
        TrainConfig("a.json", loss=spec, alpha=3.0)
    with pytest.raises(NoisyboxError, match="^Expected alpha_warmup inside"):
        TrainConfig("a.json", loss=spec, alpha_warmup=0.1)


@pytest.mark.parametrize(
    ("spec", "cell_id"),
    [
        (LossSpec("alpha-iou", 3.0, 0.3), "fcos-resnet18_050__alpha-iou@3~w0.3__eta0.1__s0"),
        (LossSpec("iou", 1.0), "fcos-resnet18_050__iou__eta0.1__s0"),
        (LossSpec("iou", 2.0), "fcos-resnet18_050__iou@2__eta0.1__s0"),
        (LossSpec("alpha-giou", 1.0, 1.0), "fcos-resnet18_050__alpha-giou@1~w1__eta0.1__s0"),
        (LossSpec("log-iou", 0.0, 0.0), "fcos-resnet18_050__log-iou@0~w0__eta0.1__s0"),
        (LossSpec(STOCK_LOSS), "fcos-resnet18_050__torchvision__eta0.1__s0"),
    ],
)
def test_cell_ids_are_unchanged(spec: LossSpec, cell_id: str) -> None:
    cell = Cell(DetectorSpec("fcos", "resnet18_050"), spec, 0.1, 0)
    assert cell.cell_id == cell_id
    assert LossSpec.from_cell(cell.to_dict()) == spec
    missing = NoiseConfig("none", corruptions=("missing",))
    with_condition = Cell(DetectorSpec("fcos", "resnet18_050"), spec, 0.1, 0, missing)
    assert with_condition.cell_id == cell_id.replace("__eta", "__missing__eta")


@pytest.mark.parametrize("study", ["paper-mini", "bccd-cpu", "loss-zoo", "ultralytics-cpu"])
def test_committed_studies_keep_their_fingerprint_and_cell_ids(study: str) -> None:
    stored = json.loads((RESULTS / study / "benchmark.json").read_text())
    cfg = load_config(stored["config"], check_paths=False)
    assert cfg.fingerprint() == stored["fingerprint"]
    ids = {cell.cell_id for cell in expand_grid(cfg)}
    records = {p.stem for p in (RESULTS / study / "records").glob("*.json")}
    assert records and records <= ids
