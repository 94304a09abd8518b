"""Atomic file and folder writes shared by the writers."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from noisybox.errors import NoisyboxError

__all__ = [
    "MANIFEST_NAME",
    "atomic_dir",
    "atomic_write_bytes",
    "changed_rows",
    "check_not_same_path",
]

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
