"""Deprecated path of :mod:`noisybox.corrupt.oamil`, where OA-MIL's published noisy sets are
regenerated (``noisybox.reproduce.oamil_voc`` is ``noisybox.corrupt.oamil.oamil_voc``); each
name still works from here for one release, with a :class:`FutureWarning`."""

from __future__ import annotations

from noisybox._deprecation import moved_module
from noisybox.corrupt import oamil as _new

#: The public names of the old path.
_MOVED = (
    "REPRODUCIBLE",
    "OamilVoc",
    "oamil_coco",
    "oamil_coco_corners",
    "oamil_voc",
    "oamil_voc_corners",
)

__getattr__ = moved_module("noisybox.reproduce", _new, _MOVED)
