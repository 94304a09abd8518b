"""The former name of :mod:`noisybox.study.loading` (loading a study config), kept as an
import path: ``from noisybox.study.config import load_config`` keeps working."""

from __future__ import annotations

from noisybox.study.loading import *  # noqa: F403
from noisybox.study.loading import __all__ as __all__
