"""The error collector of :mod:`noisybox.study.schema`: every problem of a config at
once, each naming its key."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from noisybox.settings import Bound, SettingError

__all__ = ["Checker"]


class Checker:
    """Collects errors while walking the raw config."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, key: str, expected: str, got: Any) -> None:
        self.errors.append(f"{key}: Expected {expected} but got {got!r}")

    def mapping(self, key: str, value: Any, allowed: Iterable[str]) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.error(key, "a mapping", value)
            return None
        allowed = list(allowed)
        for k in value:
            if k not in allowed:
                self.errors.append(
                    f"{key}.{k}: Expected one of the keys {', '.join(allowed)} but got unknown key {k!r}"
                )
        return value

    def bounded(self, key: str, value: Any, bound: Bound) -> float | None:
        """``value`` checked by a :class:`~noisybox.settings.Bound` (the message the CLI and
        the Python API give, after the key); ``None`` and an error if it fails."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            self.errors.append(f"{key}: {bound.message(value)}")
            return None
        try:
            return bound.check(value)
        except SettingError as exc:
            self.errors.append(f"{key}: {exc}")
            return None

    def number(
        self,
        key: str,
        value: Any,
        *,
        integer: bool = False,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
    ) -> float | int | None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
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
            bounds = ""
            if low is not None or high is not None:
                lo = "(" if low_open else "["
                hi = ")" if high_open else "]"
                bounds = f" in {lo}{'-inf' if low is None else f'{low:g}'}, {'inf' if high is None else f'{high:g}'}{hi}"
            self.error(key, kind + bounds, value)
            return None
        if not integer and isinstance(value, int) and abs(value) > 2**53:
            self.error(key, "a number a float can hold", value)
            return None
        return int(value) if integer else float(value)

    def choice(self, key: str, value: Any, choices: Iterable[str]) -> str | None:
        choices = list(choices)
        if value not in choices:
            self.error(key, f"one of {', '.join(choices)}", value)
            return None
        return str(value)

    def string(self, key: str, value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            self.error(key, "a non-empty string", value)
            return None
        return value

    def items(self, key: str, value: Any) -> list[Any]:
        if isinstance(value, (list, tuple)) and value:
            return list(value)
        self.error(key, "a non-empty list", value)
        return []
