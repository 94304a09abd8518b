"""Deprecated path of :mod:`noisybox.noise.annotation_noise` (annotation-level noise: boxes
missing, relabelled, extra, relocated); each name still works from here for one release, with
a :class:`FutureWarning`."""

from __future__ import annotations

from noisybox._deprecation import moved_module
from noisybox.noise import annotation_noise as _new

#: The public names of the old path.
_MOVED = (
    "ANNOTATION_CORRUPTIONS",
    "AnnotationNoise",
    "check_corruption_rates",
    "corruption_rng",
    "draw_annotation_noise",
    "relocate_boxes",
)

__getattr__ = moved_module("noisybox.noise.annotation", _new, _MOVED)
