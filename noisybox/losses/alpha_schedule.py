"""The alpha schedule of a box loss: the warm-up ramp from 1 to the loss's alpha.

Defined in :mod:`noisybox.settings` beside the loss spec (:class:`~noisybox.settings.LossSpec`,
whose :meth:`~noisybox.settings.LossSpec.alpha_at` reads it), so that torch-free code can
import it; re-exported here, so that every trainer (the engine's loop, the Ultralytics plug)
reads the same default and the same ramp under its old name.
"""

from __future__ import annotations

from noisybox.settings import DEFAULT_ALPHA_WARMUP, alpha_at_step

__all__ = ["DEFAULT_ALPHA_WARMUP", "alpha_at_step"]
