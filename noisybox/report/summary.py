"""The numbers of a benchmark report, computed from result records.

Everything here works on plain records (see :func:`noisybox.study.runner.run_cell`)
and returns DataFrames of fractions, so that a report can be rebuilt from a committed
``records/`` folder alone and tested on hand-made records; :mod:`noisybox.report.writer`
renders them.

* :func:`records_frame`: one row per record; :func:`summarize`: mean and std over seeds per
  loss row, collapsed cells left out.
* :func:`relative_improvements` and :func:`paired_differences`: each alpha variant against
  its alpha = 1 baseline (:func:`noisybox.study.collapse_flags.baseline_of`), or every loss
  row against one ``reference`` row (the config's ``report.reference``), on the seeds
  where both cells exist and neither collapsed.
* :func:`reference_summary`: per loss row, clean mAP, mAP and its retention at each noisy
  eta, and the paired mAP difference to the reference at each eta.
* :func:`retention_differences`: robustness as retention, seed by seed: per loss row
  and noisy eta, the paired difference of retention (mAP at eta over the same seed's clean
  mAP, and the same for mAP75:95) to its baseline or the reference, beside the paired
  difference of the noisy mAP on the same seeds.
* :func:`robustness_frame`: ``mPC`` = mean performance over the noisy levels eta > 0,
  ``rPC`` = mPC / clean performance (Michaelis et al., 2019), and the retention of AP50
  and AP75 at each level (AP at eta / AP at 0), the figure the noisy-box papers publish
  (:data:`PUBLISHED_RETENTION`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd

from noisybox.engine.evaluation import THRESHOLD_METRICS
from noisybox.report.paired import paired_stats
from noisybox.study.collapse_flags import baseline_of
from noisybox.study.spec import loss_label

__all__ = [
    "COLUMN_TITLES",
    "GROUP",
    "PUBLISHED_RETENTION",
    "RETENTION_MODELS",
    "REL_FLOOR",
    "RETENTION_METRICS",
    "TABLE_METRICS",
    "none_if_nan",
    "paired_differences",
    "records_frame",
    "reference_summary",
    "relative_improvements",
    "retention_differences",
    "robustness_frame",
    "summarize",
]

TABLE_METRICS: tuple[str, ...] = (*THRESHOLD_METRICS, "map", "map_75_95")
COLUMN_TITLES: dict[str, str] = {
    **{m: f"AP{m[2:]}" for m in THRESHOLD_METRICS},
    "map": "mAP",
    "map_75_95": "mAP75:95",
}
GROUP = ["detector", "backbone", "eta", "loss", "alpha", "alpha_warmup"]

#: Metrics whose retention (noisy over the same seed's clean value) the report pairs.
RETENTION_METRICS: tuple[str, ...] = ("map", "map_75_95")

#: Noise models whose published retention :data:`PUBLISHED_RETENTION` holds.
RETENTION_MODELS: tuple[str, ...] = ("oamil",)

#: Published retention (AP at noise level r / AP on clean boxes) under OA-MIL's box noise
#: (model ``oamil``, r = eta), as issue #17 quotes the OA-MIL (ECCV 2022) and SSD-Det
#: (ICCV 2023) tables: row label -> {r: retention}.
PUBLISHED_RETENTION: dict[str, dict[float, float]] = {
    "VOC07 Faster R-CNN AP50": {0.1: 0.99, 0.2: 0.92, 0.3: 0.78, 0.4: 0.55},
    "VOC07 RetinaNet AP50": {0.1: 0.97, 0.2: 0.92, 0.3: 0.79, 0.4: 0.61},
    "COCO Faster R-CNN AP75": {0.2: 0.77, 0.4: 0.08},
}

#: Baseline AP (fraction) below which a relative improvement is not printed as a
#: percentage: +470 % of 0.01 AP is a swing of a near-zero number, not a finding.
REL_FLOOR = 0.01


def records_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per record: the cell's axes, ``collapsed``, the noise IoU and every metric.

    Metrics stay fractions in [0, 1] here.
    """
    rows = []
    for rec in records:
        cell = rec["cell"]
        row: dict[str, Any] = {
            "cell_id": rec.get("cell_id"),
            "detector": cell["detector"],
            "backbone": cell.get("backbone", ""),
            "loss": cell["loss"],
            "alpha": np.nan if cell.get("alpha") is None else float(cell["alpha"]),
            "alpha_warmup": np.nan
            if cell.get("alpha_warmup") is None
            else float(cell["alpha_warmup"]),
            "eta": float(cell["eta"]),
            "seed": int(cell["seed"]),
            "collapsed": bool(rec.get("collapsed", False)),
            "collapse_reasons": "; ".join(rec.get("collapse_reasons") or []),
            "noise_mean_iou": (rec.get("noise") or {}).get("mean_iou", np.nan),
            "noise_mean_image_iou": (rec.get("noise") or {}).get("mean_image_iou", np.nan),
            "wall_time_s": rec.get("wall_time_s", np.nan),
        }
        metrics = rec.get("metrics") or {}
        for m in TABLE_METRICS:
            row[m] = float(metrics.get(m, np.nan))
        rows.append(row)
    columns = [
        "cell_id",
        *GROUP,
        "seed",
        "collapsed",
        "collapse_reasons",
        "noise_mean_iou",
        "noise_mean_image_iou",
        "wall_time_s",
        *TABLE_METRICS,
    ]
    frame = pd.DataFrame(rows, columns=columns)
    return frame


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and std over seeds per (detector, backbone, eta, loss, alpha, alpha_warmup).

    Collapsed cells are excluded from ``<metric>_mean`` / ``<metric>_std`` (``std`` is the
    sample std, ``ddof = 1``; NaN for one seed). ``n`` counts the seeds, ``n_collapsed``
    the collapsed ones, ``seeds`` lists the seeds that were averaged.
    """
    out = []
    for key, group in frame.groupby(GROUP, dropna=False, sort=False):
        ok = group[~group["collapsed"]]
        row: dict[str, Any] = dict(zip(GROUP, key, strict=True))
        row["label"] = loss_label(
            row["loss"], none_if_nan(row["alpha"]), none_if_nan(row["alpha_warmup"])
        )
        row["n"] = len(group)
        row["n_collapsed"] = int(group["collapsed"].sum())
        row["seeds"] = " ".join(str(s) for s in sorted(ok["seed"]))
        row["noise_mean_iou"] = float(group["noise_mean_iou"].mean())
        row["noise_mean_image_iou"] = float(group["noise_mean_image_iou"].mean())
        for m in TABLE_METRICS:
            vals = ok[m].to_numpy(dtype=float)
            row[f"{m}_mean"] = float(vals.mean()) if len(vals) else np.nan
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else np.nan
        out.append(row)
    return pd.DataFrame(out)


def none_if_nan(value: Any) -> float | None:
    """``None`` for ``None`` or NaN (pandas' missing value), else the float."""
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    )


