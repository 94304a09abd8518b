"""The parts of the study schema's pydantic models: checked values, the validation context and
the one-line errors.

Every model of :mod:`noisybox.study.schema` is a :class:`StudyModel` (unknown keys refused,
frozen). Its values are checked by the small validators here, which refuse a value with the
project's words (``Expected an integer in [1, inf] but got 0``; ``eta``, ``alpha`` and
``alpha_warmup`` through :meth:`noisybox.settings.Bound.check`, the CLI's message), and
:func:`error_lines` turns pydantic's ``ValidationError`` into one line per problem, each
starting with the YAML key it is about (``losses[1].alpha``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, PlainValidator, Tag, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError

from noisybox.settings import Bound, SettingError
from noisybox.study.name_checks import Registries, installed_registries

__all__ = [
    "NonEmptyStr",
    "SchemaContext",
    "StudyModel",
    "TAGS",
    "bounded",
    "check_choice",
    "choice",
    "context_of",
    "error_lines",
    "expected",
    "non_empty_str",
    "number",
    "optional",
    "problem",
    "problems",
]

Loc = tuple[str | int, ...]

#: The tags of the schema's discriminated unions; never part of a key (``dataset``, ``noise``).
TAGS = frozenset({"<builtin>", "<files>", "<voc>", "<one>", "<list>"})


@dataclasses.dataclass(frozen=True)
class SchemaContext:
    """What the validators judge against besides the YAML (pydantic's validation context).

    Attributes:
        base_dir: folder relative dataset and protocol paths are resolved against.
        check_paths: check that dataset, weights and protocol files exist.
        registries: what names and the schedule are checked against.
        default_name: ``name`` when the config does not set one.
    """

    base_dir: Path
    check_paths: bool
    registries: Registries
    default_name: str = "benchmark"


@functools.lru_cache(maxsize=1)
def _installed_context() -> SchemaContext:
    return SchemaContext(Path("."), True, installed_registries())


def context_of(info: ValidationInfo) -> SchemaContext:
    """The :class:`SchemaContext` of a validation (the installed registries when none)."""
    context = info.context.get("study") if isinstance(info.context, dict) else None
    return context if isinstance(context, SchemaContext) else _installed_context()


class StudyModel(BaseModel):
    """A mapping of a study YAML: unknown keys refused, frozen once validated.

    ``missing_hint`` follows ``Expected this key`` in the message of a missing key.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    missing_hint: ClassVar[str] = ""


# --------------------------------------------------------------------------- refusals


def expected(what: str, got: Any) -> str:
    """``Expected <what> but got <got!r>``, the words of every refusal."""
    return f"Expected {what} but got {got!r}"


def problem(message: str, *, at: Loc | None = None) -> PydanticCustomError:
    """A refusal for pydantic; ``at`` puts it under another key than the value's own."""
    ctx: dict[str, Any] = {"message": message}
    if at is not None:
        ctx["at"] = at
    return PydanticCustomError("noisybox", "{message}", ctx)


def problems(items: Sequence[tuple[Loc, str]], *, absolute: bool = False) -> ValidationError:
    """Several refusals at once, each under a key below the value judged (or, ``absolute``,
    under its own key of the whole config)."""
    details = [
        InitErrorDetails(
            type=problem(message, at=loc if absolute else None),
            loc=() if absolute else loc,
            input=None,
        )
        for loc, message in items
    ]
    return ValidationError.from_exception_data("study", details)


# --------------------------------------------------------------------------- values


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def non_empty_str(value: Any) -> str:
    """A non-empty string (``None`` refused)."""
    if not isinstance(value, str) or not value:
        raise problem(expected("a non-empty string", value))
    return value


def optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``check``, with an explicit ``null`` taken as not set."""

    def check_optional(value: Any) -> Any:
        return None if value is None else check(value)

    return check_optional


def check_choice(value: Any, choices: Iterable[str]) -> str:
    """One of ``choices`` (the message lists them)."""
    choices = list(choices)
    if value not in choices:
        raise problem(expected(f"one of {', '.join(choices)}", value))
    return str(value)


def choice(choices: Iterable[str]) -> Callable[[Any], str]:
    """A validator of :func:`check_choice`."""
    fixed = tuple(choices)
    return lambda value: check_choice(value, fixed)


def bounded(bound: Bound) -> Callable[[Any], float]:
    """A validator of a :class:`~noisybox.settings.Bound`: the CLI's message; numbers only
    (``"3"`` and ``true`` are refused, as a YAML number is meant)."""

    def check(value: Any) -> float:
        if not _is_number(value):
            raise problem(bound.message(value))
        try:
            return bound.check(value)
        except SettingError as exc:
            raise problem(str(exc)) from None

    return check


def _interval(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    lo = "(" if low_open else "["
    hi = ")" if high_open else "]"
    start = "-inf" if low is None else f"{low:g}"
    end = "inf" if high is None else f"{high:g}"
    return f" in {lo}{start}, {end}{hi}"


def number(
    *,
    integer: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> Callable[[Any], Any]:
    """A validator of a finite number (``integer``: a whole one, ``4.0`` read as ``4``)
    between ``low`` and ``high``; ``bool`` and strings are refused."""

    def check(value: Any) -> float | int:
        ok = _is_number(value)
        if integer:
            ok = ok and (isinstance(value, int) or float(value).is_integer())
        if ok and isinstance(value, float) and not math.isfinite(value):
            ok = False
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value < high if high_open else value <= high
        if not ok:
            kind = "an integer" if integer else "a number"
            if low is not None or high is not None:
                kind += _interval(low, high, low_open, high_open)
            raise problem(expected(kind, value))
        if not integer and isinstance(value, int) and abs(value) > 2**53:
            raise problem(expected("a number a float can hold", value))
        return int(value) if integer else float(value)

    return check


NonEmptyStr = Annotated[str, PlainValidator(non_empty_str)]


# --------------------------------------------------------------------------- error lines


def _key(loc: Loc) -> str:
    """``("losses", 1, "alpha")`` as ``losses[1].alpha``; the whole config is ``config``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f"{'.' if text else ''}{part}"
    return text or "config"


def _unwrap(node: Any) -> Any:
    while get_origin(node) is Annotated:
        node = get_args(node)[0]
    return node


def _step(node: Any, part: str | int) -> Any:
    """The annotation one key below ``node`` (a model's field, a list's item, a tagged
    member of a union)."""
    node = _unwrap(node)
    if isinstance(node, type) and issubclass(node, BaseModel):
        field = node.model_fields.get(str(part))
        return None if field is None else field.annotation
    if get_origin(node) in (list, tuple):
        return get_args(node)[0]
    for member in get_args(node) if get_origin(node) in (Union, types.UnionType) else ():
        tags = [m.tag for m in getattr(member, "__metadata__", ()) if isinstance(m, Tag)]
        if part in tags:
            return member
    return None


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    node: Any = root
    for part in loc:
        node = _step(node, part)
    node = _unwrap(node)
    return node if isinstance(node, type) and issubclass(node, BaseModel) else None


def _line(error: Any, root: type[BaseModel]) -> tuple[Loc, bool, str]:
    """One pydantic error as ``(key, unknown key?, line)``."""
    raw: Loc = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    loc: Loc = tuple(ctx["at"]) if "at" in ctx else tuple(p for p in raw if p not in TAGS)
    kind, got = error["type"], error.get("input")
    if kind == "noisybox":
        return loc, False, f"{_key(loc)}: {ctx['message']}"
    model = _model_at(root, raw[:-1])
    if kind == "extra_forbidden":
        keys = ", ".join(model.model_fields) if model is not None else ""
        where = f"{_key(loc[:-1])}.{loc[-1]}"
        return (
            loc,
            True,
            f"{where}: Expected one of the keys {keys} but got unknown key {loc[-1]!r}",
        )
    if kind == "missing":
        hint = model.missing_hint if model is not None and issubclass(model, StudyModel) else ""
        return loc, False, f"{_key(loc)}: Expected this key{hint} but it is missing"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return loc, False, f"{_key(loc)}: {expected('a mapping', got)}"
    if kind in ("list_type", "too_short"):
        return loc, False, f"{_key(loc)}: {expected('a non-empty list', got)}"
    if kind == "value_error":  # a NoisyboxError raised by a check the schema calls
        return loc, False, f"{_key(loc)}: {ctx.get('error')}"
    return loc, False, f"{_key(loc)}: {error['msg']} (got {got!r})"


def error_lines(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """The problems of a failed validation of ``root``, one line each naming its key.

    In the order of the YAML's keys, the unknown keys of a mapping before the problems of
    its values (pydantic lists them after).
    """
    out: list[tuple[Loc, bool, str]] = []
    for error in exc.errors(include_url=False):
        loc, unknown, text = _line(error, root)
        at = len(out)
        if unknown:
            parent = loc[:-1]
            at = next(
                (
                    i
                    for i, (other, other_unknown, _) in enumerate(out)
                    if other[: len(parent)] == parent
                    and not (other_unknown and other[:-1] == parent)
                ),
                len(out),
            )
        out.insert(at, (loc, unknown, text))
    return [text for _, _, text in out]
