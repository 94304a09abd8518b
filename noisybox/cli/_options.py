"""Click options shared by the commands, and :func:`run_command`: how every command turns a
user's error into a one-line message (and ``--debug`` into the traceback).

Every command takes :func:`common_options` (``--json``, ``-q/--quiet``, ``--debug``) and
prints with :func:`echo_json` and :func:`echo_info`: the result on stdout (only the JSON
document with ``--json``), everything else on stderr; ``--quiet`` silences the progress. The noise commands (``corrupt``, ``preview``, ``iou-hist``) share the
noise options below.

Each factory returns one ``click.option`` decorator with the option's name, type and
default fixed and the help text given by the command (``corrupt`` writes noise,
``preview`` and ``iou-hist`` draw it on the fly). Choices come from the registries, so a
noise model registered before the command module is imported is accepted.

>>> @click.command()
... @eta_option("Noise rate.", default=0.2)
... @noise_model_option("Noise model.")
... def cmd(eta: float, noise_model: str) -> None:
...     click.echo(f"{eta} {noise_model}")
>>> from click.testing import CliRunner
>>> CliRunner().invoke(cmd, ["--eta", "0.3"]).output
'0.3 uniform\\n'
>>> CliRunner().invoke(cmd, ["--eta", "1"]).exit_code
2
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from noisybox._limits import MAX_SEED, reason
from noisybox.errors import NoisyboxError
from noisybox.formats import FORMATS
from noisybox.noise import BOUNDARIES, list_noise_models
from noisybox.noise.spec import RATIO as _RATIO
from noisybox.settings import ALPHA as _ALPHA
from noisybox.settings import ALPHA_WARMUP as _ALPHA_WARMUP
from noisybox.settings import ETA as _ETA
from noisybox.settings import Bound, SettingError

__all__ = [
    "ALPHA",
    "ALPHA_WARMUP",
    "BoundType",
    "ETA",
    "RATIO",
    "SEED",
    "ALIAS_GIVEN",
    "BoundedIntRange",
    "FiniteFloatRange",
    "USER_ERRORS",
    "boundary_option",
    "common_options",
    "debug_option",
    "deprecated_alias",
    "echo_info",
    "echo_json",
    "echo_warning",
    "eta_h_option",
    "eta_option",
    "eta_w_option",
    "format_option",
    "json_option",
    "min_size_option",
    "noise_model_option",
    "quiet_option",
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


class BoundedIntRange(click.IntRange):
    """``click.IntRange`` with an upper bound from :mod:`noisybox._limits`; the message
    says why the bound exists.

    >>> BoundedIntRange(1, 10_000).convert("100000000", None, None)
    Traceback (most recent call last):
    ...
    click.exceptions.BadParameter: 100000000 is not in the range 1<=x<=10000 (IoU is reported to 4 decimals).
    """

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            because = reason(int(self.max)) if self.max is not None else ""
            if not because:
                raise
            self.fail(f"{exc.message.rstrip('.')} ({because}).", param, ctx)


class BoundType(click.ParamType):
    """A number checked by a :class:`noisybox.settings.Bound`: the library's own check and
    message, named after the option (``--eta-w`` -> ``eta_w``).

    >>> ETA.convert("1", None, None)
    Traceback (most recent call last):
    ...
    click.exceptions.BadParameter: Expected eta in [0, 1) but got 1.0
    """

    name = "float"

    def __init__(self, bound: Bound) -> None:
        self.bound = bound

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        name = self.bound.name
        if isinstance(param, click.Option) and param.opts:
            name = param.opts[0].lstrip("-").replace("-", "_")
        try:
            return self.bound.check(value, name)
        except SettingError as exc:
            self.fail(str(exc), param, ctx)


ETA = BoundType(_ETA)
"""A noise rate: :data:`noisybox.settings.ETA`, ``[0, 1)``."""

RATIO = BoundType(_RATIO)
"""The share of boxes perturbed: :data:`noisybox.noise.spec.RATIO`, ``[0, 1]``."""

ALPHA = BoundType(_ALPHA)
"""The power of an IoU loss: :data:`noisybox.settings.ALPHA`, ``>= 0``."""

ALPHA_WARMUP = BoundType(_ALPHA_WARMUP)
"""The alpha warm-up share: :data:`noisybox.settings.ALPHA_WARMUP`, ``[0, 1]``."""

SEED = BoundedIntRange(0, MAX_SEED)
"""A seed: a non-negative 64-bit integer (numpy's generators take no negative seeds)."""


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


def noise_model_option(help: str) -> Callable[[_F], _F]:
    """``--noise-model``: a registered noise model (default ``uniform``); ``--model`` is its
    deprecated alias."""
    choice = click.Choice(list_noise_models())

    def decorator(fn: _F) -> _F:
        fn = deprecated_alias("--model", "--noise-model", "noise_model", type=choice)(fn)
        return click.option(
            "--noise-model", type=choice, default="uniform", show_default=True, help=help
        )(fn)

    return decorator


def boundary_option(help: str) -> Callable[[_F], _F]:
    """``--boundary``: the boundary handling (default ``shift``)."""
    return click.option(
        "--boundary", type=click.Choice(BOUNDARIES), default="shift", show_default=True, help=help
    )


def ratio_option(help: str) -> Callable[[_F], _F]:
    """``--ratio``: the share of boxes perturbed, in ``[0, 1]`` (default 1), refused with
    the message of :data:`noisybox.noise.spec.RATIO`."""
    return click.option("--ratio", type=RATIO, default=1.0, show_default=True, help=help)


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


def json_option(fn: _F) -> _F:
    """``--json`` (parameter ``as_json``): the result as one JSON document on stdout."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        help="Print the result as JSON on stdout (other text goes to stderr).",
    )(fn)


def quiet_option(fn: _F) -> _F:
    """``-q/--quiet``: no progress on stderr (warnings, errors and summaries stay)."""
    return click.option("-q", "--quiet", is_flag=True, help="No progress bars or lines.")(fn)


def common_options(fn: _F) -> _F:
    """``--json``, ``-q/--quiet`` and ``--debug``: the options every command takes.

    >>> @click.command()
    ... @common_options
    ... def cmd(as_json: bool, quiet: bool, debug: bool) -> None:
    ...     echo_json({"quiet": quiet}) if as_json else echo_info("not json")
    >>> from click.testing import CliRunner
    >>> json.loads(CliRunner().invoke(cmd, ["--json", "-q"]).stdout)
    {'quiet': True}
    """
    return json_option(quiet_option(debug_option(fn)))


def echo_json(payload: Any) -> None:
    """Print ``payload`` as indented JSON on stdout (paths and other objects as strings)."""
    click.echo(json.dumps(payload, indent=2, default=str))


def echo_info(message: str) -> None:
    """A line for the user that is not the result: on stderr."""
    click.echo(message, err=True)


def echo_warning(message: str) -> None:
    """A warning line on stderr (also with ``--quiet``)."""
    click.echo(f"warning: {message}", err=True)


#: ``ctx.meta`` key: the parameters a deprecated alias set (see :func:`deprecated_alias`).
ALIAS_GIVEN = "noisybox.alias_given"


def deprecated_alias(old: str, new: str, dest: str, **attrs: Any) -> Callable[[_F], _F]:
    """A hidden option ``old`` that still sets the parameter ``dest`` of the option ``new``,
    with a one-line deprecation warning on stderr (for one release).

    Giving both ``old`` and ``new`` is a usage error. The names of the parameters set this
    way are kept in ``ctx.meta[ALIAS_GIVEN]`` (for commands that tell given options from
    defaults).

    Args:
        old: the deprecated option, e.g. ``"--model"``.
        new: the option that replaces it, e.g. ``"--noise-model"``.
        dest: the command parameter of ``new``.
        **attrs: ``click.option`` attributes of ``old`` (its ``type``).

    >>> @click.command()
    ... @click.option("--noise-model", default="uniform")
    ... @deprecated_alias("--model", "--noise-model", "noise_model")
    ... def cmd(noise_model: str) -> None:
    ...     click.echo(noise_model)
    >>> from click.testing import CliRunner
    >>> result = CliRunner().invoke(cmd, ["--model", "gaussian"])
    >>> print(result.stdout + result.stderr, end="")
    gaussian
    warning: --model is deprecated and will be removed in the next release; use --noise-model
    """
    hidden = "deprecated_" + old.lstrip("-").replace("-", "_")

    def decorator(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = kwargs.pop(hidden, None)
            if value is not None:
                ctx = click.get_current_context()
                if ctx.get_parameter_source(dest) in (
                    ParameterSource.COMMANDLINE,
                    ParameterSource.ENVIRONMENT,
                ):
                    raise click.UsageError(f"Give {new} or its deprecated alias {old}, not both.")
                echo_warning(
                    f"{old} is deprecated and will be removed in the next release; use {new}"
                )
                kwargs[dest] = value
                ctx.meta.setdefault(ALIAS_GIVEN, set()).add(dest)
            return fn(*args, **kwargs)

        return click.option(old, hidden, hidden=True, default=None, **attrs)(wrapper)  # type: ignore[return-value]

    return decorator


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
