"""The report's tables as text: Table 3, robustness and retention, learning curves, the
paired verdicts, the paired differences to a reference loss and the paired differences of
retention.

Pure rendering of the frames of :mod:`noisybox.report.summary` into strings, in one
:class:`Style` per output (Markdown, LaTeX, CSV); :mod:`noisybox.report.writer` puts
them together and writes them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from noisybox.errors import NoisyboxError
from noisybox.report.summary import (
    COLUMN_TITLES,
    PUBLISHED_RETENTION,
    REL_FLOOR,
    TABLE_METRICS,
    none_if_nan,
    relative_improvements,
    summarize,
)
from noisybox.study.collapse_flags import base_variant
from noisybox.study.spec import LossSpec

__all__ = [
    "CSV",
    "LossOrder",
    "MD",
    "TEX",
    "VERDICT_METRICS",
    "Style",
    "condition_overview",
    "curve_section",
    "fmt_ci",
    "fmt_p",
    "fmt_value",
    "markdown_table",
    "min_pairs",
    "paired_verdicts",
    "retention_section",
    "robustness_display",
    "sort_by_loss_order",
    "table3_frames",
]


def _order_key(row: pd.Series, order: dict[str, int]) -> tuple[Any, ...]:
    base = base_variant(row["loss"])
    alpha = none_if_nan(row["alpha"])
    return (
        order.get(base, len(order)),
        base,
        0 if alpha in (None, 1.0) else 1,
        alpha or 0.0,
        row["loss"],
        none_if_nan(row["alpha_warmup"]) or -1.0,
    )


@dataclasses.dataclass(frozen=True)
class Style:
    pm: str
    pct: str
    escape: Callable[[str], str]


MD = Style(" ± ", "%", lambda s: s)
TEX = Style(
    r" $\pm$ ", r"\%", lambda s: s.replace("_", r"\_").replace("%", r"\%").replace("&", r"\&")
)
CSV = Style(" ± ", "%", lambda s: s)


def fmt_value(mean: float, std: float, style: Style) -> str:
    if math.isnan(mean):
        return "-"
    text = f"{100 * mean:.2f}"
    if not math.isnan(std):
        text += f"{style.pm}{100 * std:.2f}"
    return text


def _fmt_rel(value: float, style: Style, baseline: float = math.inf) -> str:
    if not math.isnan(baseline) and baseline < REL_FLOOR:
        return "n/a (below 1 point)"
    return "n/a" if math.isnan(value) else f"{value:.2f}{style.pct}"


def fmt_p(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def fmt_ci(low: float, high: float) -> str:
    """A 95 % interval of a paired difference (fractions) in AP points."""
    return f"[{100 * low:+.2f}, {100 * high:+.2f}]"


class LossOrder(list[str]):
    """The config's loss names (the report's row order), with the :class:`LossSpec` of each
    loss row label the records hold: rows are sorted and styled by the loss their records
    name, never by parsing their label.

    Args:
        names: the config's loss names, in order.
        specs: the loss rows, keyed by their :attr:`LossSpec.row_label`.
    """

    def __init__(self, names: Iterable[str] = (), specs: Mapping[str, LossSpec] | None = None):
        super().__init__(names)
        self.specs: dict[str, LossSpec] = dict(specs or {})

    @classmethod
    def of(cls, names: Iterable[str], records: Iterable[Mapping[str, Any]]) -> LossOrder:
        """The order of ``names`` with the loss rows of ``records`` (their ``cell``).

        >>> order = LossOrder.of(["iou"], [{"cell": {"loss": "alpha-iou", "alpha": 3.0}}])
        >>> list(order), order.spec("alpha-iou@3").alpha
        (['iou'], 3.0)
        """
        specs = (LossSpec.from_cell(r["cell"]) for r in records)
        known = names.specs if isinstance(names, LossOrder) else {}
        return cls(names, {**known, **{s.row_label: s for s in specs}})

    @classmethod
    def of_specs(cls, names: Iterable[str], specs: Iterable[LossSpec]) -> LossOrder:
        """The order of ``names`` with the loss rows ``specs``."""
        return cls(names, {s.row_label: s for s in specs})

    def spec(self, label: str) -> LossSpec:
        """The loss of the row ``label``.

        Raises:
            NoisyboxError: ``label`` is no loss row of the records.
        """
        try:
            return self.specs[label]
        except KeyError:
            raise NoisyboxError(
                f"Expected a loss row of the records ({', '.join(self.specs)}) but got {label!r}"
            ) from None


def loss_rows(loss_order: Sequence[str]) -> LossOrder:
    """``loss_order`` as the :class:`LossOrder` it must be where rows are sorted or styled.

    Raises:
        TypeError: a plain sequence of names (it knows no loss row's spec).
    """
    if not isinstance(loss_order, LossOrder):
        raise TypeError(
            f"Expected a LossOrder (LossOrder.of(names, records)) but got {loss_order!r}"
        )
    return loss_order


def order_labels(labels: Sequence[str], loss_order: Sequence[str]) -> list[str]:
    """Loss row labels in the report's row order (see :func:`_label_order`).

    >>> rows = [LossSpec("alpha-iou", 3.0), LossSpec("giou", 1.0), LossSpec("iou", 1.0)]
    >>> order = LossOrder.of_specs(["iou", "giou", "alpha-iou"], rows)
    >>> order_labels(["alpha-iou@3", "giou", "iou"], order)
    ['iou', 'alpha-iou@3', 'giou']
    """
    return sorted(dict.fromkeys(labels), key=_label_order(loss_order))


def _label_order(loss_order: Sequence[str]) -> Callable[[str], tuple[int, str, int, str]]:
    """A sort key on loss labels: the config's order of IoU variants, each plain name
    before its alpha variants (as Table 3 orders its rows)."""
    order = {b: i for i, b in enumerate(dict.fromkeys(base_variant(n) for n in loss_order))}
    rows = loss_rows(loss_order)

    def key(label: str) -> tuple[int, str, int, str]:
        spec = rows.spec(label)
        base = base_variant(spec.name)
        return (order.get(base, len(order)), base, int(spec.shows_alpha), label)

    return key


def sort_by_loss_order(
    table: pd.DataFrame, loss_order: Sequence[str], by: Sequence[str] = ("detector", "backbone")
) -> pd.DataFrame:
    """``table`` sorted by the columns ``by``, then its ``label`` in the report's row order
    (stable: rows of one label keep their order).

    >>> t = pd.DataFrame({"detector": "fcos", "label": ["giou", "iou", "alpha-iou@3"]})
    >>> rows = [LossSpec("giou", 1.0), LossSpec("iou", 1.0), LossSpec("alpha-iou", 3.0)]
    >>> order = LossOrder.of_specs(["iou", "giou"], rows)
    >>> sort_by_loss_order(t, order, by=["detector"])["label"].tolist()
    ['iou', 'alpha-iou@3', 'giou']
    """
    key = _label_order(loss_order)
    keys = [key(label) for label in table["label"]]
    return (
        table.assign(_k=keys)
        .sort_values([*by, "_k"], kind="stable")
        .drop(columns="_k")
        .reset_index(drop=True)
    )


def table3_frames(
    frame: pd.DataFrame, style: Style, loss_order: Sequence[str] = ()
) -> list[tuple[str, pd.DataFrame]]:
    """Display tables (strings) per detector and eta, in Table 3's layout."""
    summary = summarize(frame)
    rel = relative_improvements(frame)
    order = {b: i for i, b in enumerate(dict.fromkeys(base_variant(n) for n in loss_order))}
    out = []
    for (det, bb, eta), rows in summary.groupby(["detector", "backbone", "eta"], sort=True):
        rows = rows.assign(_k=[_order_key(r, order) for _, r in rows.iterrows()]).sort_values("_k")
        lines = []
        for _, row in rows.iterrows():
            label = style.escape(row["label"])
            if row["n_collapsed"] == row["n"]:
                cells = ["collapsed"] * len(TABLE_METRICS)
                label += f" [collapsed: {row['n_collapsed']}/{row['n']} seeds]"
            else:
                cells = [fmt_value(row[f"{m}_mean"], row[f"{m}_std"], style) for m in TABLE_METRICS]
                if row["n_collapsed"]:
                    label += f" [{row['n_collapsed']}/{row['n']} seeds collapsed, excluded]"
            lines.append([label, str(row["n"] - row["n_collapsed"]), *cells])
            match = rel[
                (rel["detector"] == det)
                & (rel["backbone"] == bb)
                & (rel["eta"] == eta)
                & (rel["label"] == row["label"])
            ]
            if len(match):
                r = match.iloc[0]
                head = f"rela. improv. (vs {style.escape(r['baseline_label'])})"
                if r["n_pairs"] == 0:
                    rcells = ["n/a (collapsed)"] * len(TABLE_METRICS)
                else:
                    rcells = [
                        _fmt_rel(r[f"{m}_rel"], style, r[f"{m}_baseline"]) for m in TABLE_METRICS
                    ]
                lines.append([head, str(r["n_pairs"]), *rcells])
                if r["n_pairs"] >= 2:
                    pcells = [
                        f"{100 * r[f'{m}_diff']:+.2f}{style.pm}{100 * r[f'{m}_diff_std']:.2f}"
                        + ("*" if r[f"{m}_beyond_spread"] else "")
                        for m in TABLE_METRICS
                    ]
                    lines.append(["paired diff. (points)", str(r["n_pairs"]), *pcells])
                    acells = [f"{r[f'{m}_ahead']}/{r['n_pairs']}" for m in TABLE_METRICS]
                    lines.append(["seeds ahead", str(r["n_pairs"]), *acells])
                    ccells = [fmt_ci(r[f"{m}_ci_low"], r[f"{m}_ci_high"]) for m in TABLE_METRICS]
                    lines.append([style.escape("95% CI (points)"), str(r["n_pairs"]), *ccells])
                    tcells = [
                        f"{fmt_p(r[f'{m}_wilcoxon_p'])} / {fmt_p(r[f'{m}_sign_p'])}"
                        for m in TABLE_METRICS
                    ]
                    lines.append(["p (Wilcoxon / sign)", str(r["n_pairs"]), *tcells])
        table = pd.DataFrame(
            lines, columns=["Loss", "seeds", *(COLUMN_TITLES[m] for m in TABLE_METRICS)]
        )
        per_image, per_box = rows["noise_mean_image_iou"].mean(), rows["noise_mean_iou"].mean()
        noise = (
            "clean boxes"
            if eta == 0
            else f"noisy boxes, mean IoU with the clean ones {per_image:.3f} per image as "
            f"the paper counts, {per_box:.3f} per box"
        )
        title = f"{det} ({bb}), eta = {eta:g} ({noise})"
        out.append((title, table))
    return out


VERDICT_METRICS = ("map", "map_75_95", "ap50")


def paired_verdicts(rel: pd.DataFrame, metrics: Sequence[str] = VERDICT_METRICS) -> list[str]:
    """One plain-language line per alpha variant, eta and metric of ``relative_improvements``.

    A difference counts as "higher" or "lower" when the 95 % confidence interval of the
    mean paired difference (t over seeds) excludes 0; otherwise the two losses "cannot be
    told apart" by this run. The exact Wilcoxon signed-rank and sign-test p-values and the
    seeds-ahead tally are given beside it (with n seeds neither test can go below
    ``2 / 2**n``, see :func:`~noisybox.report.paired.min_rank_p`).
    """
    lines = []
    for _, r in rel.sort_values(["detector", "backbone", "eta"], kind="stable").iterrows():
        head = f"eta {r['eta']:g}, {r['detector']} ({r['backbone']}): {r['label']} vs {r['baseline_label']}"
        n = int(r["n_pairs"])
        if n < 2:
            lines.append(f"{head}: {n} seed pair(s), no spread to compare with")
            continue
        parts = []
        for m in metrics:
            diff = 100 * r[f"{m}_diff"]
            low, high = 100 * r[f"{m}_ci_low"], 100 * r[f"{m}_ci_high"]
            if low > 0 or high < 0:
                verdict = ("higher" if diff > 0 else "lower") + ", the 95% CI excludes 0"
            else:
                verdict = "the 95% CI includes 0: cannot be told apart"
            parts.append(
                f"{COLUMN_TITLES[m]} {diff:+.2f} points (95% CI {low:+.2f} to {high:+.2f}; "
                f"Wilcoxon p {fmt_p(r[f'{m}_wilcoxon_p'])}, sign p {fmt_p(r[f'{m}_sign_p'])}; "
                f"{r[f'{m}_ahead']}/{n} seeds ahead; {verdict})"
            )
        lines.append(f"{head}: " + "; ".join(parts))
    return lines


def min_pairs(rel: pd.DataFrame) -> int:
    return int(rel["n_pairs"].min()) if len(rel) else 0


def markdown_table(table: pd.DataFrame) -> str:
    head = "| " + " | ".join(table.columns) + " |"
    sep = "|" + "|".join("---" if i == 0 else "---:" for i in range(len(table.columns))) + "|"
    body = ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def robustness_display(rob: pd.DataFrame, style: Style) -> pd.DataFrame:
    lines = []
    for _, r in rob.iterrows():
        label = style.escape(r["label"])
        if r["collapsed"]:
            label += " [collapsed at some eta]"
        row = [f"{r['detector']} ({r['backbone']})", label, r["etas"] or "-"]
        for m in ("map", "map_75_95"):
            for k in ("clean", "mpc"):
                v = r[f"{k}_{m}"]
                row.append(
                    "collapsed"
                    if (k == "mpc" and r["collapsed"] and math.isnan(v))
                    else ("-" if math.isnan(v) else f"{100 * v:.2f}")
                )
            v = r[f"rpc_{m}"]
            row.append("-" if math.isnan(v) else f"{100 * v:.1f}{style.pct}")
        lines.append(row)
    cols = [
        "Detector",
        "Loss",
        "noisy etas",
        "mAP clean",
        "mAP mPC",
        "mAP rPC",
        "mAP75:95 clean",
        "mAP75:95 mPC",
        "mAP75:95 rPC",
    ]
    return pd.DataFrame(lines, columns=cols)


def retention_section(rob: pd.DataFrame) -> list[str]:
    """The retention sub-table: AP50 and AP75 at each eta over eta = 0, per detector and
    loss, and the published rows at the same levels (nothing unless ``rob`` has the
    ``retention_ap50@<eta>`` columns of ``robustness_frame(..., retention=("ap50", "ap75"))``)."""
    etas = sorted({float(c.split("@")[1]) for c in rob.columns if c.startswith("retention_ap50@")})
    if not etas:
        return []
    cols = ["Detector", "Loss"] + [f"{m} @{e:g}" for e in etas for m in ("AP50", "AP75")]
    rows = []
    for _, r in rob.iterrows():
        row = [f"{r['detector']} ({r['backbone']})", MD.escape(r["label"])]
        for e in etas:
            for m in ("ap50", "ap75"):
                v = r.get(f"retention_{m}@{e:g}", float("nan"))
                row.append("-" if v is None or math.isnan(v) else f"{v:.2f}")
        rows.append(row)
    for name, values in PUBLISHED_RETENTION.items():
        metric = "AP75" if name.endswith("AP75") else "AP50"
        row = ["published (OA-MIL noise)", name]
        for e in etas:
            for m in ("AP50", "AP75"):
                v = values.get(round(e, 6)) if m == metric else None
                row.append("-" if v is None else f"{v:.2f}")
        rows.append(row)
    return [
        "",
        "### Retention per noise level",
        "",
        "AP at eta over AP at eta = 0 (seed means). The published rows are OA-MIL's noise at "
        "r = eta (model `oamil`) on VOC2007 and COCO with full-size detectors (the OA-MIL and "
        "SSD-Det tables): compare the shape, AP75 falling far faster than AP50, not the "
        "absolute numbers.",
        "",
        markdown_table(pd.DataFrame(rows, columns=cols)),
    ]


def condition_overview(summary: pd.DataFrame, loss_order: Sequence[str]) -> list[str]:
    """Markdown of mAP per loss and noise condition (rows) at each eta (columns), one table
    per detector: the layout of UNA's and DN-TOD's tables (one row per kind of noise).

    Args:
        summary: :func:`~noisybox.report.summary.summarize`'s frames of each condition,
            concatenated with a ``condition`` column.
        loss_order: the config's loss names, for the row order.
    """
    key = _label_order(loss_order)
    etas = sorted(summary["eta"].unique())
    parts = []
    for (det, bb), rows in summary.groupby(["detector", "backbone"], sort=True):
        conditions = list(dict.fromkeys(rows["condition"]))
        lines = []
        for label in sorted(dict.fromkeys(rows["label"]), key=key):
            for condition in conditions:
                mine = rows[(rows["label"] == label) & (rows["condition"] == condition)]
                cells = []
                for eta in etas:
                    level = mine[mine["eta"] == eta]
                    r = level.iloc[0] if len(level) else None
                    if r is None:
                        cells.append("-")
                    elif r["n"] == r["n_collapsed"]:
                        cells.append("collapsed")
                    else:
                        cells.append(fmt_value(r["map_mean"], r["map_std"], MD))
                lines.append([MD.escape(label), condition, *cells])
        cols = ["Loss", "Noise", *(f"mAP @{e:g}" for e in etas)]
        parts += [
            "",
            f"### {det} ({bb}): mAP per noise condition",
            "",
            markdown_table(pd.DataFrame(lines, columns=cols)),
        ]
    return parts


def _fmt_gap(cell_id: str, gap: float | None) -> str:
    """A cell id in backticks and its convergence gap in AP points, when known.

    >>> _fmt_gap("fcos__iou__eta0__s0", 0.0059), _fmt_gap("c", None)
    ('`fcos__iou__eta0__s0` (+0.59)', '`c`')
    """
    return f"`{cell_id}`" + ("" if gap is None else f" ({100 * gap:+.2f})")


def curve_section(
    table: pd.DataFrame, status: dict[str, Any], loss_order: Sequence[str] = ()
) -> list[str]:
    """Markdown of the learning-curve table and the convergence check."""
    lines = []
    by = ["detector", "backbone", "eta"]
    for _, r in sort_by_loss_order(table, loss_order, by).iterrows():
        row = [f"{r['eta']:g}", r["label"], str(r["n"]), str(r["points"])]
        for m in ("map", "map_75_95"):
            row += [
                fmt_value(r[f"{m}_final_mean"], r[f"{m}_final_std"], MD),
                fmt_value(r[f"{m}_peak_mean"], r[f"{m}_peak_std"], MD),
                f"{r[f'{m}_peak_epoch']:g}",
                fmt_value(r[f"{m}_drop_mean"], r[f"{m}_drop_std"], MD),
            ]
        lines.append(row)
    cols = ["eta", "Loss", "seeds", "evals"]
    for m in ("mAP", "mAP75:95"):
        cols += [f"{m} final", f"{m} peak", "peak epoch", "drop"]
    parts = [
        "",
        "## Learning curves",
        "",
        "Clean-test AP (%) during training, mean ± std over seeds. `final` is the value "
        "after the last epoch, the pre-registered result. `peak` (the best value on the "
        "curve, median epoch over seeds) and `drop` (peak minus final, per seed) are read off "
        "the test set: they show the dynamics (learning the shared signal, then fitting the "
        "noise) and are not a result to rank losses by.",
        "",
        markdown_table(pd.DataFrame(lines, columns=cols)),
    ]
    checked = status["checked"]
    if checked or status["unknown"]:
        parts += ["", "## Convergence of clean training", ""]
    if checked:
        parts.append(
            f"{status['converged']} of {checked} clean-box (eta = 0) cells converged: their "
            "mean mAP over the last quarter of the epochs is within half a point of the final "
            "value."
            + (
                " Not converged (final minus last-quarter mean, points): "
                + ", ".join(_fmt_gap(c, status["gaps"].get(c)) for c in status["failed"])
                + "."
                if status["failed"]
                else ""
            )
        )
    if status["unknown"]:
        parts.append(
            f"{status['unknown']} clean cell(s) have too few evaluations in their last quarter "
            "to check (set `eval_every` in the schedule)."
        )
    return parts
