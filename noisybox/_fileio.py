"""The one write path: every file noisybox writes goes through this module.

Policy (also in the README, "Files noisybox writes"):

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
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from noisybox.errors import NoisyboxError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "atomic_dir",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_outputs",
    "make_dirs",
    "read_json_object",
    "resolve_output",
    "save_figure",
    "staged",
]

PathLike = str | os.PathLike[str]

# Kernel interfaces: writing there is never what a user means (``/dev/shm`` is a plain
# in-memory file system and stays allowed).
_FORBIDDEN_ROOTS = (("dev",), ("proc",), ("sys",))
_ALLOWED_ROOTS = (("dev", "shm"),)
_MAX_LINKS = 40


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _kind(mode: int) -> str:
    """What an ``st_mode`` is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _forbidden(path: Path) -> bool:
    parts = path.parts[1:3]
    if any(parts[: len(root)] == root for root in _ALLOWED_ROOTS):
        return False
    return any(parts[: len(root)] == root for root in _FORBIDDEN_ROOTS)


def _label(option: str | None, path: PathLike) -> str:
    return f"{option} {os.fspath(path)}" if option else os.fspath(path)


def resolve_output(path: PathLike, *, option: str | None = None, folder: bool = False) -> Path:
    """The real path an output goes to: symbolic links followed, special files refused.

    Args:
        path: the output as given.
        option: the command-line option naming it (``"-o"``), for the message.
        folder: the output is a folder (VOC, YOLO): an existing folder is accepted.

    Returns:
        The absolute path to write, its folders resolved; it is absent, a regular file, or
        (``folder``) a folder.

    Raises:
        NoisyboxError: ``-``, a link loop, a path under ``/dev``, ``/proc`` or ``/sys`` (or
            a link leading there), or an existing non-regular file (a folder unless
            ``folder``).

    >>> resolve_output("/dev/null", option="-o")
    Traceback (most recent call last):
    ...
    noisybox.errors.NoisyboxError: Expected -o to name a regular file but got /dev/null, a path under /dev; noisybox never writes to devices or kernel files
    """
    text = os.fspath(path)
    where = _label(option, text) if option else text
    if text == "-":
        raise NoisyboxError(
            f"Expected {option or 'the output'} to name a file but got '-'; "
            "results are printed on standard output already (see --json)"
        )
    if not text:
        raise NoisyboxError(f"Expected {option or 'the output'} to name a file but got ''")
    current = Path(os.path.abspath(text))
    for _ in range(_MAX_LINKS):
        real = Path(os.path.realpath(current.parent)) / current.name
        for candidate in (current, real):
            if _forbidden(candidate):
                via = "" if str(candidate) == text else f" (leading to {candidate})"
                raise NoisyboxError(
                    f"Expected {option or 'the output'} to name a regular file but got {text}"
                    f"{via}, a path under /{candidate.parts[1]}; noisybox never writes to "
                    "devices or kernel files"
                )
        if not real.is_symlink():
            break
        target = Path(os.readlink(real))
        current = target if target.is_absolute() else real.parent / target
        current = Path(os.path.normpath(current))
    else:
        raise NoisyboxError(f"Expected {where} to lead to a file but got a loop of links")
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        return real
    except OSError as exc:
        raise NoisyboxError(
            f"Expected a writable path for {where} but got: {exc.strerror}"
        ) from None
    if stat.S_ISREG(mode) or (folder and stat.S_ISDIR(mode)):
        return real
    why = "" if stat.S_ISDIR(mode) else "; noisybox never replaces special files"
    raise NoisyboxError(
        f"Expected {option or 'the output'} to name a regular file or a new path but got "
        f"{text}, {_kind(mode)}{why}"
    )


def _contains(folder: Path, path: Path) -> bool:
    return folder != path and folder in path.parents


def _same(a: Path, b: Path) -> bool:
    if a == b:
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(
    outputs: Mapping[str, PathLike | None],
    inputs: Mapping[str, PathLike | None],
    *,
    folders: tuple[str, ...] = (),
) -> dict[str, Path]:
    """Check every output of a command before it does any work.

    Args:
        outputs: option name -> output path (``None``: not given).
        inputs: option or argument name -> input path (``None``: not given).
        folders: the output options that name folders.

    Returns:
        Option name -> resolved output path (see :func:`resolve_output`).

    Raises:
        NoisyboxError: an output is refused by :func:`resolve_output`, is one of the inputs
            (after following links, or the same file by :func:`os.path.samefile`), lies
            inside an input folder or holds an input, or is another output.

    >>> check_outputs({"-o": "out.json", "--plot": "out.json"}, {})
    Traceback (most recent call last):
    ...
    noisybox.errors.NoisyboxError: Expected --plot to differ from -o but got the same path out.json
    """
    resolved: dict[str, Path] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        out = resolve_output(path, option=option, folder=option in folders)
        for name, given in inputs.items():
            if given is None:
                continue
            src = Path(os.path.realpath(given))
            if _same(out, src) or _contains(src, out) or _contains(out, src):
                relation = (
                    "the same file as"
                    if _same(out, src)
                    else "a path inside"
                    if _contains(src, out)
                    else "a folder holding"
                )
                label = f" {name}" if name else ""
                raise NoisyboxError(
                    f"Expected {option} to be different from the input{label} but got {path}, "
                    f"{relation} {given}; noisybox never writes over its inputs"
                )
        for other, seen in resolved.items():
            if _same(out, seen) or _contains(seen, out) or _contains(out, seen):
                raise NoisyboxError(
                    f"Expected {option} to differ from {other} but got the same path {path}"
                )
        resolved[option] = out
    return resolved


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
        NoisyboxError: no format (no suffix), a format matplotlib cannot write, or a path
            refused by :func:`resolve_output`.
    """
    fmt = (format or Path(path).suffix.lstrip(".")).lower()
    if not fmt:
        raise NoisyboxError(
            f"Expected an image file name with a suffix such as .png but got {path}"
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
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "bytes that are not UTF-8"
        raise NoisyboxError(f"Expected {what} in {path} but got {reason}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise NoisyboxError(f"Expected {what} in {path} but got invalid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise NoisyboxError(f"Expected {what} in {path} but got a JSON {type(data).__name__}")
    return data
