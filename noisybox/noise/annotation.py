"""Deprecated path of :mod:`noisybox.noise.annotation_noise` (annotation-level noise: boxes
missing, relabelled, extra, relocated); each name still works from here for one release, with
a :class:`FutureWarning`."""

from __future__ import annotations

from noisybox._deprecation import moved_module
from noisybox.noise import annotation_noise as _new

__getattr__ = moved_module("noisybox.noise.annotation", _new, _new.__all__)
