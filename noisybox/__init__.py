"""noisybox: robustness of object detectors and box losses to noisy box annotations.

The noise model and losses follow *Alpha-IoU: A Family of Power IoU Losses for Bounding
Box Regression* (He et al., NeurIPS 2021).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
