"""Box noise on annotation sets: :func:`corrupt_boxes` and :func:`perturb_annotations` in
memory (:mod:`noisybox.corrupt.in_memory`), and :func:`corrupt_annotations` (read ->
:func:`corrupt_boxes` -> measure -> atomic write, :mod:`noisybox.corrupt.files`, its
refusals in :mod:`noisybox.corrupt.checks`), the function behind ``noisybox corrupt``.
Several sets (VOC 2007 + 2012 trainval, the paper's training set) are corrupted together
with one seed and measured as one. Annotation-level noise (``missing``, ``class_flip``,
``extra``, ``relocate``) drops, relabels, adds and relocates records; a published
generator is reproduced exactly with ``reproduce=`` (OA-MIL's, :mod:`noisybox.corrupt.oamil`)."""

from __future__ import annotations

from noisybox.corrupt.files import CorruptionResult, corrupt_annotations
from noisybox.corrupt.in_memory import (
    BOX_TOLERANCE,
    DEFAULT_SEED,
    INVALID_POLICIES,
    CorruptedBoxes,
    corrupt_boxes,
    find_invalid_boxes,
    perturb_annotations,
)

__all__ = [
    "BOX_TOLERANCE",
    "DEFAULT_SEED",
    "INVALID_POLICIES",
    "CorruptedBoxes",
    "CorruptionResult",
    "corrupt_annotations",
    "corrupt_boxes",
    "find_invalid_boxes",
    "perturb_annotations",
]
