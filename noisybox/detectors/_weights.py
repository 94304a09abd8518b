"""Reading a weights file: every failure of ``torch.load`` becomes one line naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from noisybox.errors import NoisyboxError

__all__ = ["read_weights_file"]


def read_weights_file(path: str | Path, what: str) -> Any:
    """``torch.load(path, weights_only=True)`` on CPU, or one line naming the file.

    Args:
        path: the file.
        what: what it should hold, for the message ("detector weights").

    Raises:
        FileNotFoundError: no such file.
        NoisyboxError: the file is empty, not a torch file, or holds more than tensors
            (``weights_only`` refuses to unpickle code); click would print an ``EOFError``
            from an empty file as a bare ``Aborted!``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Expected a {what} file but got no file at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types, EOFError for empty files
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NoisyboxError(
            f"Expected {what} in {path} but got an unreadable file ({message[:200]})"
        ) from None
