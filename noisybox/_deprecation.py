"""Old keyword spellings of public functions, kept working with a ``DeprecationWarning``."""

from __future__ import annotations

import warnings
from typing import Any

from noisybox.errors import NoisyboxError

__all__ = ["renamed_keyword"]


def renamed_keyword(where: str, old: str, old_value: Any, new: str, new_value: Any) -> Any:
    """The value of keyword ``new``, taken from its old spelling ``old`` if that was given.

    Args:
        where: the function, as the warning names it.
        old, old_value: the old keyword and what the caller passed for it (``None``: nothing).
        new, new_value: the new keyword and what the caller passed for it.

    Raises:
        NoisyboxError: both spellings given.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     renamed_keyword("f", "images", "a", "image_root", None), str(caught[0].message)
    ('a', 'f(images=...) is deprecated; use f(image_root=...)')
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise NoisyboxError(f"Expected {new} or its old spelling {old} but got both")
    warnings.warn(
        f"{where}({old}=...) is deprecated; use {where}({new}=...)",
        DeprecationWarning,
        stacklevel=3,
    )
    return old_value
