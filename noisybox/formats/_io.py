"""Small helpers shared by the readers and writers (files are written by :mod:`noisybox._fileio`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TypeVar

import numpy as np

from noisybox._progress import progress_iter

__all__ = [
    "MANIFEST_NAME",
    "changed_rows",
    "group_by_file",
    "progress_enumerate",
]

_T = TypeVar("_T")

MANIFEST_NAME = "noisybox-manifest.json"


def changed_rows(boxes: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``bool[N]`` rows of ``boxes`` that differ from ``original`` (NaN equals NaN)."""
    differ = (boxes != original) & ~(np.isnan(boxes) & np.isnan(original))
    return np.any(differ, axis=1)


def progress_enumerate(
    items: Sequence[_T], *, progress: bool, desc: str, unit: str = "file"
) -> Iterable[tuple[int, _T]]:
    """``enumerate(items)``, behind a progress bar on stderr when ``progress``
    (:func:`noisybox._progress.progress_iter`).

    >>> list(progress_enumerate(["a", "b"], progress=False, desc="reading"))
    [(0, 'a'), (1, 'b')]
    """
    if not progress:
        return enumerate(items)
    return enumerate(progress_iter(items, desc, unit=unit, leave=False))


def group_by_file(
    rows: np.ndarray, file_index: np.ndarray, item_index: np.ndarray, values: Iterable[_T]
) -> dict[int, dict[int, _T]]:
    """``{file: {item: value}}`` for box ``rows`` of per-file formats (VOC object, YOLO line).

    Args:
        rows: ``int[K]`` box rows.
        file_index: ``int[N]`` file of every box row.
        item_index: ``int[N]`` position of every box row in its file.
        values: ``K`` values, one per row of ``rows``.

    >>> group_by_file(np.array([0, 2]), np.array([0, 0, 1]), np.array([0, 1, 0]), "xy")
    {0: {0: 'x'}, 1: {0: 'y'}}
    """
    out: dict[int, dict[int, _T]] = {}
    for row, value in zip(rows.tolist(), values, strict=True):
        out.setdefault(int(file_index[row]), {})[int(item_index[row])] = value
    return out
