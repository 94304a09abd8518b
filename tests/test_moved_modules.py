"""The old import paths of moved modules keep working for one release, with a warning."""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import noisybox.corrupt.oamil as oamil
import noisybox.noise.annotation_noise as annotation_noise
import noisybox.noise.published as published

MOVED = [
    ("noisybox.reproduce", oamil, "oamil_voc"),
    ("noisybox.reproduce", oamil, "oamil_coco"),
    ("noisybox.reproduce", oamil, "REPRODUCIBLE"),
    ("noisybox.noise.oamil_legacy", published, "oamil_legacy_boxes"),
    ("noisybox.noise.oamil_legacy", published, "OAMIL_SEED"),
    ("noisybox.noise.annotation", annotation_noise, "draw_annotation_noise"),
    ("noisybox.noise.annotation", annotation_noise, "ANNOTATION_CORRUPTIONS"),
]


@pytest.mark.parametrize(("old", "new", "name"), MOVED)
def test_an_old_path_gives_the_new_object_with_a_warning_naming_it(
    old: str, new: ModuleType, name: str
) -> None:
    module = importlib.import_module(old)
    with pytest.warns(FutureWarning, match=rf"'{old}\.{name}'.*use '{new.__name__}\.{name}'"):
        moved = getattr(module, name)
    assert moved is getattr(new, name)


def test_a_from_import_of_an_old_path_warns_at_the_importing_line() -> None:
    with pytest.warns(FutureWarning) as caught:
        from noisybox.reproduce import oamil_voc
    assert oamil_voc is oamil.oamil_voc
    assert caught[0].filename == __file__


def test_an_old_path_has_only_the_names_it_had() -> None:
    module = importlib.import_module("noisybox.noise.oamil_legacy")
    with pytest.raises(AttributeError, match="has no attribute 'gaussian_corner_noise'"):
        module.gaussian_corner_noise  # noqa: B018
