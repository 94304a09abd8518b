"""Atomic checkpoint files readable with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from noisybox._fileio import atomic_write
from noisybox.errors import NoisyboxError

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

#: Marker stored in every noisybox training checkpoint.
CHECKPOINT_FORMAT = "noisybox-train-checkpoint-v1"


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` to ``path`` atomically (:func:`noisybox._fileio.atomic_write`).

    ``state`` must hold only tensors, numbers, strings, ``None`` and lists/tuples/dicts of
    them, so that :func:`load_checkpoint` can read it without unpickling code.
    """
    atomic_write(path, lambda handle: torch.save(state, handle))
    return Path(path)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a checkpoint written by the training loop (``weights_only=True``, on CPU).

    Raises:
        NoisyboxError: no such file, or not a noisybox training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise NoisyboxError(f"Expected a checkpoint file but got no file at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors come in many types
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NoisyboxError(
            f"Expected a noisybox checkpoint at {path} but got an unreadable file ({message})"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise NoisyboxError(
            f"Expected a noisybox training checkpoint ({CHECKPOINT_FORMAT}) at {path} but got "
            f"{'a dict without that marker' if isinstance(state, dict) else type(state).__name__}"
        )
    if not isinstance(state.get("model"), dict):
        found = "no" if "model" not in state else f"a {type(state['model']).__name__}"
        raise NoisyboxError(
            f"Expected a noisybox training checkpoint with its 'model' weights at {path} but "
            f"got {found} 'model' entry"
        )
    return state