def _loss_row(row: pd.Series) -> dict[str, Any]:
    """A summary row as :func:`~noisybox.study.collapse_flags.baseline_of` reads it."""
    return {
        "detector": row["detector"],
        "backbone": row["backbone"],
        "eta": row["eta"],
        "loss": row["loss"],
        "alpha": none_if_nan(row["alpha"]),
        "alpha_warmup": none_if_nan(row["alpha_warmup"]),
    }


def _baseline_of(row: pd.Series, rows: pd.DataFrame) -> pd.Series | None:
    """The summary row of ``row``'s alpha = 1 baseline among ``rows`` (one rule for all)."""
    candidates = [_loss_row(r) for _, r in rows.iterrows()]
    base = baseline_of(_loss_row(row), candidates)
    if base is None:
        return None
    return rows.iloc[next(i for i, c in enumerate(candidates) if c is base)]


def relative_improvements(frame: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Per alpha variant and its alpha = 1 baseline, per detector and eta: relative
    improvement of every metric (percent of the baseline), and a paired comparison.

    With ``reference`` (a loss row's label, as in the ``label`` column of
    :func:`summarize`), every other loss row is compared with that row instead, alpha
    variant or not; ``baseline_label`` is then the reference. Only seeds where both cells
    exist and neither collapsed are used. Columns:
    ``<metric>_rel`` (100 * (variant - baseline) / baseline, NaN if the baseline is 0 or
    no seed pairs), ``<metric>_diff`` (mean paired difference, fraction),
    ``<metric>_diff_std`` (its std over seeds), ``n_pairs``, ``baseline_label``, and
    ``<metric>_beyond_spread`` (``|diff| > diff_std``, the seed-to-seed spread; NaN with
    fewer than 2 pairs), ``<metric>_ahead`` (seeds on which the variant is higher), and
    from :func:`~noisybox.report.paired.paired_stats`: ``<metric>_ci_low`` /
    ``<metric>_ci_high`` (95 % t interval of the mean difference), ``<metric>_wilcoxon_p``
    and ``<metric>_sign_p`` (exact two-sided p-values). ``<metric>_rel`` is NaN when the
    baseline is below one AP point (:data:`REL_FLOOR`): a percentage of a near-zero value
    says nothing.
    """
    out = []
    for key, pairs in _seed_pairs(frame, reference):
        res: dict[str, Any] = {**key, "n_pairs": len(pairs)}
        for m in TABLE_METRICS:
            v = pairs[f"{m}_v"].to_numpy(dtype=float)
            w = pairs[f"{m}_b"].to_numpy(dtype=float)
            mean_v, mean_b = (float(v.mean()), float(w.mean())) if len(v) else (np.nan, np.nan)
            res[f"{m}_rel"] = (
                100.0 * (mean_v - mean_b) / mean_b if len(v) and mean_b >= REL_FLOOR else np.nan
            )
            res[f"{m}_baseline"] = mean_b
            diff = v - w
            res[f"{m}_diff"] = float(diff.mean()) if len(diff) else np.nan
            res[f"{m}_diff_std"] = float(diff.std(ddof=1)) if len(diff) > 1 else np.nan
            res[f"{m}_beyond_spread"] = (
                bool(abs(res[f"{m}_diff"]) > res[f"{m}_diff_std"]) if len(diff) > 1 else np.nan
            )
            res[f"{m}_ahead"] = int((diff > 0).sum())
            st = paired_stats(diff)
            for k in ("ci_low", "ci_high", "wilcoxon_p", "sign_p"):
                res[f"{m}_{k}"] = st[k]
        out.append(res)
    columns = ["detector", "backbone", "eta", "label", "baseline_label", "n_pairs"]
    for m in TABLE_METRICS:
        columns += [
            f"{m}_rel",
            f"{m}_baseline",
            f"{m}_diff",
            f"{m}_diff_std",
            f"{m}_beyond_spread",
            f"{m}_ahead",
            f"{m}_ci_low",
            f"{m}_ci_high",
            f"{m}_wilcoxon_p",
            f"{m}_sign_p",
        ]
    return pd.DataFrame(out, columns=columns)


def _seed_pairs(
    frame: pd.DataFrame, reference: str | None = None
) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """``(key, pairs)`` per alpha variant with a baseline (with ``reference``: per loss row
    but the reference, where the reference row has cells): ``key`` holds ``detector``,
    ``backbone``, ``eta``, ``label`` and ``baseline_label``; ``pairs`` has ``seed`` and
    ``<metric>_v`` / ``<metric>_b`` for the seeds where both cells exist and neither
    collapsed."""
    summary = summarize(frame)
    for (det, bb, eta), rows in summary.groupby(["detector", "backbone", "eta"], sort=False):
        for _, row in rows.iterrows():
            base = (
                _baseline_of(row, rows)
                if reference is None
                else _reference_of(row, rows, reference)
            )
            if base is None:
                continue
            pairs = _cells(frame, row).merge(_cells(frame, base), on="seed", suffixes=("_v", "_b"))
            pairs = pairs[~pairs["collapsed_v"] & ~pairs["collapsed_b"]]
            key = {
                "detector": det,
                "backbone": bb,
                "eta": eta,
                "label": row["label"],
                "baseline_label": base["label"],
            }
            yield key, pairs


def retention_differences(frame: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Per comparison and noisy eta: the paired difference of retention and of noisy AP.

    Retention is computed seed by seed: a cell's metric at eta over the same loss row's
    clean (eta = 0) cell of the same seed. Each loss row is compared with its alpha = 1
    baseline (with ``reference``: every loss row with that one), as in
    :func:`relative_improvements`, on the seeds where all four cells (both rows, clean and
    noisy) exist and none collapsed; a seed whose clean metric is 0 has no retention and is
    left out of that metric's statistics.

    Args:
        frame: :func:`records_frame`'s frame.
        reference: a loss row's label, or ``None`` for each alpha variant against its
            baseline.

    Returns:
        One row per detector, backbone, noisy eta and compared loss row: ``detector``,
        ``backbone``, ``eta``, ``label``, ``baseline_label``, ``n_pairs`` (seeds with all
        four cells), and per metric ``m`` of :data:`RETENTION_METRICS`: ``<m>_diff`` and
        its statistics (``<m>_ci_low``, ``<m>_ci_high``, ``<m>_wilcoxon_p``,
        ``<m>_sign_p``, ``<m>_ahead``; the noisy metric, row minus baseline, on those
        seeds), ``retention_<m>`` and ``retention_<m>_baseline`` (mean over seeds of the
        per-seed retention of each row) and ``retention_<m>_diff`` with the same
        statistics (fractions; the intervals are 95 % t intervals over seeds, the
        p-values exact two-sided Wilcoxon signed-rank and sign tests of
        :func:`~noisybox.report.paired.paired_stats`). Empty (with these columns)
        without clean cells or noisy etas.
    """
    stats_keys = ("diff", "ci_low", "ci_high", "wilcoxon_p", "sign_p", "ahead")
    columns = ["detector", "backbone", "eta", "label", "baseline_label", "n_pairs"]
    for m in RETENTION_METRICS:
        columns += [f"{m}_{k}" for k in stats_keys]
        columns += [f"retention_{m}", f"retention_{m}_baseline"]
        columns += [f"retention_{m}_{k}" for k in stats_keys]
    pairs_of = {
        (key["detector"], key["backbone"], key["eta"], key["label"], key["baseline_label"]): pairs
        for key, pairs in _seed_pairs(frame, reference)
    }
    out = []
    for (det, bb, eta, label, base), noisy in pairs_of.items():
        clean = pairs_of.get((det, bb, 0.0, label, base))
        if eta == 0 or clean is None:
            continue
        both = noisy.merge(clean, on="seed", suffixes=("", "_clean"))
        res: dict[str, Any] = {
            "detector": det,
            "backbone": bb,
            "eta": eta,
            "label": label,
            "baseline_label": base,
            "n_pairs": len(both),
        }
        for m in RETENTION_METRICS:
            res.update(_paired_columns(m, both[f"{m}_v"] - both[f"{m}_b"]))
            kept = (both[f"{m}_v_clean"] > 0) & (both[f"{m}_b_clean"] > 0)
            ret_v = (both[f"{m}_v"] / both[f"{m}_v_clean"])[kept]
            ret_b = (both[f"{m}_b"] / both[f"{m}_b_clean"])[kept]
            res[f"retention_{m}"] = float(ret_v.mean()) if len(ret_v) else np.nan
            res[f"retention_{m}_baseline"] = float(ret_b.mean()) if len(ret_b) else np.nan
            res.update(_paired_columns(f"retention_{m}", ret_v - ret_b))
        out.append(res)
    return pd.DataFrame(out, columns=columns)


def _paired_columns(prefix: str, diff: pd.Series) -> dict[str, Any]:
    """``<prefix>_diff``, ``_ci_low``, ``_ci_high``, ``_wilcoxon_p``, ``_sign_p`` and
    ``_ahead`` of the paired differences ``diff`` (see :func:`paired_stats`)."""
    st = paired_stats(diff.to_numpy(dtype=float))
    return {
        f"{prefix}_diff": st["mean"],
        **{f"{prefix}_{k}": st[k] for k in ("ci_low", "ci_high", "wilcoxon_p", "sign_p")},
        f"{prefix}_ahead": st["ahead"],
    }


def _reference_of(row: pd.Series, rows: pd.DataFrame, reference: str) -> pd.Series | None:
    """The summary row labelled ``reference`` among ``rows``, unless ``row`` is it."""
    match = rows[rows["label"] == reference]
    return None if row["label"] == reference or match.empty else match.iloc[0]


def paired_differences(frame: pd.DataFrame, reference: str | None = None) -> pd.DataFrame:
    """Per alpha variant, eta and seed: ``<metric>`` = variant minus its baseline (fraction).

    With ``reference``, per loss row other than the reference: that row minus the
    reference (see :func:`relative_improvements`). Columns ``detector, backbone, eta,
    label, baseline_label, seed`` and one per ``TABLE_METRICS``; collapsed cells have no
    row (as in :func:`relative_improvements`).
    """
    out = []
    for key, pairs in _seed_pairs(frame, reference):
        for _, pair in pairs.iterrows():
            res: dict[str, Any] = {**key, "seed": int(pair["seed"])}
            res.update({m: float(pair[f"{m}_v"] - pair[f"{m}_b"]) for m in TABLE_METRICS})
            out.append(res)
    columns = ["detector", "backbone", "eta", "label", "baseline_label", "seed", *TABLE_METRICS]
    return pd.DataFrame(out, columns=columns)


def _cells(frame: pd.DataFrame, row: pd.Series) -> pd.DataFrame:
    mask = pd.Series(True, index=frame.index)
    for k in GROUP:
        value = row[k]
        mask &= (
            frame[k].isna()
            if isinstance(value, float) and math.isnan(value)
            else frame[k].eq(value)
        )
    return frame.loc[mask, ["seed", "collapsed", *TABLE_METRICS]]


def robustness_frame(summary: pd.DataFrame, *, retention: Sequence[str] = ()) -> pd.DataFrame:
    """mPC / rPC per detector and loss, for mAP and mAP75:95 (fractions).

    ``clean_<m>`` is the eta = 0 mean, ``mpc_<m>`` the mean over eta > 0 levels of the seed
    means, ``rpc_<m> = mpc / clean``. A level whose seeds all collapsed makes the row's
    ``collapsed`` true and its mPC NaN. For each metric ``m`` of ``retention``,
    ``retention_<m>@<eta>`` is the seed-mean ``m`` at each noisy eta over the clean one (the
    report asks for AP50 and AP75 under a noise model with published retention, ``oamil``,
    and for mAP in its comparison with a reference loss).
    """
    out = []
    keys = ["detector", "backbone", "loss", "alpha", "alpha_warmup"]
    for key, rows in summary.groupby(keys, dropna=False, sort=False):
        res: dict[str, Any] = dict(zip(keys, key, strict=True))
        res["label"] = rows["label"].iloc[0]
        noisy = rows[rows["eta"] > 0]
        clean = rows[rows["eta"] == 0]
        res["etas"] = " ".join(f"{e:g}" for e in sorted(noisy["eta"]))
        res["collapsed"] = bool((rows["n"] == rows["n_collapsed"]).any())
        for m in ("map", "map_75_95"):
            c = float(clean[f"{m}_mean"].iloc[0]) if len(clean) else np.nan
            vals = noisy[f"{m}_mean"].to_numpy(dtype=float)
            mpc = float(vals.mean()) if len(vals) and not np.isnan(vals).any() else np.nan
            res[f"clean_{m}"] = c
            res[f"mpc_{m}"] = mpc
            res[f"rpc_{m}"] = mpc / c if c > 0 and not math.isnan(mpc) else np.nan
        for m in retention:
            c = float(clean[f"{m}_mean"].iloc[0]) if len(clean) else np.nan
            for _, level in noisy.sort_values("eta").iterrows():
                v = float(level[f"{m}_mean"])
                res[f"retention_{m}@{level['eta']:g}"] = v / c if c > 0 else np.nan
        out.append(res)
    return pd.DataFrame(out)


def reference_summary(summary: pd.DataFrame, paired: pd.DataFrame) -> pd.DataFrame:
    """The compact per-loss table of a comparison with a reference loss (fractions).

    Args:
        summary: :func:`summarize`'s frame.
        paired: ``relative_improvements(frame, reference)``.

    Returns:
        One row per detector and loss row (the reference included), in ``summary``'s
        order: ``detector``, ``backbone``, ``label``, and per eta ``map@<eta>`` /
        ``map_std@<eta>`` (seed mean and std, collapsed cells left out), ``n@<eta>`` and
        ``n_collapsed@<eta>`` (seeds, collapsed seeds), ``retention_map@<eta>`` (eta > 0,
        from :func:`robustness_frame`), and the paired mAP difference to the reference:
        ``map_diff@<eta>``, ``map_ci_low@<eta>``, ``map_ci_high@<eta>`` and
        ``n_pairs@<eta>`` (0 for the reference row and where no seed pairs).
    """
    rob = robustness_frame(summary, retention=("map",))
    etas = sorted(summary["eta"].unique())
    out = []
    for _, r in rob.iterrows():
        res: dict[str, Any] = {k: r[k] for k in ("detector", "backbone", "label")}
        rows = summary[
            (summary["detector"] == r["detector"])
            & (summary["backbone"] == r["backbone"])
            & (summary["label"] == r["label"])
        ]
        for eta in etas:
            level = rows[rows["eta"] == eta]
            pair = paired[
                (paired["detector"] == r["detector"])
                & (paired["backbone"] == r["backbone"])
                & (paired["eta"] == eta)
                & (paired["label"] == r["label"])
            ]
            found = not level.empty
            res[f"map@{eta:g}"] = float(level["map_mean"].iloc[0]) if found else np.nan
            res[f"map_std@{eta:g}"] = float(level["map_std"].iloc[0]) if found else np.nan
            res[f"n@{eta:g}"] = int(level["n"].iloc[0]) if found else 0
            res[f"n_collapsed@{eta:g}"] = int(level["n_collapsed"].iloc[0]) if found else 0
            if eta > 0:
                res[f"retention_map@{eta:g}"] = r.get(f"retention_map@{eta:g}", np.nan)
            for k in ("map_diff", "map_ci_low", "map_ci_high"):
                res[f"{k}@{eta:g}"] = float(pair[k].iloc[0]) if len(pair) else np.nan
            res[f"n_pairs@{eta:g}"] = int(pair["n_pairs"].iloc[0]) if len(pair) else 0
        out.append(res)
    return pd.DataFrame(out)
