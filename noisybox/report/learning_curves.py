"""Learning curves of a study: per-epoch clean-test metrics, their summary and convergence.

Cells trained with ``eval_every > 0`` carry a clean-test evaluation in some epochs of their
``history`` (see :func:`noisybox.engine.train`). This module turns the records into

* :func:`curves_frame`: one row per (cell, evaluated epoch) with ``map``, ``map_75_95`` and
  ``ap50``;
* :func:`curve_summary`: per detector, eta and loss, the final value (the pre-registered
  headline), the peak over the curve and its epoch, and the drop from peak to final, each
  as mean ± std over seeds. The peak is read off the test set: it explains the dynamics
  (early learning, then memorising the noise) and is not a result to compare losses by;
* :func:`convergence_status`: how many clean (eta = 0) cells passed the convergence check
  of :func:`noisybox.engine.curves.convergence` stored in their records.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from noisybox.study.spec import LossSpec

__all__ = [
    "CURVE_METRICS",
    "convergence_status",
    "curve_summary",
    "curves_frame",
    "describe_gaps",
]

#: Metrics drawn and tabulated along the learning curve.
CURVE_METRICS: tuple[str, ...] = ("map", "map_75_95", "ap50")

_KEYS = ["detector", "backbone", "eta", "label"]


def _label(cell: dict[str, Any]) -> str:
    return LossSpec.from_cell(cell).row_label


def curves_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per evaluated epoch of every non-collapsed record (fractions).

    Columns: ``detector, backbone, eta, label, seed, epoch`` and :data:`CURVE_METRICS`.
    Empty when no record has per-epoch evaluations.
    """
    rows = []
    for rec in records:
        if rec.get("collapsed"):
            continue
        cell = rec["cell"]
        for entry in rec.get("history") or []:
            metrics = entry.get("metrics")
            if not metrics:
                continue
            row = {
                "detector": cell["detector"],
                "backbone": cell.get("backbone", ""),
                "eta": float(cell["eta"]),
                "label": _label(cell),
                "seed": int(cell["seed"]),
                "epoch": int(entry["epoch"]),
            }
            row.update({m: float(metrics.get(m, np.nan)) for m in CURVE_METRICS})
            rows.append(row)
    return pd.DataFrame(rows, columns=[*_KEYS, "seed", "epoch", *CURVE_METRICS])


def curve_summary(
    curves: pd.DataFrame, metrics: Sequence[str] = ("map", "map_75_95")
) -> pd.DataFrame:
    """Final, peak, peak epoch and drop per detector, eta and loss (mean/std over seeds).

    Per seed: ``final`` is the value at the last evaluated epoch, ``peak`` the largest value
    on the curve (the earliest epoch on ties), ``drop = peak - final`` (>= 0). Columns
    ``<metric>_final_mean`` / ``_final_std``, ``_peak_mean`` / ``_peak_std``,
    ``_peak_epoch`` (median over seeds), ``_drop_mean`` / ``_drop_std``, ``n`` (seeds) and
    ``points`` (evaluations per curve, the smallest over seeds).

    >>> c = pd.DataFrame({"detector": "fcos", "backbone": "r", "eta": 0.3, "label": "iou",
    ...                   "seed": [0, 0, 0], "epoch": [1, 2, 3], "map": [0.1, 0.3, 0.2],
    ...                   "map_75_95": [0.0, 0.1, 0.1], "ap50": 0.5})
    >>> s = curve_summary(c).iloc[0]
    >>> [round(float(s[f"map_{k}"]), 2) for k in ("final_mean", "peak_mean", "peak_epoch", "drop_mean")]
    [0.2, 0.3, 2.0, 0.1]
    """
    out = []
    for key, group in curves.groupby(_KEYS, sort=False):
        res: dict[str, Any] = dict(zip(_KEYS, key, strict=True))
        per_seed = []
        for _seed, seed_rows in group.sort_values("epoch").groupby("seed"):
            item: dict[str, Any] = {"points": len(seed_rows)}
            for m in metrics:
                values = seed_rows[m].to_numpy(dtype=float)
                epochs = seed_rows["epoch"].to_numpy()
                best = int(np.argmax(values))
                item[f"{m}_final"] = float(values[-1])
                item[f"{m}_peak"] = float(values[best])
                item[f"{m}_peak_epoch"] = int(epochs[best])
                item[f"{m}_drop"] = float(values[best] - values[-1])
            per_seed.append(item)
        seeds = pd.DataFrame(per_seed)
        res["n"] = len(seeds)
        res["points"] = int(seeds["points"].min())
        for m in metrics:
            for part in ("final", "peak", "drop"):
                vals = seeds[f"{m}_{part}"].to_numpy(dtype=float)
                res[f"{m}_{part}_mean"] = float(vals.mean())
                res[f"{m}_{part}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else np.nan
            res[f"{m}_peak_epoch"] = float(np.median(seeds[f"{m}_peak_epoch"]))
        out.append(res)
    return pd.DataFrame(out)


def convergence_status(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Convergence of the clean-box (eta = 0) cells, from their records.

    Returns:
        ``{"checked", "converged", "not_converged", "unknown"}`` counts of eta = 0 cells,
        ``failed``: the ids of those that did not pass, and ``gaps``: per failed id, its final
        mAP minus its last-quarter mean (positive: still rising at the end). ``unknown``
        counts cells without a learning curve long enough to check (``eval_every = 0``, or
        older records).
    """
    status: dict[str, Any] = {"checked": 0, "converged": 0, "not_converged": 0, "unknown": 0}
    failed = []
    gaps: dict[str, float] = {}
    for rec in records:
        if float(rec["cell"]["eta"]) != 0 or rec.get("collapsed"):
            continue
        conv = (rec.get("convergence") or {}).get("converged")
        if conv is None:
            status["unknown"] += 1
            continue
        status["checked"] += 1
        if conv:
            status["converged"] += 1
        else:
            status["not_converged"] += 1
            failed.append(str(rec.get("cell_id")))
            final, tail = rec["convergence"].get("final"), rec["convergence"].get("tail_mean")
            if final is not None and tail is not None:
                gaps[failed[-1]] = float(final) - float(tail)
    status["failed"] = failed
    status["gaps"] = gaps
    return status


def describe_gaps(gaps: Sequence[float]) -> str:
    """How far unconverged curves were from flat (rising and falling ones, in AP points).

    >>> describe_gaps([0.0059, 0.0093, 0.0051, -0.007])
    '3 were still rising when training stopped (final mAP 0.51 to 0.93 points above their last-quarter mean, median 0.59); 1 was falling (final mAP 0.70 points below it).'
    >>> describe_gaps([])
    ''
    """
    parts = []
    for state, side, values in (
        (
            "still rising when training stopped",
            "above their last-quarter mean",
            [g for g in gaps if g > 0],
        ),
        ("falling", "below it", [-g for g in gaps if g < 0]),
    ):
        if not values:
            continue
        lo, hi = 100 * min(values), 100 * max(values)
        span = f"{lo:.2f}" if len(values) == 1 else f"{lo:.2f} to {hi:.2f}"
        median = f", median {100 * float(np.median(values)):.2f}" if len(values) > 2 else ""
        verb = "was" if len(values) == 1 else "were"
        parts.append(f"{len(values)} {verb} {state} (final mAP {span} points {side}{median})")
    return "; ".join(parts) + "." if parts else ""
