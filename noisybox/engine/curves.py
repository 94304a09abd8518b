"""Learning curves: the per-epoch clean-test metrics of a training history.

:func:`curve` extracts ``(epoch, value)`` points; :func:`convergence` says whether the
curve has flattened by the end of the run. Pure Python (no torch), so reports can use it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["convergence", "curve", "evaluation_line"]


def curve(history: Sequence[Mapping[str, Any]], metric: str = "map") -> list[tuple[int, float]]:
    """``(epoch, value)`` of every evaluated epoch of a training history.

    >>> curve([{"epoch": 1}, {"epoch": 2, "metrics": {"map": 0.2}}])
    [(2, 0.2)]
    """
    points = []
    for row in history:
        metrics = row.get("metrics")
        if metrics and metrics.get(metric) is not None:
            points.append((int(row["epoch"]), float(metrics[metric])))
    return points


def evaluation_line(
    epoch: int,
    metrics: Mapping[str, float],
    *,
    epochs: int | None = None,
    label: str | None = None,
) -> str:
    """One plain line for a learning-curve point: epoch, AP50, mAP and mAP75:95 (fractions).

    Args:
        epoch: the evaluated epoch (1-based).
        metrics: :func:`~noisybox.engine.evaluation.coco_evaluate`'s metrics.
        epochs: the run's epochs, shown as ``epoch/epochs``.
        label: what was evaluated (a benchmark cell id), first on the line.

    >>> evaluation_line(5, {"ap50": 0.6123, "map": 0.4244, "map_75_95": 0.27}, epochs=60)
    'epoch 5/60 eval: AP50 0.612 mAP 0.424 mAP75:95 0.270'
    """
    of = "" if epochs is None else f"/{epochs}"
    line = (
        f"epoch {epoch}{of} eval: AP50 {metrics['ap50']:.3f} mAP {metrics['map']:.3f} "
        f"mAP75:95 {metrics['map_75_95']:.3f}"
    )
    return line if label is None else f"{label}: {line}"


def convergence(
    history: Sequence[Mapping[str, Any]],
    *,
    metric: str = "map",
    tolerance: float = 0.005,
    tail: float = 0.25,
) -> dict[str, Any] | None:
    """Whether a learning curve has flattened by its last epoch.

    The run counts as converged when the mean of ``metric`` over the evaluations in the
    last ``tail`` of the epochs is within ``tolerance`` of the final value (0.005 = half
    an AP point). It needs at least two evaluations in that tail; otherwise the check
    cannot be made and ``converged`` is ``None``.

    Args:
        history: a training history whose epochs carry ``metrics`` (``eval_every``).
        metric: the metric of the curve (fractions, as ``coco_evaluate`` returns them).
        tolerance: largest allowed gap between the tail mean and the final value.
        tail: share of the epochs that forms the tail.

    Returns:
        ``{"converged", "metric", "final", "tail_mean", "tail_epochs", "tolerance",
        "peak", "peak_epoch"}``, or ``None`` when nothing was evaluated.

    >>> h = [{"epoch": e, "metrics": {"map": v}} for e, v in enumerate([.1, .3, .40, .41], 1)]
    >>> c = convergence(h, tail=0.5)
    >>> c["converged"], c["tail_epochs"], round(c["tail_mean"], 3)
    (True, [3, 4], 0.405)
    >>> convergence(h[:3], tail=0.5)["converged"]
    False
    """
    points = curve(history, metric)
    if not points:
        return None
    epochs = max(int(row["epoch"]) for row in history)
    cut = epochs - tail * epochs
    tail_points = [(e, v) for e, v in points if e > cut]
    final_epoch, final = points[-1]
    peak_epoch, peak = max(points, key=lambda p: (p[1], -p[0]))
    tail_mean = sum(v for _, v in tail_points) / len(tail_points) if tail_points else None
    converged = None
    if len(tail_points) >= 2 and tail_mean is not None:
        converged = abs(tail_mean - final) <= tolerance
    return {
        "converged": converged,
        "metric": metric,
        "final": final,
        "final_epoch": final_epoch,
        "tail_mean": tail_mean,
        "tail_epochs": [e for e, _ in tail_points],
        "tolerance": tolerance,
        "peak": peak,
        "peak_epoch": peak_epoch,
    }
