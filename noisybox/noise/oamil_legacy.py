"""Deprecated path of OA-MIL's legacy draw, now beside its ``oamil`` noise model in
:mod:`noisybox.noise.published`; each name still works from here for one release, with a
:class:`FutureWarning`."""

from __future__ import annotations

from noisybox._deprecation import moved_module
from noisybox.noise import published as _new

#: The public names of the old path.
_MOVED = ("OAMIL_SEED", "oamil_legacy_boxes")

__getattr__ = moved_module("noisybox.noise.oamil_legacy", _new, _MOVED)
