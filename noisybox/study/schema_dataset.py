"""The ``dataset`` of a study config as pydantic models: the builtin shapes, files, VOC sets,
named sets.

A ``dataset`` mapping is one of three models (:data:`DatasetField` picks it by its keys):
:class:`BuiltinDataset` (``builtin: shapes``), :class:`VocDataset` (``voc: PATH``,
``{bccd: PATH}`` or ``{name: bccd, root: PATH}``, with the image set of each role) and
:class:`FileDataset` (the four annotation and image paths). Relative paths are resolved
against the context's ``base_dir``; each model gives its :class:`DatasetConfig`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import (
    Discriminator,
    PlainValidator,
    PrivateAttr,
    Tag,
    ValidationInfo,
    model_validator,
)

from noisybox._limits import MAX_DATASET_IMAGES, MAX_IMAGE_SIZE, MAX_SEED
from noisybox.data.voc_splits import NAMED_DATASETS, check_disjoint, check_named_dataset
from noisybox.errors import NoisyboxError
from noisybox.study.schema_types import (
    StudyModel,
    check_choice,
    choice,
    context_of,
    expected,
    non_empty_str,
    number,
    optional,
    problem,
    problems,
)
from noisybox.study.spec import BUILTIN_DATASETS, DATASET_FORMATS, DatasetConfig

__all__ = [
    "BuiltinDataset",
    "DatasetField",
    "FileDataset",
    "VocDataset",
    "resolve_path",
]

_SHAPES_OPTIONS = ("num_train", "num_val", "num_calib", "image_size", "seed")
_SPLIT_ROLES = ("train", "val", "test", "calibration_train")
_VOC_DEFAULT_SETS = {
    "train": "trainval",
    "val": "val",
    "test": "test",
    "calibration_train": "train",
}


def resolve_path(base: Path, value: str) -> Path:
    """``value`` with ``~`` and ``$VARS`` expanded, relative to ``base`` unless absolute."""
    path = Path(os.path.expandvars(os.path.expanduser(value)))
    return path if path.is_absolute() else base / path


def _named_datasets() -> dict[str, Any]:
    return dict(NAMED_DATASETS)


# --------------------------------------------------------------------------- builtin

Images = Annotated[int | None, PlainValidator(number(integer=True, low=1, high=MAX_DATASET_IMAGES))]


class BuiltinDataset(StudyModel):
    """``builtin: shapes`` and the options of its generator (``make_shapes_dataset``)."""

    builtin: Annotated[str, PlainValidator(choice(BUILTIN_DATASETS))]
    num_train: Images = None
    num_val: Images = None
    num_calib: Images = None
    image_size: Annotated[
        int | None, PlainValidator(number(integer=True, low=1, high=MAX_IMAGE_SIZE))
    ] = None
    seed: Annotated[int | None, PlainValidator(number(integer=True, low=0, high=MAX_SEED))] = None

    def to_spec(self) -> DatasetConfig:
        options = {k: getattr(self, k) for k in _SHAPES_OPTIONS if getattr(self, k) is not None}
        return DatasetConfig(builtin=self.builtin, builtin_options=options)


# --------------------------------------------------------------------------- files


def _existing_path(value: Any, info: ValidationInfo) -> str:
    """A dataset path, resolved (and checked to exist with ``check_paths``)."""
    context = context_of(info)
    path = resolve_path(context.base_dir, non_empty_str(value))
    if context.check_paths and not path.exists():
        raise problem(expected(f"an existing path (resolved to {path})", value))
    return str(path)


def _only_with_builtin(value: Any) -> None:
    raise problem(f"Expected this key only with dataset.builtin but got {value!r}")


DatasetPath = Annotated[str, PlainValidator(_existing_path)]
OptionalPath = Annotated[str | None, PlainValidator(_existing_path)]
ShapesOnly = Annotated[None, PlainValidator(_only_with_builtin)]


class FileDataset(StudyModel):
    """The four paths of a real dataset (its validation split's two optional)."""

    missing_hint: ClassVar[str] = " (or dataset.builtin)"

    train_annotations: DatasetPath
    train_images: DatasetPath
    test_annotations: DatasetPath
    test_images: DatasetPath
    val_annotations: OptionalPath = None
    val_images: OptionalPath = None
    format: Annotated[str | None, PlainValidator(optional(choice(DATASET_FORMATS)))] = None
    num_train: ShapesOnly = None
    num_val: ShapesOnly = None
    num_calib: ShapesOnly = None
    image_size: ShapesOnly = None
    seed: ShapesOnly = None

    @model_validator(mode="after")
    def _validation_split_whole(self) -> FileDataset:
        if (self.val_annotations is None) != (self.val_images is None):
            raise problem("Expected val_annotations and val_images together")
        return self

    def to_spec(self) -> DatasetConfig:
        return DatasetConfig(
            format=self.format,
            train_annotations=self.train_annotations,
            train_images=self.train_images,
            test_annotations=self.test_annotations,
            test_images=self.test_images,
            val_annotations=self.val_annotations,
            val_images=self.val_images,
        )


# --------------------------------------------------------------------------- VOC sets


def _voc_roots(value: Any) -> str | tuple[str, ...]:
    """``voc``: a folder, or a non-empty list of year folders read as one."""
    if not isinstance(value, list) or not value:
        return non_empty_str(value)
    bad = [(k,) for k, v in enumerate(value) if not isinstance(v, str) or not v]
    if bad:
        raise problems([(k, expected("a non-empty string", value[k[0]])) for k in bad])
    return tuple(value)


def _dataset_name(value: Any) -> str:
    """A named real dataset (``bccd``)."""
    return check_choice(value, _named_datasets())


OptionalName = Annotated[str | None, PlainValidator(optional(non_empty_str))]
ImageSet = Annotated[str | None, PlainValidator(non_empty_str)]


class VocDataset(StudyModel):
    """A Pascal VOC folder (or a named dataset's) and the image set of each role."""

    voc: Annotated[str | tuple[str, ...] | None, PlainValidator(_voc_roots)] = None
    name: Annotated[str | None, PlainValidator(optional(_dataset_name))] = None
    root: OptionalName = None
    train: ImageSet = None
    val: ImageSet = None
    test: ImageSet = None
    calibration_train: ImageSet = None
    _spec: DatasetConfig = PrivateAttr(default_factory=DatasetConfig)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``{bccd: PATH}`` is ``{name: bccd, root: PATH}``."""
        if isinstance(data, dict):
            named = next((k for k in _named_datasets() if k in data), None)
            if named is not None:
                rest = {k: v for k, v in data.items() if k != named}
                return {"name": named, "root": data[named], **rest}
        return data

    @model_validator(mode="after")
    def _check_folders(self, info: ValidationInfo) -> VocDataset:
        """The roots (a named dataset's from its environment variable when unset), checked
        to be VOC folders whose test set shares no image with the others."""
        context = context_of(info)
        issues: list[tuple[tuple[str | int, ...], str]] = []
        roots = self._given_roots(issues)
        if roots is None:
            raise problems(issues)
        sets = dict(_VOC_DEFAULT_SETS)
        if self.name is not None:
            sets = dict(_named_datasets()[self.name].splits)
        sets.update({r: getattr(self, r) for r in _SPLIT_ROLES if getattr(self, r) is not None})
        paths = [resolve_path(context.base_dir, r) for r in roots]
        if context.check_paths:
            try:
                paths = _checked_roots(self.name, paths, sets)
            except NoisyboxError as exc:
                issues.append(((), str(exc)))
        if issues:
            raise problems(issues)
        several = isinstance(self.voc, tuple) and self.name is None
        voc: str | tuple[str, ...] = tuple(map(str, paths)) if several else str(paths[0])
        self._spec = DatasetConfig(format="voc", voc=voc, name=self.name, image_sets=sets)
        return self

    def _given_roots(self, issues: list[tuple[tuple[str | int, ...], str]]) -> list[str] | None:
        if self.name is None:
            if "root" in self.model_fields_set:
                issues.append((("root",), "Expected voc: PATH (root goes with a dataset name)"))
            if self.voc is None:
                issues.append((("voc",), expected("a non-empty string", None)))
                return None
            return list(self.voc) if isinstance(self.voc, tuple) else [self.voc]
        if self.voc is not None:
            issues.append((("voc",), "Expected root (or the dataset's name as key) with name"))
        named = _named_datasets()[self.name]
        root = self.root if self.root is not None else os.environ.get(named.env)
        if not root:
            issues.append(
                (
                    ("root",),
                    f"Expected the folder of {self.name} (or ${named.env}) but got none; "
                    f"get it with {named.source}",
                )
            )
            return None
        return [root]

    def to_spec(self) -> DatasetConfig:
        return self._spec


def _checked_roots(name: str | None, roots: list[Path], sets: dict[str, str]) -> list[Path]:
    """``roots`` checked (a named dataset against its published copy).

    Raises:
        NoisyboxError: not a VOC folder, a changed named dataset, or sets sharing images.
    """
    if name is not None:
        roots = [check_named_dataset(name, roots[0])]
    for root in roots:
        if not (root / "Annotations").is_dir():
            raise NoisyboxError(
                f"Expected a VOC folder with Annotations/ (resolved to {root}) but got none"
            )
    check_disjoint([str(r) for r in roots], sets)
    return roots


# --------------------------------------------------------------------------- the union


def _dataset_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "voc" in value or "name" in value or any(k in value for k in _named_datasets()):
            return "<voc>"
        if "builtin" in value:
            return "<builtin>"
    return "<files>"


#: ``dataset``: the model its keys name (a VOC or named set, the builtin shapes, or files).
DatasetField = Annotated[
    Annotated[VocDataset, Tag("<voc>")]
    | Annotated[BuiltinDataset, Tag("<builtin>")]
    | Annotated[FileDataset, Tag("<files>")],
    Discriminator(_dataset_kind),
]
