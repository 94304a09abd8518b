"""How sure a paired comparison over seeds is: confidence interval, signed-rank and sign tests.

Cells that differ only in the loss share their seed: the same noisy file, the same initial
weights and the same batches. Their per-seed differences (alpha variant minus baseline) are
paired observations, and :func:`paired_stats` summarises them with

* the mean difference and its two-sided ``confidence`` interval from Student's t over
  seeds (``mean ± t_{n-1} * std / sqrt(n)``),
* the exact two-sided Wilcoxon signed-rank p-value (``scipy.stats.wilcoxon``; zero
  differences dropped, as in Wilcoxon's original test),
* the exact two-sided sign-test p-value (``scipy.stats.binomtest`` on the seeds ahead
  among the non-tied ones),
* the tally of seeds ahead, behind and tied.

With n seeds neither rank test can go below ``2 / 2**n``: 0.0625 with 5 seeds, 0.031 with
6, 0.016 with 7. A study that wants p < 0.05 from them needs at least 6 seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["PAIRED_FIELDS", "intervals_excluding_zero", "min_rank_p", "paired_stats"]

#: Keys of :func:`paired_stats`' result, in display order.
PAIRED_FIELDS: tuple[str, ...] = (
    "n",
    "mean",
    "std",
    "ci_low",
    "ci_high",
    "wilcoxon_p",
    "sign_p",
    "ahead",
    "behind",
    "tied",
)


def min_rank_p(n: int) -> float:
    """The smallest two-sided p-value an exact sign or signed-rank test can give with n pairs.

    >>> min_rank_p(5), round(min_rank_p(6), 4)
    (0.0625, 0.0312)
    """
    return min(1.0, 2.0 / 2**n) if n > 0 else 1.0


def intervals_excluding_zero(
    lows: Sequence[float], highs: Sequence[float], *, level: float = 0.05
) -> dict[str, float]:
    """How many of several confidence intervals exclude 0, against what chance gives.

    Args:
        lows, highs: the intervals' bounds (NaN where an interval could not be computed,
            fewer than 2 pairs: not counted).
        level: one minus the intervals' confidence.

    Returns:
        ``compared`` (intervals counted), ``above`` and ``below`` (those wholly above or
        below 0) and ``by_chance``: ``level * compared``, the number expected to exclude 0
        if no difference were real (independence assumed, no correction applied).

    >>> intervals_excluding_zero([0.1, -0.3, -0.2, float("nan")], [0.4, 0.2, -0.1, float("nan")])
    {'compared': 3, 'above': 1, 'below': 1, 'by_chance': 0.15}
    """
    pairs = [(lo, hi) for lo, hi in zip(lows, highs, strict=True) if lo == lo and hi == hi]
    return {
        "compared": len(pairs),
        "above": sum(lo > 0 for lo, _ in pairs),
        "below": sum(hi < 0 for _, hi in pairs),
        "by_chance": round(level * len(pairs), 10),
    }


def paired_stats(
    diffs: Sequence[float] | np.ndarray, *, confidence: float = 0.95
) -> dict[str, Any]:
    """Summarise paired differences (one per seed).

    Args:
        diffs: per-seed differences, variant minus baseline. NaN entries are dropped.
        confidence: level of the t interval.

    Returns:
        A dict with :data:`PAIRED_FIELDS`: ``n``, ``mean``, ``std`` (sample, ``ddof = 1``),
        ``ci_low`` / ``ci_high`` (NaN with fewer than 2 pairs), ``wilcoxon_p`` and
        ``sign_p`` (NaN with no pair; 1.0 when every difference is 0), and the counts
        ``ahead`` (> 0), ``behind`` (< 0), ``tied`` (== 0).

    Raises:
        ValueError: ``confidence`` outside ``(0, 1)``.

    >>> s = paired_stats([0.01, 0.02, 0.03, 0.02, 0.04])
    >>> round(s["mean"], 3), round(s["ci_low"], 4), round(s["ci_high"], 4)
    (0.024, 0.0098, 0.0382)
    >>> s["wilcoxon_p"], s["sign_p"], s["ahead"]
    (0.0625, 0.0625, 5)
    """
    from scipy import stats

    if not 0 < confidence < 1:
        raise ValueError(f"Expected confidence in (0, 1) but got {confidence!r}")
    d = np.asarray(diffs, dtype=float)
    d = d[~np.isnan(d)]
    n = int(d.size)
    out: dict[str, Any] = {key: math.nan for key in PAIRED_FIELDS}
    out.update(n=n, ahead=int((d > 0).sum()), behind=int((d < 0).sum()), tied=int((d == 0).sum()))
    if n == 0:
        return out
    out["mean"] = float(d.mean())
    if n >= 2:
        std = float(d.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
        out.update(std=std, ci_low=out["mean"] - half, ci_high=out["mean"] + half)
    nonzero = d[d != 0]
    if nonzero.size == 0:
        out.update(wilcoxon_p=1.0, sign_p=1.0)
        return out
    out["wilcoxon_p"] = float(stats.wilcoxon(nonzero, method="exact").pvalue)
    out["sign_p"] = float(stats.binomtest(out["ahead"], out["ahead"] + out["behind"]).pvalue)
    return out
