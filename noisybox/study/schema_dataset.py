"""Validation of a study config's ``dataset``: the builtin shapes, files, VOC sets, named sets.

Part of :func:`noisybox.study.schema.validate_config`; every problem is collected on its
:class:`~noisybox.study._checker.Checker`, each naming its key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from noisybox._limits import MAX_DATASET_IMAGES, MAX_IMAGE_SIZE, MAX_SEED
from noisybox.study._checker import Checker
from noisybox.study.spec import BUILTIN_DATASETS, DATASET_FORMATS, DatasetConfig

__all__ = ["resolve_path", "validate_dataset"]

_SHAPES_OPTIONS = ("num_train", "num_val", "num_calib", "image_size", "seed")
_SPLIT_ROLES = ("train", "val", "test", "calibration_train")
_VOC_DEFAULT_SETS = {
    "train": "trainval",
    "val": "val",
    "test": "test",
    "calibration_train": "train",
}
# upper bounds of the built-in dataset's options (see noisybox._limits)
_HIGH = {
    "num_train": MAX_DATASET_IMAGES,
    "num_val": MAX_DATASET_IMAGES,
    "num_calib": MAX_DATASET_IMAGES,
    "image_size": MAX_IMAGE_SIZE,
    "seed": MAX_SEED,
}


def _named_key(value: dict[str, Any]) -> bool:
    from noisybox.data.voc_splits import NAMED_DATASETS

    return any(k in value for k in NAMED_DATASETS)


def resolve_path(base: Path, value: str) -> Path:
    path = Path(os.path.expandvars(os.path.expanduser(value)))
    return path if path.is_absolute() else base / path


def _validate_voc_sets(
    c: Checker, value: dict[str, Any], base: Path, check_paths: bool
) -> DatasetConfig | None:
    """``{voc: PATH, train: SET, ...}``, ``{bccd: PATH}`` or ``{name: bccd, root: PATH}``."""
    from noisybox.data.voc_splits import NAMED_DATASETS

    named = next((k for k in NAMED_DATASETS if k in value), None)
    if named is not None:  # the shorthand {bccd: PATH}; PATH null: the environment variable
        rest = {k: v for k, v in value.items() if k != named}
        value = {"name": named, "root": value[named], **rest}
    d = c.mapping("dataset", value, ("voc", "name", "root", *_SPLIT_ROLES))
    if d is None:
        return None
    name = d.get("name")
    sets = dict(_VOC_DEFAULT_SETS)
    if name is not None:
        if c.choice("dataset.name", name, NAMED_DATASETS) is None:
            return None
        sets = dict(NAMED_DATASETS[name].splits)
        if "voc" in d:
            c.errors.append("dataset.voc: Expected root (or the dataset's name as key) with name")
        raw_root = d.get("root")
        if raw_root is None:
            raw_root = os.environ.get(NAMED_DATASETS[name].env)
            if not raw_root:
                c.errors.append(
                    f"dataset.root: Expected the folder of {name} (or ${NAMED_DATASETS[name].env}) "
                    f"but got none; get it with {NAMED_DATASETS[name].source}"
                )
                return None
    else:
        raw_root = d.get("voc")
        if "root" in d:
            c.errors.append("dataset.root: Expected voc: PATH (root goes with a dataset name)")
    key = "dataset.root" if name else "dataset.voc"
    several = bool(isinstance(raw_root, list) and not name and raw_root)
    items: list[Any] = list(raw_root) if isinstance(raw_root, list) and several else [raw_root]
    given = [c.string(f"{key}[{k}]" if several else key, v) for k, v in enumerate(items)]
    for role in _SPLIT_ROLES:
        if role in d:
            v = c.string(f"dataset.{role}", d[role])
            if v is not None:
                sets[role] = v
    paths = [g for g in given if g is not None]
    if len(paths) < len(given):
        return None
    roots = [resolve_path(base, r) for r in paths]
    if check_paths:
        from noisybox.data.voc_splits import check_disjoint, check_named_dataset
        from noisybox.errors import NoisyboxError

        try:
            if name is not None:
                roots = [check_named_dataset(name, roots[0])]
            for root in roots:
                if not (root / "Annotations").is_dir():
                    raise NoisyboxError(
                        f"Expected a VOC folder with Annotations/ (resolved to {root}) but got none"
                    )
            check_disjoint([str(r) for r in roots], sets)
        except NoisyboxError as exc:
            c.errors.append(f"dataset: {exc}")
            return None
    voc: str | tuple[str, ...] = tuple(map(str, roots)) if several else str(roots[0])
    return DatasetConfig(format="voc", voc=voc, name=name, image_sets=sets)


def validate_dataset(c: Checker, value: Any, base: Path, check_paths: bool) -> DatasetConfig | None:
    path_keys = ("train_annotations", "train_images", "test_annotations", "test_images")
    if isinstance(value, dict) and ("voc" in value or "name" in value or _named_key(value)):
        return _validate_voc_sets(c, value, base, check_paths)
    if isinstance(value, dict) and "builtin" in value:
        d = c.mapping("dataset", value, ("builtin", *_SHAPES_OPTIONS))
        if d is None:
            return None
        builtin = c.choice("dataset.builtin", d["builtin"], BUILTIN_DATASETS)
        options: dict[str, Any] = {}
        for k in _SHAPES_OPTIONS:
            if k in d:
                low = 0 if k == "seed" else 1
                v = c.number(f"dataset.{k}", d[k], integer=True, low=low, high=_HIGH[k])
                if v is not None:
                    options[k] = int(v)
        return DatasetConfig(builtin=builtin, builtin_options=options) if builtin else None
    val_keys = ("val_annotations", "val_images")
    d = c.mapping("dataset", value, ("builtin", *path_keys, *val_keys, "format", *_SHAPES_OPTIONS))
    if d is None:
        return None
    fields: dict[str, Any] = {}
    for k in (*path_keys, *val_keys):  # the validation split's two are optional
        if k not in d:
            if k in path_keys:
                c.errors.append(
                    f"dataset.{k}: Expected this key (or dataset.builtin) but it is missing"
                )
            continue
        s = c.string(f"dataset.{k}", d[k])
        if s is None:
            continue
        path = resolve_path(base, s)
        if check_paths and not path.exists():
            c.error(f"dataset.{k}", f"an existing path (resolved to {path})", s)
        fields[k] = str(path)
    if ("val_annotations" in fields) != ("val_images" in fields):
        c.errors.append("dataset: Expected val_annotations and val_images together")
    fmt = d.get("format")
    if fmt is not None:
        c.choice("dataset.format", fmt, DATASET_FORMATS)
    for k in _SHAPES_OPTIONS:
        if k in d:
            c.errors.append(
                f"dataset.{k}: Expected this key only with dataset.builtin but got {d[k]!r}"
            )
    if any(k not in fields for k in path_keys):
        return None
    return DatasetConfig(format=fmt, **fields)
