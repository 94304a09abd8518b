"""Collapse signals of one training history: did the box-regression branch train?

Pure Python (no torch), so that the benchmark's records and reports can use it. The
thresholds have the names of the benchmark config's ``collapse`` section
(:class:`noisybox.study.spec.CollapseConfig`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["collapse_reasons", "stopped_nonfinite"]


def collapse_reasons(
    history: Sequence[Mapping[str, Any]],
    *,
    ap50: float | None = None,
    reference_ap50: float | None = None,
    min_box_loss_drop: float = 0.05,
    min_fg_iou: float = 0.2,
    ap50_near_zero: float = 0.02,
) -> list[str]:
    """Why a run looks collapsed (an empty list when it trained).

    Three signals, any of which marks the run:

    - the matched predicted boxes barely overlap their targets: the last epoch's
      ``fg_iou`` (alpha-free, recorded by the plugged heads) is below ``min_fg_iou``;
    - without ``fg_iou``, and only when alpha was constant over the run (the loss scale
      moves with alpha during a warm-up), the box loss did not fall: the last epoch's
      ``box_loss`` is above ``1 - min_box_loss_drop`` times the first epoch's;
    - ``ap50`` is below ``ap50_near_zero`` while the ``reference_ap50`` of its alpha = 1
      twin is at least twice that.

    Args:
        history: a training history (:attr:`noisybox.engine.TrainResult.history`).
        ap50: the run's clean AP50.
        reference_ap50: AP50 of the same cell trained with alpha = 1.
        min_box_loss_drop: relative fall of the box loss expected over a healthy run.
        min_fg_iou: mean matched IoU below which the regression branch has collapsed.
        ap50_near_zero: AP50 counted as zero.

    >>> h = [{"box_loss": 1.0, "alpha": 3.0, "fg_iou": 0.01}, {"box_loss": 0.99, "alpha": 3.0, "fg_iou": 0.02}]
    >>> [r.split(":")[0] for r in collapse_reasons(h, ap50=0.0, reference_ap50=0.6)]
    ['matched boxes do not overlap their targets', 'AP50 near zero']
    >>> [r.split(":")[0] for r in collapse_reasons([{"box_loss": 1.0}, {"box_loss": 0.99}])]
    ['box loss did not fall']
    >>> collapse_reasons([{"box_loss": 1.0, "alpha": 1.0}, {"box_loss": 0.5, "alpha": 1.0}])
    []
    """
    reasons: list[str] = []
    stopped = stopped_nonfinite(history)
    if stopped is not None:
        reasons.append(
            f"weights became non-finite in epoch {stopped}: training stopped (lower the "
            "learning rate or set grad_clip)"
        )
    fg_iou = history[-1].get("fg_iou") if history else None
    rows = [h for h in history if h.get("box_loss") is not None and math.isfinite(h["box_loss"])]
    if fg_iou is not None:
        if fg_iou < min_fg_iou:
            reasons.append(
                f"matched boxes do not overlap their targets: mean IoU {fg_iou:.3f} < {min_fg_iou}"
            )
    elif len(rows) >= 2 and len({h.get("alpha") for h in rows}) == 1:
        first, last = rows[0]["box_loss"], rows[-1]["box_loss"]
        if last > (1 - min_box_loss_drop) * first:
            reasons.append(f"box loss did not fall: {first:.4f} -> {last:.4f} over the run")
    if (
        ap50 is not None
        and reference_ap50 is not None
        and ap50 < ap50_near_zero
        and reference_ap50 >= 2 * ap50_near_zero
    ):
        reasons.append(f"AP50 near zero: {ap50:.3f} while alpha = 1 reaches {reference_ap50:.3f}")
    return reasons


def stopped_nonfinite(history: Sequence[Mapping[str, Any]]) -> int | None:
    """The epoch (1-based) after which the weights were non-finite and training stopped,
    or ``None``.

    >>> stopped_nonfinite([{"epoch": 1}, {"epoch": 2, "nonfinite_weights": True}])
    2
    """
    for k, entry in enumerate(history, start=1):
        if entry.get("nonfinite_weights"):
            return int(entry.get("epoch", k))
    return None
