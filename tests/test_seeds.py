"""One way to split a seed into streams (noisybox._seeds), and the streams it must keep.

The values below were drawn with the code before ``_seeds`` existed (each call site
hashed its own seed): published corrupted files, the synthetic dataset's digest and the
studies' records depend on them, so they must never change.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from noisybox._seeds import child_seeds, seed_sequence, stream_rng, stream_seed
from noisybox.noise.annotation_noise import corruption_rng


@pytest.mark.parametrize(
    ("seed", "name", "expected"),
    [
        (0, "missing", [522, 889, 992, 557]),
        (3, "class_flip", [844, 25, 566, 743]),
        (12345, "extra", [884, 804, 734, 752]),
        (7, "relocate", [531, 204, 754, 288]),
    ],
)
def test_annotation_corruption_streams_are_unchanged(
    seed: int, name: str, expected: list[int]
) -> None:
    assert corruption_rng(seed, name).integers(1000, size=4).tolist() == expected


def test_synthetic_image_stream_is_unchanged(tmp_path: Path) -> None:
    from noisybox.data.synthetic import make_shapes_dataset

    ds = make_shapes_dataset(
        tmp_path / "s", num_train=1, num_val=2, image_size=64, max_objects=4, seed=3
    )
    doc = json.loads(Path(ds.val_annotations).read_text())
    drawn = [(a["bbox"], a["category_id"]) for a in doc["annotations"] if a["image_id"] == 2]
    assert drawn == [
        ([1, 21, 22, 34], 3),
        ([10, 30, 37, 28], 4),
        ([2, 27, 11, 9], 2),
        ([16, 7, 5, 6], 3),
    ]


def test_data_loader_order_and_item_seeds_are_unchanged() -> None:
    pytest.importorskip("torch")
    from noisybox.data.dataset import SeededSampler

    sampler = SeededSampler(6, shuffle=True, seed=5)
    sampler.set_epoch(2)
    assert list(sampler) == [
        (2, 7915674273905029150),
        (1, 2299111012681876895),
        (5, 1012216814257164372),
        (4, 4292389226915545051),
        (3, 4268350524073335237),
        (0, 6928048032730308468),
    ]
    assert list(SeededSampler(3, shuffle=False, seed=0)) == [
        (0, 6375474604893067239),
        (1, 8227443069378110354),
        (2, 6285238371553840740),
    ]


def test_stream_seed_and_child_seeds_are_unchanged() -> None:
    assert stream_seed(0) == 6375474604893067239
    assert stream_seed(1, -1) == 4459254177266030938  # any integer, taken modulo 2**63
    assert stream_seed(2**64 + 3, 7, 9) == 2229855693414532790
    assert child_seeds(123, 3) == [693650678, 2973253328, 387799215]
    assert child_seeds(2**62 + 5, 2) == [2039663683, 3555316550]


@pytest.mark.parametrize("path", [(0,), (0, 1), (5, 2, 9), (2**40 + 1, 3)])
def test_streams_are_numpy_entropy_lists(path: tuple[int, ...]) -> None:
    expected = np.random.default_rng(list(path)).random(3)
    assert np.array_equal(stream_rng(*path).random(3), expected)
    assert seed_sequence(*path).entropy == list(path)


def test_different_paths_give_different_streams() -> None:
    paths = [(0, 1), (0, 2), (1, 1), (0, 1, 1), (0, 0, 1)]
    draws = {tuple(stream_rng(*p).integers(2**32, size=2).tolist()) for p in paths}
    assert len(draws) == len(paths)
    assert len({stream_seed(0, k) for k in range(1, 101)}) == 100


def test_trailing_zero_keys_share_a_stream() -> None:
    # SeedSequence pads its entropy with zeros: documented in noisybox._seeds, kept because
    # the streams above depend on it (the loader's order seed equals item 0's seed).
    assert stream_seed(5, 2) == stream_seed(5, 2, 0)
    assert np.array_equal(stream_rng(0, 1).random(2), stream_rng(0, 1, 0).random(2))


def test_negative_seeds_are_refused_by_stream_rng() -> None:
    with pytest.raises(ValueError):
        stream_rng(-1, 1)
