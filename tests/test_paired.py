"""Paired statistics over seeds: hand-computed intervals and exact p-values."""

from __future__ import annotations

import math

import pytest

from noisybox.report.paired import min_rank_p, paired_stats
from noisybox.report.writer import REL_FLOOR, build_report
from noisybox.study.loading import CollapseConfig


def test_t_interval_by_hand() -> None:
    # diffs 1, 2, 3, 4, 5: mean 3, sample std sqrt(2.5) = 1.5811, t_{0.975, 4} = 2.7764
    # half width 2.7764 * 1.5811 / sqrt(5) = 1.9632
    s = paired_stats([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s["n"] == 5 and s["mean"] == pytest.approx(3.0)
    assert s["std"] == pytest.approx(math.sqrt(2.5))
    assert s["ci_low"] == pytest.approx(3.0 - 1.9632, abs=1e-4)
    assert s["ci_high"] == pytest.approx(3.0 + 1.9632, abs=1e-4)


def test_exact_p_values_by_hand() -> None:
    # all 5 positive: the signed-rank statistic W- = 0 is the most extreme of 2**5 sign
    # patterns, two-sided p = 2/32; the sign test gives the same 2 * 0.5**5
    s = paired_stats([0.5, 0.1, 0.3, 0.2, 0.4])
    assert s["wilcoxon_p"] == pytest.approx(0.0625)
    assert s["sign_p"] == pytest.approx(0.0625)
    assert (s["ahead"], s["behind"], s["tied"]) == (5, 0, 0)
    # ranks of |d| for 1, -2, 3, 4, 5, 6: W- = 2; P(W- <= 2) = #{subsets of 1..6 with sum <= 2}
    # / 64 = {}, {1}, {2} -> 3/64, two-sided 6/64 = 0.09375
    s = paired_stats([1.0, -2.0, 3.0, 4.0, 5.0, 6.0])
    assert s["wilcoxon_p"] == pytest.approx(6 / 64)
    # sign test: 5 of 6 ahead, P(X >= 5) = 7/64, two-sided 14/64
    assert s["sign_p"] == pytest.approx(14 / 64)


def test_ties_nan_and_degenerate_inputs() -> None:
    s = paired_stats([0.0, 0.0, 0.0])
    assert s["wilcoxon_p"] == 1.0 and s["sign_p"] == 1.0 and s["tied"] == 3
    s = paired_stats([float("nan"), 0.2])
    assert s["n"] == 1 and s["mean"] == pytest.approx(0.2) and math.isnan(s["ci_low"])
    assert paired_stats([])["n"] == 0
    with pytest.raises(ValueError, match="confidence"):
        paired_stats([1.0, 2.0], confidence=1.5)


def test_min_rank_p() -> None:
    assert min_rank_p(5) == 0.0625
    assert min_rank_p(6) == pytest.approx(1 / 32)
    # no sign pattern of 5 seeds reaches it: the most extreme one is exactly the bound
    assert paired_stats([1, 2, 3, 4, 5])["wilcoxon_p"] == min_rank_p(5)


def _record(loss: str, alpha: float, seed: int, ap: float) -> dict:
    metrics = {m: ap for m in ("ap50", "ap55", "ap60", "ap65", "ap70", "ap75")}
    metrics.update({m: ap / 10 for m in ("ap80", "ap85", "ap90", "ap95")})
    metrics.update(map=ap / 2, map_75_95=ap / 20)
    return {
        "cell_id": f"{loss}-{seed}",
        "cell": {
            "detector": "fcos",
            "backbone": "resnet18",
            "loss": loss,
            "alpha": alpha,
            "alpha_warmup": None,
            "eta": 0.3,
            "seed": seed,
        },
        "metrics": metrics,
        "history": [{"epoch": 1, "box_loss": 1.0, "alpha": alpha}],
    }


def test_relative_improvement_below_one_point_is_not_a_percentage() -> None:
    # AP95 baseline 0.004 (< 1 point): +50 % of it would be a swing of a near-zero value
    records = [
        _record(loss, alpha, seed, ap)
        for seed in range(3)
        for loss, alpha, ap in (
            ("iou", 1.0, 0.04 + seed / 100),
            ("alpha-iou", 3.0, 0.06 + seed / 100),
        )
    ]
    report, data = build_report(records, thresholds=CollapseConfig())
    rel = data["relative"].iloc[0]
    assert rel["ap95_baseline"] < REL_FLOOR and math.isnan(rel["ap95_rel"])
    assert rel["ap50_rel"] == pytest.approx(100 * 0.02 / 0.05)
    line = next(ln for ln in report.markdown.splitlines() if ln.startswith("| rela. improv."))
    assert "n/a (below 1 point)" in line and "40.00%" in line
