"""The one write path: every file noisybox writes goes through this module.

Policy (also in the documentation, ``docs/guides/files.md``):

* **Atomic.** A file is written to a temporary file in its own folder, flushed to disk
  and renamed over the target, so a reader sees the old file or the new one, never half of
  one, even after a power cut. Folder outputs (VOC, YOLO) are built in a temporary folder
  and swapped in the same way (:func:`atomic_dir`). A lone file is flushed with ``fsync``;
  a batch (a folder output, or the files of a :func:`staged` block, e.g. the thousand PNGs
  of ``make-dataset``) with one ``sync`` before its renames, which costs about as much as
  one ``fsync`` instead of one per file.
* **Symbolic links are followed.** ``-o link.json`` writes the file the link points to (a
  chain of links is followed to its end); the link itself stays.
* **Special files are refused, never replaced.** An existing output that is not a regular
  file (character or block device, FIFO, socket, a folder where a file is expected), the
  name ``-``, and any path that is or leads through ``/dev`` (but ``/dev/shm``), ``/proc``
  or ``/sys`` are refused with one line: ``-o /dev/null`` cannot turn the device into a
  regular file, and ``-o /dev/stdout`` (a link into ``/proc/self/fd``) cannot replace the
  file a shell redirected standard output to. Commands print their results on standard
  output (``--json`` for machine-readable ones), so nothing needs ``-o -``.
* **Permissions follow the umask.** A new file gets ``0o666 & ~umask`` and a new folder
  ``0o777 & ~umask`` (what ``open`` and ``mkdir`` give); a file that is replaced keeps
  its mode.
* **Inputs are never outputs.** :func:`check_outputs` refuses an output that resolves to an
  input (same path after following links, or :func:`os.path.samefile`), lies inside an
  input folder, contains an input, or is another output of the same command.
* **All or nothing.** Inside :func:`staged`, files appear only when the whole block
  succeeded; if it fails, every file written and every folder created in it is removed.
  (Inside the block a written file is not yet visible: read nothing back before it ends.)

The path checks (links, special files, inputs) are :mod:`noisybox._outputs`, re-exported
here: writers import everything from this module.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import io
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from noisybox._json import MAX_JSON_DEPTH, compact_json, parse_json, to_jsonable
from noisybox._limits import MAX_FIGURE_PIXELS, check_limit
from noisybox._outputs import (
    PathLike,
    check_outputs,
    check_replaceable_annotations,
    check_replaceable_plot,
    check_side_files,
    resolve_output,
)
from noisybox.errors import NoisyboxError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "atomic_dir",
    "remove_stale_temporaries",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_outputs",
    "check_replaceable_annotations",
    "check_replaceable_plot",
    "check_side_files",
    "compact_json",
    "MAX_JSON_DEPTH",
    "make_dirs",
    "parse_json",
    "read_json_object",
    "resolve_output",
    "save_figure",
    "staged",
    "to_jsonable",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ------------------------------------------------------------------------- staging


@dataclasses.dataclass
class _Pending:
    """A finished temporary output waiting for its rename."""

    commit: Callable[[], None]
    discard: Callable[[], None]
    synced: bool = True  # False: on disk only after a sync


@dataclasses.dataclass
class _Stage:
    pending: list[_Pending] = dataclasses.field(default_factory=list)
    created: list[Path] = dataclasses.field(default_factory=list)

    def commit(self) -> None:
        if not all(item.synced for item in self.pending):
            _sync()
        done = 0
        try:
            for item in self.pending:
                item.commit()
                done += 1
        except BaseException:
            for item in self.pending[done:]:
                item.discard()
            raise

    def discard(self) -> None:
        for item in self.pending:
            item.discard()
        for folder in reversed(self.created):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: never a folder that holds other files


_STAGE: contextvars.ContextVar[_Stage | None] = contextvars.ContextVar(
    "noisybox_stage", default=None
)


@contextlib.contextmanager
def staged() -> Iterator[None]:
    """Make every write in the block all-or-nothing.

    Files written inside the block stay in temporary files next to their targets and are
    renamed into place when the block ends without an error; if it raises, the temporary
    files and the folders created for them are removed and the error propagates. Nested
    blocks join the outermost one.

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> try:
    ...     with staged():
    ...         _ = atomic_write_text(folder / "a" / "first.txt", "1")
    ...         raise NoisyboxError("the second output failed")
    ... except NoisyboxError:
    ...     pass
    >>> sorted(folder.iterdir())
    []
    """
    if _STAGE.get() is not None:
        yield
        return
    stage = _Stage()
    token = _STAGE.set(stage)
    try:
        yield
    except BaseException:
        _STAGE.reset(token)
        stage.discard()
        raise
    _STAGE.reset(token)
    try:
        stage.commit()
    except BaseException:
        stage.discard()
        raise


def make_dirs(path: PathLike) -> Path:
    """``mkdir -p`` (mode ``0o777 & ~umask``); inside :func:`staged` the folders created are
    removed again if the block fails."""
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise NoisyboxError(f"Expected a folder at {path} but got a file") from None
    stage = _STAGE.get()
    if stage is not None:
        stage.created.extend(reversed(missing))
    return path


def _sync() -> None:
    """Flush every written file to disk (one call for a whole batch of files)."""
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()


def _finish(pending: _Pending) -> None:
    stage = _STAGE.get()
    if stage is None:
        if not pending.synced:
            _sync()
        pending.commit()
    else:
        stage.pending.append(pending)


# ------------------------------------------------------------------------- files


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], object]) -> Path:
    """Write a file atomically through ``write(handle)`` (see the module docstring).

    Args:
        path: the output (a symbolic link is followed).
        write: fills the binary handle of the temporary file.

    Returns:
        The path written (the link's target for a link).

    Raises:
        NoisyboxError: the path is refused by :func:`resolve_output`, or the folder is not
            writable (the OS error named in one line).
    """
    target = resolve_output(path)
    make_dirs(target.parent)
    batched = _STAGE.get() is not None and hasattr(os, "sync")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise NoisyboxError(
            f"Expected a writable folder for {os.fspath(path)} but got: {exc.strerror} "
            f"({target.parent})"
        ) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            if not batched:  # a staged batch is synced once before its renames
                os.fsync(handle.fileno())
        try:
            mode = stat.S_IMODE(os.stat(target).st_mode)
        except FileNotFoundError:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
    except OSError as exc:  # a full disk, a quota: name the file, not only the errno
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise NoisyboxError(
            f"Expected to write {os.fspath(path)} but got: {exc.strerror or exc} "
            f"({target.parent}); nothing was written"
        ) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

    def commit() -> None:
        os.replace(tmp, target)

    def discard() -> None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)

    _finish(_Pending(commit, discard, synced=not batched))
    return target


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_write`)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: PathLike,
    data: Any,
    *,
    indent: int | None = 1,
    separators: tuple[str, str] | None = None,
    default: Callable[[Any], Any] | None = None,
    newline: bool = True,
) -> Path:
    """Write ``data`` as JSON atomically: the one way noisybox writes a JSON file.

    The defaults give the records and configs of a results folder (one-space indent,
    numpy scalars and paths converted, a final newline); the keywords reproduce the other
    files noisybox has always written, whose bytes must not change (a manifest's two-space
    indent, a dataset's compact one-line document). Non-ASCII text is escaped
    (``ensure_ascii``) and keys keep their order.

    Args:
        path: the output (see :func:`atomic_write`).
        data: a JSON-able value.
        indent: spaces per level, or ``None`` for one line.
        separators: ``(item, key)`` separators, as for :func:`json.dumps` (``(",", ":")``:
            compact).
        default: turns a value JSON cannot hold into one it can (default: paths to
            strings, numpy scalars and arrays to numbers and lists, anything else raises
            ``TypeError``; :class:`str` writes every such value as its text).
        newline: end the file with a newline.

    Returns:
        The path written (see :func:`atomic_write`).

    >>> import tempfile, numpy as np
    >>> path = atomic_write_json(Path(tempfile.mkdtemp()) / "a.json", {"n": np.int64(3)})
    >>> path.read_text().splitlines()
    ['{', ' "n": 3', '}']
    >>> _ = atomic_write_json(path, {"n": [1, 2]}, indent=None, separators=(",", ":"), newline=False)
    >>> path.read_text()
    '{"n":[1,2]}'
    """
    text = json.dumps(data, indent=indent, separators=separators, default=default or _json_default)
    return atomic_write_text(path, text + "\n" if newline else text)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Expected JSON-able data but got {type(value).__name__}")


# suffixes that name one format
_SAME_FORMAT = {"jpeg": "jpg", "tiff": "tif"}


def save_figure(
    fig: Figure, path: PathLike, *, format: str | None = None, **savefig_kwargs: Any
) -> Path:
    """Save a matplotlib figure atomically (see :func:`atomic_write`).

    Args:
        fig: the figure.
        path: the image file.
        format: ``png``, ``pdf``, ``svg``, ... (default: from the suffix of ``path``).
        **savefig_kwargs: passed to ``Figure.savefig`` (``dpi``, ``bbox_inches``, ...).

    Raises:
        NoisyboxError: no format (no suffix), a suffix other than ``format``, a format
            matplotlib cannot write, a figure above the pixel budget, a path refused by
            :func:`resolve_output`, or an existing file that is not an earlier plot
            (:func:`check_replaceable_plot`).
    """
    suffix = Path(path).suffix.lstrip(".").lower()
    fmt = (format or suffix).lower()
    if not fmt:
        raise NoisyboxError(
            f"Expected an image file name with a suffix such as .png but got {path}"
        )
    if _SAME_FORMAT.get(suffix, suffix) != _SAME_FORMAT.get(fmt, fmt):
        raise NoisyboxError(
            f"Expected a .{fmt} file name for the {fmt.upper()} image but got {path}"
        )
    check_replaceable_plot(path, fmt)
    dpi = savefig_kwargs.get("dpi")
    if isinstance(dpi, (int, float)):
        width, height = fig.get_size_inches()
        check_limit(
            f"the figure's pixels at {dpi:g} dpi",
            int(width * height * dpi * dpi),
            MAX_FIGURE_PIXELS,
        )
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=fmt, **savefig_kwargs)
    except ValueError as exc:  # matplotlib: unknown format
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NoisyboxError(
            f"Expected a supported image format but got {fmt!r} for {path} ({first})"
        ) from None
    return atomic_write_bytes(path, buffer.getvalue())


@contextlib.contextmanager
def atomic_dir(path: PathLike, *, manifest: str) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``path`` when the block succeeds.

    An existing ``path`` is replaced only if it is empty or an earlier noisybox output (it
    holds ``manifest``); anything else is refused so user data is never deleted. A link
    to a folder is followed.

    Raises:
        NoisyboxError: ``path`` exists and is neither of those, or is refused by
            :func:`resolve_output`.
    """
    target = resolve_output(path, folder=True)
    foreign = target.exists() and (
        not target.is_dir() or (any(target.iterdir()) and not (target / manifest).exists())
    )
    if foreign:
        raise NoisyboxError(
            f"Expected an absent, empty or earlier noisybox output folder but got {path}"
        )
    make_dirs(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    def commit() -> None:
        if target.exists():
            old = Path(
                tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent)
            )
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old)
        else:
            os.replace(tmp, target)

    def discard() -> None:
        shutil.rmtree(tmp, ignore_errors=True)

    _finish(_Pending(commit, discard, synced=False))


# ------------------------------------------------------------------------- reading


def read_json_object(path: PathLike, *, what: str = "a JSON object") -> dict[str, Any]:
    """A JSON file that must hold an object (a results folder's ``benchmark.json``, a record).

    Raises:
        NoisyboxError: unreadable, not JSON, or not an object (one line naming the file).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NoisyboxError(f"Expected {what} in {path} but got {exc.strerror}") from None
    data, _ = parse_json(raw, path, what=what)
    if not isinstance(data, dict):
        raise NoisyboxError(f"Expected {what} in {path} but got a JSON {type(data).__name__}")
    return data


def remove_stale_temporaries(path: PathLike) -> list[Path]:
    """Remove the temporary files an interrupted atomic write of ``path`` left behind.

    A process killed with SIGKILL while writing ``path`` cannot remove its
    ``.<name>.<random>.tmp`` file. The caller must be the only writer of ``path`` (the
    training loop of one run is); the target itself is never touched.

    Returns:
        The paths removed.
    """
    target = Path(path)
    removed = []
    if target.parent.is_dir():
        for tmp in target.parent.glob(f".{target.name}.*.tmp"):
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed
