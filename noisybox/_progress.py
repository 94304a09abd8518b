"""Progress on stderr: a live tqdm bar on a terminal, a short line now and then elsewhere.

A bar redrawn ten times a second is what a terminal wants and what a log file, a CI log or
a pipe does not: there every redraw becomes a line (one per training step of every cell).
:func:`progress_bar` gives tqdm when stderr is a terminal and otherwise a
:class:`LineProgress` with the same small interface, which prints one line at most every
``interval`` seconds and one when it closes: a line per epoch (or per few seconds of a long
one) for training, a line per cell for a benchmark grid (``interval=0``).
:func:`progress_iter` puts the same behind a loop over files, and :func:`progress_write`
prints a message without breaking a live bar. Nothing else in noisybox imports tqdm.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import IO, Any, TypeVar

__all__ = [
    "LINE_INTERVAL_S",
    "LineProgress",
    "evaluation_line",
    "is_terminal",
    "progress_bar",
    "progress_iter",
    "progress_write",
]

_T = TypeVar("_T")

#: Seconds between two progress lines when stderr is not a terminal.
LINE_INTERVAL_S = 10.0


def is_terminal(stream: Any) -> bool:
    """Whether ``stream`` is an interactive terminal (``False`` for files, pipes, wrappers).

    >>> import io
    >>> is_terminal(io.StringIO())
    False
    """
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


class LineProgress:
    """The part of tqdm's interface noisybox uses, printing plain lines instead of a bar.

    A line ``desc: n/total unit [postfix] (elapsed)`` goes out when ``interval`` seconds
    have passed since the previous one (``0``: at every update) and when the progress
    closes, unless nothing moved since the last line.

    >>> import io
    >>> out = io.StringIO()
    >>> with LineProgress(3, "epoch 1/2", unit="step", interval=3600, file=out) as bar:
    ...     for _ in range(3):
    ...         bar.set_postfix(loss="0.500")
    ...         bar.update(1)
    >>> out.getvalue().split(" (")[0]
    'epoch 1/2: 3/3 step [loss=0.500]'
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "it",
        interval: float = LINE_INTERVAL_S,
        initial: int = 0,
        file: IO[str] | None = None,
        disable: bool = False,
    ) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.interval = float(interval)
        self.n = initial
        self.file = file if file is not None else sys.stderr
        self.disable = disable
        self.postfix = ""
        self._start = self._last = time.monotonic()
        self._printed_n = initial
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.n += n
        if not self.disable and time.monotonic() - self._last >= self.interval:
            self._print()

    def set_postfix(self, ordered_dict: Any = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(dict(ordered_dict) if ordered_dict else {}), **kwargs}
        self.postfix = ", ".join(f"{key}={value}" for key, value in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        """Nothing to redraw: lines are printed by :meth:`update` and :meth:`close`."""

    def close(self) -> None:
        if not self._closed and not self.disable and self.n != self._printed_n:
            self._print()
        self._closed = True

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _print(self) -> None:
        now = time.monotonic()
        done = f"{self.n}/{self.total}" if self.total is not None else str(self.n)
        postfix = f" [{self.postfix}]" if self.postfix else ""
        line = f"{self.desc}: {done} {self.unit}{postfix} ({now - self._start:.0f} s)"
        print(line, file=self.file, flush=True)
        self._last = now
        self._printed_n = self.n


def progress_bar(
    total: int | None,
    desc: str,
    *,
    enabled: bool = True,
    unit: str = "it",
    interval: float | None = None,
    initial: int = 0,
    **tqdm_kwargs: Any,
) -> Any:
    """A progress bar on stderr: tqdm on a terminal, :class:`LineProgress` elsewhere.

    Args:
        total: the number of units, or ``None`` when unknown.
        desc: what progresses (``"epoch 3/12"``, ``"grid"``).
        enabled: ``False`` prints nothing at all (``--quiet``).
        unit: the unit's name.
        interval: seconds between two lines off a terminal (default
            :data:`LINE_INTERVAL_S`; ``0`` prints a line per update).
        initial: units already done.
        **tqdm_kwargs: more tqdm options (``leave``, ``position``), used on a terminal.

    Returns:
        An object with tqdm's ``update``, ``set_postfix``, ``set_postfix_str`` and
        ``close`` that is also a context manager.
    """
    stream = sys.stderr
    if enabled and is_terminal(stream):
        from tqdm.auto import tqdm

        return tqdm(
            total=total,
            desc=desc,
            unit=unit,
            initial=initial,
            file=stream,
            dynamic_ncols=True,
            **tqdm_kwargs,
        )
    return LineProgress(
        total,
        desc,
        unit=unit,
        interval=LINE_INTERVAL_S if interval is None else interval,
        initial=initial,
        file=stream,
        disable=not enabled,
    )


def progress_iter(
    items: Iterable[_T],
    desc: str,
    *,
    total: int | None = None,
    enabled: bool = True,
    unit: str = "it",
    **kwargs: Any,
) -> Iterator[_T]:
    """The items of ``items``, counted on a :func:`progress_bar` that closes after the last.

    Args:
        items: what to loop over.
        desc: what progresses (``"reading VOC"``).
        total: the number of items (default ``len(items)`` where it has one).
        enabled: ``False`` prints nothing at all.
        unit: the unit's name.
        **kwargs: more :func:`progress_bar` options (``leave``, ``interval``).

    >>> list(progress_iter(["a", "b"], "reading", enabled=False))
    ['a', 'b']
    """
    if total is None and isinstance(items, Sized):
        total = len(items)
    with progress_bar(total, desc, enabled=enabled, unit=unit, **kwargs) as bar:
        for item in items:
            yield item
            bar.update(1)


def progress_write(text: str) -> None:
    """Print ``text`` on stderr as a line of its own, above a live bar on a terminal.

    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     progress_write("collapsed: cell-1")
    >>> err.getvalue()
    'collapsed: cell-1\\n'
    """
    stream = sys.stderr
    if is_terminal(stream):
        from tqdm.auto import tqdm

        tqdm.write(text, file=stream)
    else:
        print(text, file=stream, flush=True)


def evaluation_line(
    epoch: int, epochs: int, metrics: dict[str, float], seconds: float, label: str | None = None
) -> str:
    """One line of a learning curve as it is computed: epoch, AP50, mAP, mAP75:95 (percent).

    >>> evaluation_line(5, 40, {"ap50": 0.641, "map": 0.352, "map_75_95": 0.15}, 12.3, "cell")
    'cell: epoch 5/40 eval: AP50 64.1  mAP 35.2  mAP75:95 15.0  (12 s)'
    """
    figures = "  ".join(
        f"{name} {100 * float(metrics.get(key, float('nan'))):.1f}"
        for name, key in (("AP50", "ap50"), ("mAP", "map"), ("mAP75:95", "map_75_95"))
    )
    prefix = f"{label}: " if label else ""
    return f"{prefix}epoch {epoch}/{epochs} eval: {figures}  ({seconds:.0f} s)"
