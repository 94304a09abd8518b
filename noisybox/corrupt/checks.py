"""What :func:`~noisybox.corrupt.corrupt_annotations` refuses before it reads anything:
settings a run cannot honour, outputs that would overwrite an input, inputs that share a
name (each of several is written under its own name)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from noisybox._fileio import check_outputs
from noisybox.corrupt.in_memory import check_seed_and_policy
from noisybox.corrupt.oamil import check_reproduce
from noisybox.errors import NoisyboxError
from noisybox.noise.published import OAMIL_SEED
from noisybox.noise.spec import NoiseSpec

__all__ = ["check_paths", "check_rates", "checked_settings", "output_names"]


def check_paths(
    paths: list[str | os.PathLike[str]],
    output_path: str | os.PathLike[str],
    *,
    image_root: object,
) -> list[str]:
    """The name each input is written under; the output checked against the inputs.

    Raises:
        NoisyboxError: an output refused by :func:`~noisybox._fileio.check_outputs`, two
            inputs of the same name, or an ``image_root`` with several inputs.
    """
    several = len(paths) > 1
    names = output_names(paths) if several else [Path(paths[0]).name]
    check_outputs(
        {"the output": output_path},
        {"": paths[0]} if not several else dict(zip(names, paths, strict=True)),
        folders=("the output",) if several or Path(paths[0]).is_dir() else (),
    )
    if several and image_root is not None:
        raise NoisyboxError(
            f"Expected image_root with a single YOLO input but got {len(paths)} inputs"
        )
    return names


def output_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """The name under which each of several inputs is written: its own file or folder name.

    Raises:
        NoisyboxError: if two inputs share a name.
    """
    names = [Path(p).resolve().name for p in paths]
    for k, name in enumerate(names):
        if name in names[:k]:
            raise NoisyboxError(
                f"Expected inputs with distinct names but got {name!r} twice "
                f"({paths[names.index(name)]} and {paths[k]})"
            )
    return names


def checked_settings(
    paths: Sequence[str | os.PathLike[str]],
    spec: NoiseSpec,
    seed: int,
    on_invalid: str,
    *,
    reproduce: str | None,
    format: str | None,
    read_kwargs: dict[str, Any],
) -> tuple[int, dict[str, Any]]:
    """``(seed, read_kwargs)`` of the run, once the settings are checked: under
    ``reproduce`` the source's seed and a VOC folder's default image set (``trainval``).

    Raises:
        NoisyboxError: a bad seed or policy (:func:`check_seed_and_policy`), annotation-level
            noise with several inputs, or settings a reproduction cannot honour
            (:func:`~noisybox.corrupt.oamil.check_reproduce`).
    """
    check_seed_and_policy(seed, on_invalid)
    check_rates(paths, spec)
    if reproduce is None:
        return seed, read_kwargs
    check_reproduce(reproduce, paths, spec, seed, format)
    return OAMIL_SEED, {"image_set": "trainval", **read_kwargs}


def check_rates(paths: Sequence[object], spec: NoiseSpec) -> None:
    """Refuse annotation-level noise with several inputs.

    Raises:
        NoisyboxError: a rate that is not 0 with several inputs.
    """
    if spec.rates and len(paths) > 1:
        raise NoisyboxError(
            f"Expected one input with --{'/--'.join(n.replace('_', '-') for n in spec.rates)} "
            f"but got {len(paths)} inputs"
        )
