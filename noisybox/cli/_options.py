"""Click options shared by the noise commands (``corrupt``, ``preview``, ``iou-hist``), and
:func:`run_command` with :func:`debug_option`: how every command turns a user's error into a
one-line message (and ``--debug`` into the traceback).

Each factory returns one ``click.option`` decorator with the option's name, type and
default fixed and the help text given by the command (``corrupt`` writes noise,
``preview`` and ``iou-hist`` draw it on the fly). Choices come from the registries, so a
noise model registered before the command module is imported is accepted.

>>> @click.command()
... @eta_option("Noise rate.", default=0.2)
... @model_option("Noise model.")
... def cmd(eta: float, model: str) -> None:
...     click.echo(f"{eta} {model}")
>>> from click.testing import CliRunner
>>> CliRunner().invoke(cmd, ["--eta", "0.3"]).output
'0.3 uniform\\n'
>>> CliRunner().invoke(cmd, ["--eta", "1"]).exit_code
2
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

from noisybox.errors import NoisyboxError
from noisybox.formats import FORMATS
from noisybox.noise import BOUNDARIES, list_noise_models

__all__ = [
    "ETA",
    "SEED",
    "FiniteFloatRange",
    "USER_ERRORS",
    "boundary_option",
    "debug_option",
    "eta_h_option",
    "eta_option",
    "eta_w_option",
    "format_option",
    "min_size_option",
    "model_option",
    "ratio_option",
    "run_command",
    "seed_option",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses ``nan`` and ``inf`` (which pass its bounds).

    >>> FiniteFloatRange(0.0, min_open=True).convert("inf", None, None)
    Traceback (most recent call last):
    ...
    click.exceptions.BadParameter: Expected a finite number but got 'inf'.
    """

    name = "float range"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"Expected a finite number but got {value!r}.", param, ctx)
        return number


ETA = FiniteFloatRange(0.0, 1.0, max_open=True)
"""A noise rate: ``[0, 1)``."""

SEED = click.IntRange(min=0)
"""A seed: a non-negative integer (numpy's generators take no negative seeds)."""


def eta_option(
    help: str, *, default: float | None = None, multiple: bool = False, dest: str = "eta"
) -> Callable[[_F], _F]:
    """``--eta``: the noise rate of both axes.

    Args:
        help: the option's help text.
        default: shown in ``--help`` when not ``None``.
        multiple: repeatable (``iou-hist`` overlays one histogram per rate); the command
            then gets a tuple.
        dest: the name of the command's parameter (``"etas"`` for a repeatable one).
    """
    extra: dict[str, Any] = {"multiple": True} if multiple else {"default": default}
    if default is not None:
        extra["show_default"] = True
    return click.option("--eta", dest, type=ETA, help=help, **extra)


def eta_w_option(help: str) -> Callable[[_F], _F]:
    """``--eta-w``: the horizontal noise rate, overriding ``--eta``."""
    return click.option("--eta-w", type=ETA, default=None, help=help)


def eta_h_option(help: str) -> Callable[[_F], _F]:
    """``--eta-h``: the vertical noise rate, overriding ``--eta``."""
    return click.option("--eta-h", type=ETA, default=None, help=help)


def seed_option(help: str, *, default: int = 0) -> Callable[[_F], _F]:
    """``--seed``: the seed of the noise."""
    return click.option("--seed", type=SEED, default=default, show_default=True, help=help)


def model_option(help: str) -> Callable[[_F], _F]:
    """``--model``: a registered noise model (default ``uniform``)."""
    return click.option(
        "--model",
        type=click.Choice(list_noise_models()),
        default="uniform",
        show_default=True,
        help=help,
    )


def boundary_option(help: str) -> Callable[[_F], _F]:
    """``--boundary``: the boundary handling (default ``shift``)."""
    return click.option(
        "--boundary", type=click.Choice(BOUNDARIES), default="shift", show_default=True, help=help
    )


def ratio_option(help: str) -> Callable[[_F], _F]:
    """``--ratio``: the share of boxes perturbed, in ``[0, 1]`` (default 1)."""
    return click.option(
        "--ratio", type=FiniteFloatRange(0.0, 1.0), default=1.0, show_default=True, help=help
    )


def min_size_option(help: str) -> Callable[[_F], _F]:
    """``--min-size``: the minimum noisy box side in pixels (default 1)."""
    return click.option(
        "--min-size",
        type=FiniteFloatRange(0.0, min_open=True),
        default=1.0,
        show_default=True,
        help=help,
    )


def format_option(help: str) -> Callable[[_F], _F]:
    """``--format`` (parameter ``fmt``): an annotation format, detected when not given."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help=help)


USER_ERRORS: tuple[type[BaseException], ...] = (NoisyboxError, OSError)
"""Errors caused by the user's input or environment (bad files, unwritable folders)."""


def debug_option(fn: _F) -> _F:
    """``--debug``: show the traceback instead of the one-line message of :func:`run_command`."""
    return click.option("--debug", is_flag=True, help="Show tracebacks for errors.")(fn)


def run_command(
    debug: bool, fn: Callable[[], _T], errors: tuple[type[BaseException], ...] = USER_ERRORS
) -> _T:
    """Call ``fn``; ``errors`` become one-line ``ClickException``s (exit code 1, no traceback)
    unless ``debug``.

    >>> def missing() -> None:
    ...     open("/nonexistent/noisybox.json")
    >>> try:
    ...     run_command(False, missing)
    ... except click.ClickException as exc:
    ...     print(exc.message)
    [Errno 2] No such file or directory: '/nonexistent/noisybox.json'
    """
    try:
        return fn()
    except errors as exc:
        if debug:
            raise
        raise click.ClickException(str(exc)) from None
