"""NoiseSpec: the noise settings validated once, taken whole, and the same draws as the
loose keywords (issue 30)."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import noisybox
from noisybox.cli import main
from noisybox.corrupt import corrupt_annotations, corrupt_boxes, perturb_annotations
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations, read_provenance
from noisybox.noise import BoxNoise, NoiseSpec, draw_box_noise, list_noise_models, perturb_boxes

DATA = Path(__file__).parent / "data"
COCO = DATA / "coco" / "instances_tiny.json"
BOXES, SIZES = np.array([[10.0, 10, 50, 40]]), np.array([[100.0, 100]])

# sha256 of perturb_boxes' float64 output for _boxes() (eta=0.3, eta_w=0.1, ratio=0.75,
# rng=11), computed with the code before NoiseSpec existed (commit 57b1c8b): the random
# streams of every model must not move.
PINNED = {
    ("edge-jitter", "shift"): "f4e42592e35e4923054bb3283f5401968ee3d21a48782488933484701d356564",
    ("edge-jitter", "truncate"): "760562f78e6e0e8dfd0095c08c229a0bc2d316391ba4be79b26ab7106444e23b",
    ("gaussian", "shift"): "4ecc211aa42c92b1a02e4b9bcb62fb08afbb7be9481a7e3e847f29fdc7ee13a9",
    ("gaussian", "truncate"): "d9dd7eadbebcdb1899e15cdafc0cb09c1ee0290f950ffd5a1818c03bd4278cbd",
    (
        "gaussian-corner",
        "shift",
    ): "b980ffbfd7b44ba3596a4ff97785a319c2c67baea40c05869d0a26eb6bf5bea7",
    (
        "gaussian-corner",
        "truncate",
    ): "27d9cf3f7c3a73b7327ff721566440950fdc28b1e58bdcca45065eb975fcb0af",
    ("oamil", "shift"): "47b9013248c530aded000d54e8726408c5444e836b2e2b3a6eaa7ba5129f5ce4",
    ("oamil", "truncate"): "c7d42a8d6c675983060ec82793089c9b7906ae86fe114d8d95d1fdb75b5a9e78",
    ("uniform", "shift"): "9ad1d2889a3d4007142b6bf82e12e54e03e7e648ab2133cb3d9f3e18022a2c79",
    ("uniform", "truncate"): "80e0a0a9e7e23f2cfc63745e8b63af3f41515c21a7447aac132722836387a9af",
}
# The same for corrupt_annotations on COCO (the document with its version stripped).
PINNED_COCO = "8cf078efdd47cd6552477c15bf0db349722c5299683fdcc500ce342ba81c1d95"
COCO_NOISE: dict[str, Any] = {
    "eta": 0.2,
    "eta_h": 0.05,
    "boundary": "truncate",
    "ratio": 0.5,
    "min_size": 2.0,
    "missing": 0.2,
    "relocate": 0.3,
}


def _boxes() -> np.ndarray:
    rng = np.random.default_rng(0)
    xy, wh = rng.uniform(0, 50, (64, 2)), rng.uniform(1, 40, (64, 2))
    return np.concatenate([xy, xy + wh], 1)


def _sha(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()


@pytest.mark.parametrize(("model", "boundary"), sorted(PINNED))
def test_draws_pinned_and_equal_through_spec_and_keywords(model: str, boundary: str) -> None:
    assert model in list_noise_models()
    keywords = {"eta": 0.3, "eta_w": 0.1, "noise_model": model, "boundary": boundary}
    old = perturb_boxes(_boxes(), (100, 100), **keywords, ratio=0.75, rng=11)
    new = perturb_boxes(_boxes(), (100, 100), spec=NoiseSpec(**keywords, ratio=0.75), rng=11)
    assert _sha(old) == PINNED[(model, boundary)]
    assert _sha(new) == _sha(old)


def _coco_doc(path: Path) -> str:
    doc = json.loads(path.read_text())
    doc["info"]["noisybox"].pop("noisybox_version")
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def test_corrupt_annotations_files_pinned_and_byte_identical(tmp_path: Path) -> None:
    old = corrupt_annotations(COCO, tmp_path / "old.json", **COCO_NOISE, seed=1)
    new = corrupt_annotations(COCO, tmp_path / "new.json", spec=NoiseSpec(**COCO_NOISE), seed=1)
    assert _coco_doc(tmp_path / "old.json") == PINNED_COCO
    assert (tmp_path / "old.json").read_bytes() == (tmp_path / "new.json").read_bytes()
    assert old.provenance == new.provenance
    voc = {"eta": 0.25, "noise_model": "gaussian", "ratio": 0.6}
    corrupt_annotations(DATA / "voc" / "VOC2007", tmp_path / "a", **voc, on_invalid="skip")
    corrupt_annotations(DATA / "voc" / "VOC2007", tmp_path / "b", spec=NoiseSpec(**voc), on_invalid="skip")  # fmt: skip
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.xml"))
    assert files and all(
        (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files
    )


def test_box_noise_and_annotations_same_through_spec() -> None:
    import albumentations as A

    def run(transform: BoxNoise) -> list[Any]:
        pipe = A.Compose(
            [transform],
            bbox_params=A.BboxParams(format="pascal_voc", label_fields=["labels"]),
            seed=3,
        )
        image = np.zeros((100, 120, 3), np.uint8)
        return [
            pipe(image=image, bboxes=_boxes()[:20].tolist(), labels=list(range(20)))["bboxes"]
            for _ in range(3)
        ]

    keywords = {"eta": 0.3, "eta_h": 0.1, "ratio": 0.6, "boundary": "truncate"}
    assert np.array_equal(run(BoxNoise(**keywords)), run(BoxNoise(spec=NoiseSpec(**keywords))))
    ann = read_annotations(COCO)
    assert np.array_equal(
        perturb_annotations(ann, eta=0.3, seed=3).boxes,
        perturb_annotations(ann, spec=NoiseSpec(eta=0.3), seed=3).boxes,
    )


def test_legacy_draw_box_noise_call_warns_and_draws_the_same() -> None:
    sizes = np.array([[10.0, 20.0], [30.0, 5.0], [8.0, 8.0]])
    with pytest.warns(FutureWarning, match="NoiseSpec"):
        old = draw_box_noise(np.random.default_rng(4), sizes, 0.2, 0.1, noise_model="gaussian")
    spec = NoiseSpec(eta=0.2, eta_h=0.1, noise_model="gaussian")
    assert np.array_equal(old, draw_box_noise(np.random.default_rng(4), sizes, spec))


def _surfaces(tmp_path: Path, **noise: Any) -> list[Callable[[], Any]]:
    """Every Python surface given the same loose noise keywords."""
    rates = {k: noise[k] for k in ("missing", "class_flip", "extra", "relocate") if k in noise}
    box = {k: v for k, v in noise.items() if k not in rates}
    calls = [
        lambda: NoiseSpec(**noise),
        lambda: corrupt_annotations(COCO, tmp_path / "o.json", **{"eta": 0.2, **noise}),
        lambda: corrupt_boxes(read_annotations(COCO), **{"eta": 0.2, **noise}),
    ]
    if not rates:
        calls += [lambda: perturb_boxes(BOXES, SIZES, **box), lambda: BoxNoise(**box)]
    return calls


@pytest.mark.parametrize(
    ("noise", "option", "message"),
    [
        ({"eta": 1.0}, "--eta", "Expected eta in [0, 1) but got 1.0"),
        ({"eta_w": -0.1}, "--eta-w", "Expected eta_w in [0, 1) but got -0.1"),
        ({"eta_h": float("nan")}, "--eta-h", "Expected eta_h in [0, 1) but got nan"),
        ({"ratio": 1.5}, "--ratio", "Expected ratio in [0, 1] but got 1.5"),
        ({"missing": 1.0}, "--missing", "Expected missing in [0, 1) but got 1.0"),
        ({"relocate": -0.5}, "--relocate", "Expected relocate in [0, 1) but got -0.5"),
        ({"min_size": 0.0}, None, "Expected min_size > 0 and finite but got 0.0"),
        ({"boundary": "wrap"}, None, "Expected boundary in ['shift', 'truncate'] but got 'wrap'"),
        ({"noise_model": "nope"}, None, "Expected a noise model in"),
    ],
)
def test_bounds_refused_alike_everywhere(
    tmp_path: Path, noise: dict[str, Any], option: str | None, message: str
) -> None:
    for call in _surfaces(tmp_path, **noise):
        with pytest.raises(NoisyboxError) as info:
            call()
        assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert not (tmp_path / "o.json").exists()
    if option is not None:
        value = str(next(iter(noise.values())))
        result = CliRunner().invoke(main, ["corrupt", str(COCO), "-o", "x.json", option, value])
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize(
    "call",
    [
        lambda s: perturb_boxes(BOXES, SIZES, spec=s, eta=0.3),
        lambda s: perturb_boxes(BOXES, SIZES, spec=s, model="gaussian"),
        lambda s: corrupt_annotations(COCO, "unused.json", spec=s, missing=0.1),
        lambda s: corrupt_boxes(read_annotations(COCO), spec=s, boundary="truncate"),
        lambda s: perturb_annotations(read_annotations(COCO), spec=s, ratio=0.5),
        lambda s: BoxNoise(spec=s, eta_w=0.1),
    ],
)
def test_spec_and_keywords_together_refused(call: Callable[[NoiseSpec], Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # model=: the deprecated alias
        with pytest.raises(TypeError, match="expected either spec or the noise keywords"):
            call(NoiseSpec())


def test_spec_or_eta_required_and_spec_type_checked() -> None:
    with pytest.raises(TypeError, match="missing required keyword argument: 'eta'"):
        corrupt_boxes(read_annotations(COCO))
    with pytest.raises(TypeError, match="expected spec a NoiseSpec but got dict"):
        perturb_boxes(BOXES, SIZES, spec={"eta": 0.2})  # type: ignore[arg-type]
    with pytest.raises(NoisyboxError, match="without annotation-level noise"):
        perturb_annotations(read_annotations(COCO), spec=NoiseSpec(missing=0.1))


@pytest.mark.parametrize(
    "spec",
    [
        NoiseSpec(),
        NoiseSpec(noise_model="gaussian", eta=0.3, eta_w=0.1, boundary="truncate", ratio=0.5),
        NoiseSpec(eta=0.1, min_size=2.5, missing=0.2, extra=0.1, relocate=0.05),
    ],
)
def test_to_dict_from_dict_round_trip(spec: NoiseSpec) -> None:
    data = spec.to_dict()
    assert NoiseSpec.from_dict(data) == spec
    assert NoiseSpec.from_dict(json.loads(json.dumps(data))) == spec
    assert list(data)[:7] == ["model", "eta", "eta_w", "eta_h", "boundary", "ratio", "min_size"]


def test_spec_read_back_from_written_provenance(tmp_path: Path) -> None:
    spec = NoiseSpec(**COCO_NOISE)
    result = corrupt_annotations(COCO, tmp_path / "o.json", spec=spec, seed=1)
    assert NoiseSpec.from_dict(result.provenance) == spec
    assert NoiseSpec.from_dict(read_provenance(read_annotations(tmp_path / "o.json")) or {}) == spec
    reproduced = corrupt_annotations(
        DATA / "voc_oamil" / "VOC2007", tmp_path / "r", eta=0.2, reproduce="oamil"
    )
    assert reproduced.provenance["min_size"] is None  # the source has none: the default
    assert NoiseSpec.from_dict(reproduced.provenance) == NoiseSpec(
        noise_model="oamil", eta=0.2, boundary="truncate"
    )


def test_spec_is_frozen_resolved_and_exported() -> None:
    spec = NoiseSpec(eta=0.3, eta_w=0.1)
    assert (spec.eta_w, spec.eta_h, spec.axis_etas, spec.anisotropic) == (
        0.1,
        0.3,
        (0.1, 0.3),
        True,
    )
    assert NoiseSpec(eta=0.3, eta_w=0.3).anisotropic is False
    with pytest.raises(AttributeError):
        spec.eta = 0.5  # type: ignore[misc]
    assert noisybox.NoiseSpec is NoiseSpec and "NoiseSpec" in noisybox.__all__
    assert BoxNoise(spec=spec).eta_w == 0.1
