"""Renamed keywords and config keys: the old name keeps working for one release, with a warning.

``model`` became ``noise_model`` (the noise model, not the network), ``val_*`` became
``test_*`` (the clean evaluation set, as the benchmark calls it) and ``images`` became
``image_root`` (the folder the annotations' file names are relative to). The old names are
deprecated aliases: same behaviour, and a :class:`FutureWarning` naming the new one. A
module that moved keeps its old path the same way (:func:`moved_module`): ``noisybox.reproduce``
is :mod:`noisybox.corrupt.oamil`, ``noisybox.noise.oamil_legacy`` is in
:mod:`noisybox.noise.published`, ``noisybox.noise.annotation`` is
:mod:`noisybox.noise.annotation_noise`.

One category for every rename: ``FutureWarning`` is the warning Python shows by default and
means for the users of a library or an application (scikit-learn and pandas use it for
renamed parameters), while ``DeprecationWarning`` is hidden outside ``__main__`` and test
runners, so a notebook or a script importing noisybox would never see it.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Mapping
from types import ModuleType
from typing import Any, TypeVar

__all__ = ["moved_module", "rename_keys", "renamed_keywords", "warn_renamed"]

_F = TypeVar("_F", bound=Callable[..., Any])


def warn_renamed(old: str, new: str, where: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is a deprecated alias of ``new`` (a ``FutureWarning``)."""
    warnings.warn(
        f"{where}: {old!r} is deprecated and will be removed in the next release; use {new!r}",
        FutureWarning,
        stacklevel=stacklevel,
    )


def rename_keys(
    data: Mapping[str, Any], renames: Mapping[str, str], where: str, *, warn: bool = True
) -> dict[str, Any]:
    """A copy of ``data`` with the deprecated keys of ``renames`` (old -> new) renamed.

    Args:
        data: a mapping of keywords or config keys.
        renames: deprecated name -> its new name.
        where: what ``data`` is, for the warning and the error (a function, a file).
        warn: warn about every deprecated key found (``False`` for stored data such as a
            checkpoint's config, which the user did not write).

    Raises:
        TypeError: ``data`` holds both an old name and its new name.

    >>> rename_keys({"val_images": "img", "seed": 1}, {"val_images": "test_images"}, "f",
    ...             warn=False)
    {'test_images': 'img', 'seed': 1}
    """
    out: dict[str, Any] = {}
    for key, value in data.items():
        new = renames.get(key)
        if new is None:
            out[key] = value
            continue
        if new in data:
            raise TypeError(f"{where}: got both {new!r} and its deprecated alias {key!r}")
        if warn:
            warn_renamed(key, new, where, stacklevel=4)
        out[new] = value
    return out


def renamed_keywords(**renames: str) -> Callable[[_F], _F]:
    """Decorator: keyword ``old=new`` pairs whose old name still works, with a warning.

    >>> @renamed_keywords(model="noise_model")
    ... def draw(*, noise_model: str = "uniform") -> str:
    ...     return noise_model
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     draw(model="gaussian"), caught[0].category.__name__
    ('gaussian', 'FutureWarning')
    """

    def decorator(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if any(old in kwargs for old in renames):
                kwargs = rename_keys(kwargs, renames, f"{fn.__qualname__}()")
            return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def moved_module(old: str, new: ModuleType, names: Iterable[str]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of a module that moved: each of ``names`` read from the
    old path is the new module's, with a warning naming where it is now.

    Args:
        old: the old dotted path (the module holding this ``__getattr__``).
        new: the module the names live in now.
        names: the public names of the old module.

    >>> import noisybox.boxes as boxes
    >>> getattr_ = moved_module("noisybox.old_boxes", boxes, ["box_iou"])
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     getattr_("box_iou") is boxes.box_iou, str(caught[0].message).split(";")[1]
    (True, " use 'noisybox.boxes.box_iou'")
    """
    public = frozenset(names)

    def __getattr__(name: str) -> Any:
        if name not in public:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warn_renamed(f"{old}.{name}", f"{new.__name__}.{name}", "import", stacklevel=3)
        return getattr(new, name)

    return __getattr__
