"""Atomic file and folder writes, and small helpers shared by the readers and writers."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from noisybox.errors import NoisyboxError

__all__ = [
    "MANIFEST_NAME",
    "atomic_dir",
    "atomic_write_bytes",
    "changed_rows",
    "check_not_same_path",
    "group_by_file",
    "progress_enumerate",
]

_T = TypeVar("_T")

MANIFEST_NAME = "noisybox-manifest.json"


def _umask_mode(mode: int) -> int:
    # tempfile creates private (0600/0700) entries; give the result the usual permissions.
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def check_not_same_path(source: str | os.PathLike[str], output: str | os.PathLike[str]) -> None:
    """Refuse to write over the input.

    Raises:
        NoisyboxError: if ``output`` is ``source`` or lies inside ``source``'s folder tree
            when ``source`` is a folder.
    """
    src = Path(source).resolve()
    out = Path(output).resolve()
    if out == src or (src.is_dir() and src in out.parents):
        raise NoisyboxError(f"Expected an output path different from the input but got {output}")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, _umask_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` when the block succeeds.

    An existing ``path`` is replaced only if it is empty or an earlier noisybox output
    (it holds a manifest); anything else is refused so user data is never deleted.

    Raises:
        NoisyboxError: if ``path`` exists and is neither of those.
    """
    path = Path(path)
    foreign = path.exists() and (
        not path.is_dir() or (any(path.iterdir()) and not (path / MANIFEST_NAME).exists())
    )
    if foreign:
        raise NoisyboxError(
            f"Expected an absent, empty or earlier noisybox output folder but got {path}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, _umask_mode(0o777))
    try:
        yield tmp
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def changed_rows(boxes: np.ndarray, original: np.ndarray) -> np.ndarray:
    """``bool[N]`` rows of ``boxes`` that differ from ``original`` (NaN equals NaN)."""
    differ = (boxes != original) & ~(np.isnan(boxes) & np.isnan(original))
    return np.any(differ, axis=1)


def progress_enumerate(
    items: Sequence[_T], *, progress: bool, desc: str, unit: str = "file"
) -> Iterable[tuple[int, _T]]:
    """``enumerate(items)``, behind a tqdm bar on stderr when ``progress``.

    >>> list(progress_enumerate(["a", "b"], progress=False, desc="reading"))
    [(0, 'a'), (1, 'b')]
    """
    pairs = enumerate(items)
    if not progress:
        return pairs
    from tqdm import tqdm

    return tqdm(pairs, total=len(items), desc=desc, unit=unit, leave=False)


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
