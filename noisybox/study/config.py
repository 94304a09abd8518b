"""Deprecated path of :mod:`noisybox.study.loading` (loading a study config; renamed so
that one module name does not stand for both this and :mod:`noisybox.engine.config`):
``from noisybox.study.config import load_config`` keeps working for one release, with a
:class:`FutureWarning` naming the new path."""

from __future__ import annotations

from noisybox._deprecation import moved_module
from noisybox.study import loading as _new

__getattr__ = moved_module("noisybox.study.config", _new, _new.__all__)
