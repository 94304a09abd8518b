"""Where an output may go: links followed, special files refused, inputs never outputs.

The checks behind the policy of :mod:`noisybox._fileio` (which re-exports them, so writers
import everything from there): :func:`resolve_output` for one output path,
:func:`check_outputs` for a command's outputs against its inputs.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from noisybox._json import parse_json
from noisybox.errors import NoisyboxError

__all__ = [
    "PathLike",
    "check_outputs",
    "check_replaceable_annotations",
    "check_replaceable_plot",
    "check_side_files",
    "resolve_output",
]

PathLike = str | os.PathLike[str]

# Kernel interfaces: writing there is never what a user means (``/dev/shm`` is a plain
# in-memory file system and stays allowed).
_FORBIDDEN_ROOTS = (("dev",), ("proc",), ("sys",))
_ALLOWED_ROOTS = (("dev", "shm"),)
_MAX_LINKS = 40


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


# ------------------------------------------------------------------ what an output replaces

#: How a plot format starts; a file is a plot noisybox drew when matplotlib signed it.
_PLOT_MAGIC = {
    "png": b"\x89PNG",
    "pdf": b"%PDF",
    "svg": b"<",
    "svgz": b"\x1f\x8b",
    "eps": b"%!PS",
    "ps": b"%!PS",
}
_HEAD = 65536


def _head(path: Path) -> bytes | None:
    """The first bytes of an existing non-empty regular file (``None``: nothing to lose)."""
    try:
        if not path.is_file() or path.stat().st_size == 0:
            return None
        with open(path, "rb") as handle:
            return handle.read(_HEAD)
    except OSError:
        return None


def _what(head: bytes) -> str:
    """What a file holds, in words, from its first bytes."""
    for fmt, magic in _PLOT_MAGIC.items():
        if fmt != "svg" and head.startswith(magic):
            return f"a {fmt.upper()} file noisybox did not draw"
    if head.startswith(b"\xff\xd8"):
        return "a JPEG image"
    stripped = head.lstrip()
    if stripped.startswith((b"{", b"[")):
        return "a JSON file"
    if stripped.startswith(b"<"):
        return "an XML file"
    return "a file of another kind"


def check_replaceable_plot(path: PathLike, fmt: str, *, option: str | None = None) -> None:
    """Refuse to write a plot over a file that is not an earlier plot.

    An existing non-empty file is replaced only if it is a plot of the same format that
    matplotlib drew (its signature is in the file): a PNG writer never replaces a JSON
    file, a dataset image or a photo. Formats without a signature (JPEG) never replace an
    existing file.

    Raises:
        NoisyboxError: the path holds another kind of file (named).
    """
    target = resolve_output(path, option=option)
    head = _head(target)
    if head is None:
        return
    magic = _PLOT_MAGIC.get(fmt)
    if magic is not None and head.startswith(magic) and b"matplotlib" in head.lower():
        return
    raise NoisyboxError(
        f"Expected {_label(option, path)} to be a new file or a {fmt.upper()} plot noisybox "
        f"drew but got {_what(head)}; noisybox never replaces files it did not write"
    )


def _noisybox_annotations(path: Path) -> bool:
    """Whether ``path`` is a COCO file ``noisybox corrupt`` wrote (its ``info.noisybox``)."""
    try:
        data, _ = parse_json(path.read_bytes(), path)
    except (OSError, NoisyboxError):
        return False
    info = data.get("info") if isinstance(data, dict) else None
    return isinstance(info, dict) and isinstance(info.get("noisybox"), dict)


def check_replaceable_annotations(path: PathLike, *, option: str | None = None) -> None:
    """Refuse to write an annotation file over one noisybox did not write.

    An existing non-empty file is replaced only if it is an earlier output of ``noisybox
    corrupt`` (it holds ``info.noisybox``): ``corrupt train.json -o instances_val.json``
    must not replace the dataset's clean validation file.

    Raises:
        NoisyboxError: the path holds a file noisybox did not write (named).
    """
    target = resolve_output(path, option=option)
    head = _head(target)
    if head is None or _noisybox_annotations(target):
        return
    what = _what(head)
    what = "an annotation file noisybox did not write" if what == "a JSON file" else what
    raise NoisyboxError(
        f"Expected {_label(option, path) if option else 'the output ' + os.fspath(path)} to "
        f"be a new file or an earlier noisybox output but got {what}; noisybox never "
        "replaces files it did not write"
    )


def check_side_files(main: PathLike, sides: list[PathLike]) -> None:
    """Side files written beside an output (a reproduced generator's ``.pkl``) follow the
    main output's rule: an existing one is replaced only together with the earlier
    noisybox output it was written with.

    Raises:
        NoisyboxError: a side file exists while ``main`` is not an earlier noisybox output.
    """
    ours = _noisybox_annotations(resolve_output(main))
    for side in sides:
        target = resolve_output(side)
        if not ours and _head(target) is not None:
            raise NoisyboxError(
                f"Expected no file at {os.fspath(side)} (written beside {os.fspath(main)}) but "
                f"got one that no earlier noisybox output at {os.fspath(main)} wrote; "
                "noisybox never replaces files it did not write"
            )
