"""The one JSON parser of noisybox: every JSON file it reads goes through :func:`parse_json`.

:func:`compact_json` is its counterpart for the documents it reads and writes back whole
(a COCO file): the bytes of a value, compact, by the parser that can hold it.
:func:`to_jsonable` gives a value as it will read back from a JSON file.

A module of its own, below :mod:`noisybox._fileio` and :mod:`noisybox._outputs` (both use
it), so that neither imports the other to read a file; ``_fileio`` re-exports it.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import orjson

from noisybox.errors import NoisyboxError

__all__ = ["MAX_JSON_DEPTH", "compact_json", "parse_json", "to_jsonable"]

PathLike = str | os.PathLike[str]


#: The deepest nesting of arrays and objects a JSON file noisybox reads may have (orjson's
#: own limit; the standard library's parser would exhaust Python's recursion limit first).
MAX_JSON_DEPTH = 1024

# Integers of 19 digits or more may lie beyond 64 bits, where orjson returns a float: such
# documents are parsed by the standard library, which keeps every integer exactly.
_LONG_INTEGER = re.compile(rb"\d{19,}")


def parse_json(raw: bytes, source: PathLike, *, what: str = "valid JSON") -> tuple[Any, bool]:
    """Parse a JSON document: the one way in for every JSON file noisybox reads.

    Every decode failure becomes one :class:`NoisyboxError` line naming ``source``: bytes
    that are not UTF-8, invalid JSON, nesting deeper than :data:`MAX_JSON_DEPTH`, or an
    integer longer than Python converts (4300 digits). Integers are kept exactly as
    written, whatever their size (orjson would turn those beyond 64 bits into floats).

    Args:
        raw: the file's bytes.
        source: the file, for the message.
        what: what the file should hold, for the message ("Expected {what} in ...").

    Returns:
        The value, and whether the standard library parsed it (a document orjson cannot
        hold: integers beyond 64 bits, ``NaN``/``Infinity``); write such a document back
        with the ``json`` module to keep its values.

    Raises:
        NoisyboxError: the bytes are not a JSON document noisybox can hold.

    >>> parse_json(b'{"id": 1180591620717411303424}', "a.json")
    ({'id': 1180591620717411303424}, True)
    >>> parse_json(b"[" * 5000 + b"]" * 5000, "deep.json")
    Traceback (most recent call last):
    ...
    noisybox.errors.NoisyboxError: Expected valid JSON in deep.json but got arrays or objects nested deeper than 1024 levels
    """
    where = os.fspath(source)
    if not _LONG_INTEGER.search(raw):
        try:
            return orjson.loads(raw), False
        except orjson.JSONDecodeError as exc:
            if "depth limit" in str(exc):
                raise NoisyboxError(
                    f"Expected {what} in {where} but got arrays or objects nested deeper "
                    f"than {MAX_JSON_DEPTH} levels"
                ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise NoisyboxError(
            f"Expected {what} in {where} but got bytes that are not UTF-8 (at byte {exc.start})"
        ) from None
    try:
        return json.loads(text), True
    except RecursionError:
        reason = f"arrays or objects nested deeper than {MAX_JSON_DEPTH} levels"
    except json.JSONDecodeError as exc:
        reason = f"invalid JSON ({exc})"
    except ValueError as exc:  # an integer beyond Python's int_max_str_digits
        reason = f"a number Python cannot read ({str(exc).splitlines()[0]})"
    raise NoisyboxError(f"Expected {what} in {where} but got {reason}")


def compact_json(data: Any, *, stdlib: bool = False) -> bytes:
    """``data`` as compact JSON bytes (no whitespace, UTF-8 text unescaped).

    orjson writes it (floats in shortest round-trip form, ``1e-7``) unless ``stdlib`` (the
    flag :func:`parse_json` returned) or orjson cannot hold a value (an integer beyond 64
    bits, ``NaN``): then the standard library, which keeps them as they were read.

    >>> compact_json({"a": [1, 0.5], "b": "é"}).decode()
    '{"a":[1,0.5],"b":"é"}'
    >>> compact_json({"id": 1180591620717411303424, "x": float("nan")})
    b'{"id":1180591620717411303424,"x":NaN}'
    """
    if not stdlib:
        try:
            return orjson.dumps(data)
        except TypeError:
            pass
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def to_jsonable(value: Any) -> Any:
    """``value`` as it reads back from JSON: tuples as lists, other non-JSON values (paths,
    enums, devices) as their ``str``, keys as strings.

    >>> from pathlib import PurePosixPath
    >>> to_jsonable({"out": PurePosixPath("runs/a"), "size": (640, 480), 1: None})
    {'out': 'runs/a', 'size': [640, 480], '1': None}
    """
    return json.loads(json.dumps(value, default=str))
