"""The published studies' READMEs, kept to their records.

Each study under ``benchmarks/results/<study>/`` has a ``README.md`` (its narrative) next to
its ``PROTOCOL.md``, ``records/`` and ``report/``. Its tables are not typed by hand: each sits
between two comments,

    <!-- generated: KIND key=value ... -->
    ...
    <!-- end generated -->

and is rendered here from the study's records (with the report's own code:
:mod:`noisybox.report.summary`, :mod:`noisybox.report.paired`). The figures its prose
quotes outside those tables must be figures the records give: every decimal number of the
prose (outside code, links and comments), and every paired difference quoted with its
interval (``+0.84 [+0.05, +1.63]``, as a whole, sign included), must appear, digit for
digit, in the README's
generated tables or in the study's regenerated ``report/report.md`` (or in those of a study
it links to, ``../<study>/README.md``), or be listed in the README's ``<!-- figures not from
the records: ... -->`` comment (a paper's value, a setting, a calibration run). The main README's findings table (between ``<!-- study findings -->`` and
``<!-- /study findings -->``) is held to the studies it links to in the same way.

Usage::

    python benchmarks/study_readme.py            # check: exit 1 and list what differs
    python benchmarks/study_readme.py --write    # regenerate the tables in place

Kinds (``vs=LABEL`` compares with that loss row; without it each alpha variant is compared
with its alpha = 1 baseline; ``labels=a;b`` keeps those compared rows, ``;``-separated, and
``_`` stands for a space in every value):

* ``pairs means=map,... metrics=map,... rel=map,...``: per compared row and eta, the seed
  means (mean ± std, AP %) of ``means`` for the row and its baseline, the paired difference
  of ``metrics`` (points, [95 % t CI], seeds ahead; **bold** where the CI excludes 0) and
  the relative improvement (``rel``, % of the baseline; ``n/a`` below one AP point).
* ``retention``: per noisy eta and compared row, the paired differences of noisy mAP and
  of retention (mAP, mAP75:95) and the reading the intervals support.
* ``by-loss vs=LABEL``: one row per loss, mAP at each eta, the paired mAP difference at
  each eta, the retention at each noisy eta and its paired difference.
* ``retention-levels metrics=ap50,ap75``: per loss row and metric, the retention at each
  noisy eta (ratio of seed means) and its range over seeds (per-seed ratios), with the
  published rows of :data:`~noisybox.report.summary.PUBLISHED_RETENTION`.
* ``curves``: per noisy eta and loss row, how many cells peaked before their final
  evaluation and fell over the last evaluation interval, the mean and the largest
  single-cell drop from peak to final (mAP and mAP75:95).
* ``run``: cells, collapsed cells, wall time per cell (median, range), cell-hours, and the
  share of evaluation in the time of the epochs and evaluations.
* ``pointwise vs=LABEL pairs=N tests=ID:METRIC:LOSS:ETAS:SIGN/...``: findings of other
  studies tested on this one as a protocol pre-registered them: per test and eta the paired
  difference and "holds" (interval excludes 0 in the claimed direction), "holds in sign
  only" or "does not hold" (opposite sign); "pending" until all N pairs are in.
* ``rerun other=STUDY``: cells of this study whose cell id is also in ``STUDY``, how far
  their mAP moved, and the paired differences on those seeds in both studies.
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from noisybox.report.paired_tables import retention_reading
from noisybox.report.summary import (
    COLUMN_TITLES,
    PUBLISHED_RETENTION,
    RETENTION_METRICS,
    records_frame,
    relative_improvements,
    retention_differences,
    summarize,
)
from noisybox.report.tables import LossOrder, markdown_table, order_labels
from noisybox.study.collapse_flags import apply_collapse_flags
from noisybox.study.results import ResultsFolder
from noisybox.study.spec import CollapseConfig, LossSpec

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
BLOCK = re.compile(
    r"(<!-- generated: (?P<spec>[^\n]*?) -->\n)(?P<body>.*?)(<!-- end generated -->)", re.S
)
START = re.compile(r"<!-- generated: ")
FINDINGS = re.compile(r"<!-- study findings -->\n(?P<body>.*?)<!-- /study findings -->", re.S)
EXTERNAL = re.compile(r"<!-- figures not from the records: (?P<figures>[^>]*?) -->")
NUMBER = re.compile(r"(?<![\w.§])\d+\.\d+(?![\w]|\.\d)")
SIGNED = r"[+-]?\d+\.\d+"
INTERVAL = re.compile(rf"({SIGNED}) \[({SIGNED}), ({SIGNED})\]")
VERDICT = re.compile(rf"({SIGNED}) points \(95% CI ({SIGNED}) to ({SIGNED})")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.S)
COMMENT = re.compile(r"<!--.*?-->", re.S)
LINK_TARGET = re.compile(r"\]\([^)]*\)")
LINKED = re.compile(r"\]\(\.\./([\w-]+)/README\.md\)")


class Study:
    """A published study's records, read as its report reads them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        folder = ResultsFolder(root)
        stored = folder.read_stored()["config"]
        self.records = apply_collapse_flags(
            folder.load_records(), CollapseConfig(**stored.get("collapse", {}))
        )
        names = [spec["name"] for spec in stored.get("losses", [])]
        self.loss_order = LossOrder.of(names, self.records)
        self.frame = records_frame(self.records)
        # a study that has just started has no records to summarise
        self.summary = summarize(self.frame) if self.records else pd.DataFrame()
        self.labels = {r["cell_id"]: _label_of(r) for r in self.records}

    def ordered(self, labels: Any) -> list[str]:
        return order_labels(list(labels), self.loss_order)

    def noise_iou(self, eta: float) -> str:
        rows = self.summary[self.summary["eta"] == eta]
        return f"{eta:g}" if eta == 0 else f"{eta:g} ({rows['noise_mean_image_iou'].mean():.3f})"


def _label_of(rec: dict[str, Any]) -> str:
    return LossSpec.from_cell(rec["cell"]).row_label


def _mean_std(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{100 * mean:.2f}" + ("" if math.isnan(std) else f" ± {100 * std:.2f}")


def _diff(diff: float, low: float, high: float, ahead: int, n: int, scale: float = 100) -> str:
    """``+1.23 [+0.45, +2.01] 5/6``, bold where the interval excludes 0."""
    if n == 0 or math.isnan(diff):
        return "-"
    digits = 2 if scale == 100 else 3
    text = f"{scale * diff:+.{digits}f}"
    if not math.isnan(low):
        text += f" [{scale * low:+.{digits}f}, {scale * high:+.{digits}f}]"
    text += f" {ahead}/{n}"
    return f"**{text}**" if low > 0 or high < 0 else text


def _args(spec: str) -> tuple[str, dict[str, str]]:
    kind, *pairs = spec.split()
    args = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        args[key] = value.replace("_", " ")
    return kind, args


def _list(args: dict[str, str], key: str, default: str = "") -> list[str]:
    value = args.get(key, default)
    return [v for v in value.replace(" ", "_").split(",") if v] if value else []


def _compared(study: Study, args: dict[str, str], table: pd.DataFrame) -> pd.DataFrame:
    keep = args.get("labels")
    if keep:
        table = table[table["label"].isin(keep.split(";"))]
    return table


def pairs_table(study: Study, args: dict[str, str]) -> pd.DataFrame:
    rel = _compared(study, args, relative_improvements(study.frame, args.get("vs")))
    means, metrics, rels = _list(args, "means"), _list(args, "metrics", "map"), _list(args, "rel")
    rows = []
    for label in study.ordered(rel["label"]):
        for _, r in rel[rel["label"] == label].sort_values("eta").iterrows():
            row = [study.noise_iou(r["eta"]), r["label"], r["baseline_label"]]
            for m in means:
                for lab in (r["label"], r["baseline_label"]):
                    s = study.summary[
                        (study.summary["label"] == lab) & (study.summary["eta"] == r["eta"])
                    ].iloc[0]
                    row.append(_mean_std(s[f"{m}_mean"], s[f"{m}_std"]))
            for m in metrics:
                n = int(r["n_pairs"])
                row.append(
                    _diff(r[f"{m}_diff"], r[f"{m}_ci_low"], r[f"{m}_ci_high"], r[f"{m}_ahead"], n)
                )
            for m in rels:
                v = r[f"{m}_rel"]
                row.append("n/a (below 1 point)" if math.isnan(v) else f"{v:+.2f} %")
            rows.append(row)
    cols = ["eta (noisy/clean IoU per image)", "Loss", "vs"]
    for m in means:
        cols += [COLUMN_TITLES[m], f"{COLUMN_TITLES[m]} (vs)"]
    cols += [f"{COLUMN_TITLES[m]} diff." for m in metrics]
    cols += [f"{COLUMN_TITLES[m]} rel. improv." for m in rels]
    return pd.DataFrame(rows, columns=cols)


def retention_table(study: Study, args: dict[str, str]) -> pd.DataFrame:
    ret = _compared(study, args, retention_differences(study.frame, args.get("vs")))
    rows = []
    for label in study.ordered(ret["label"]):
        for _, r in ret[ret["label"] == label].sort_values("eta").iterrows():
            n = int(r["n_pairs"])
            row = [f"{r['eta']:g}", r["label"], r["baseline_label"]]
            row.append(_diff(r["map_diff"], r["map_ci_low"], r["map_ci_high"], r["map_ahead"], n))
            for m in RETENTION_METRICS:
                p = f"retention_{m}"
                row.append(f"{r[p]:.3f} / {r[p + '_baseline']:.3f}")
                row.append(
                    _diff(
                        r[f"{p}_diff"], r[f"{p}_ci_low"], r[f"{p}_ci_high"], r[f"{p}_ahead"], n, 1
                    )
                )
            row.append(retention_reading(r))
            rows.append(row)
    cols = ["eta", "Loss", "vs", "mAP diff."]
    for m in RETENTION_METRICS:
        cols += [f"{COLUMN_TITLES[m]} retention (loss / vs)", f"{COLUMN_TITLES[m]} retention diff."]
    return pd.DataFrame(rows, columns=[*cols, "reading"])


def by_loss_table(study: Study, args: dict[str, str]) -> pd.DataFrame:
    vs = args["vs"]
    rel = relative_improvements(study.frame, vs)
    ret = retention_differences(study.frame, vs)
    etas = sorted(study.summary["eta"].unique())
    rows = []
    for label in study.ordered(study.summary["label"]):
        row = [label]
        for eta in etas:
            s = study.summary[(study.summary["label"] == label) & (study.summary["eta"] == eta)]
            row.append(_mean_std(s["map_mean"].iloc[0], s["map_std"].iloc[0]) if len(s) else "-")
        for eta in etas:
            r = rel[(rel["label"] == label) & (rel["eta"] == eta)]
            if label == vs:
                row.append("reference")
            elif r.empty:
                row.append("-")
            else:
                r0 = r.iloc[0]
                row.append(
                    _diff(
                        r0["map_diff"],
                        r0["map_ci_low"],
                        r0["map_ci_high"],
                        r0["map_ahead"],
                        int(r0["n_pairs"]),
                    )
                )
        for eta in etas[1:]:
            r = ret[(ret["eta"] == eta) & (ret["label"] == label)]
            base = ret[ret["eta"] == eta]["retention_map_baseline"]
            if label == vs:
                row += [f"{base.iloc[0]:.3f}" if len(base) else "-", "reference"]
            elif r.empty:
                row += ["-", "-"]
            else:
                r0 = r.iloc[0]
                row.append(f"{r0['retention_map']:.3f}")
                p = "retention_map"
                row.append(
                    _diff(
                        r0[f"{p}_diff"],
                        r0[f"{p}_ci_low"],
                        r0[f"{p}_ci_high"],
                        r0[f"{p}_ahead"],
                        int(r0["n_pairs"]),
                        1,
                    )
                )
        rows.append(row)
    cols = ["Loss", *(f"mAP @{e:g}" for e in etas), *(f"mAP diff. @{e:g}" for e in etas)]
    for e in etas[1:]:
        cols += [f"retention @{e:g}", f"retention diff. @{e:g}"]
    return pd.DataFrame(rows, columns=cols)


def retention_levels_table(study: Study, args: dict[str, str]) -> pd.DataFrame:
    metrics = _list(args, "metrics", "ap50,ap75")
    frame = study.frame[~study.frame["collapsed"]]
    frame = frame.assign(label=[study.labels[c] for c in frame["cell_id"]])
    etas = sorted(e for e in frame["eta"].unique() if e > 0)
    rows = []
    for label in study.ordered(study.summary["label"]):
        mine = study.summary[study.summary["label"] == label].set_index("eta")
        for m in metrics:
            row = [f"{label}, {COLUMN_TITLES[m]} (range over seeds)"]
            for eta in etas:
                ratios = []
                for seed in sorted(frame["seed"].unique()):
                    cells = frame[(frame["seed"] == seed) & (frame["label"] == label)]
                    clean = cells[(cells["eta"] == 0)]
                    noisy = cells[(cells["eta"] == eta)]
                    if len(clean) and len(noisy) and clean[m].iloc[0] > 0:
                        ratios.append(noisy[m].iloc[0] / clean[m].iloc[0])
                mean = mine.loc[eta, f"{m}_mean"] / mine.loc[0.0, f"{m}_mean"]
                row.append(f"{mean:.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
            rows.append(row)
    for name, values in PUBLISHED_RETENTION.items():
        rows.append(
            [
                f"published: {name}",
                *(f"{values[round(e, 6)]:.2f}" if round(e, 6) in values else "-" for e in etas),
            ]
        )
    cols = ["r (mean IoU noisy/clean per image)", *(study.noise_iou(e) for e in etas)]
    return pd.DataFrame(rows, columns=cols)


def _curve(rec: dict[str, Any], metric: str) -> list[tuple[int, float]]:
    return [(h["epoch"], h["metrics"][metric]) for h in rec.get("history", []) if "metrics" in h]


def curves_table(study: Study, args: dict[str, str]) -> pd.DataFrame:
    rows = []
    noisy = [r for r in study.records if r["cell"]["eta"] > 0 and not r.get("collapsed")]
    groups: dict[tuple[float, str], list[dict[str, Any]]] = {}
    for rec in noisy:
        groups.setdefault((rec["cell"]["eta"], study.labels[rec["cell_id"]]), []).append(rec)
    keys = sorted(groups, key=lambda k: (k[0], study.ordered(study.summary["label"]).index(k[1])))
    for key in [*keys, None]:
        recs = noisy if key is None else groups[key]
        row = [
            "all" if key is None else f"{key[0]:g}",
            "all" if key is None else key[1],
            str(len(recs)),
        ]
        for m in ("map", "map_75_95"):
            curves = [c for c in (_curve(r, m) for r in recs) if len(c) >= 2]
            earlier = sum(max(v for _, v in c) > c[-1][1] for c in curves)
            fell = sum(c[-1][1] < c[-2][1] for c in curves)
            drops = [max(v for _, v in c) - c[-1][1] for c in curves]
            row += [
                f"{earlier}/{len(curves)}",
                f"{fell}/{len(curves)}",
                f"{100 * statistics.fmean(drops):.2f}" if drops else "-",
                f"{100 * max(drops):.2f}" if drops else "-",
            ]
        rows.append(row)
    cols = ["eta", "Loss", "cells"]
    for m in ("mAP", "mAP75:95"):
        cols += [
            f"{m} peak before final",
            f"{m} fell over the last interval",
            f"{m} mean drop",
            f"{m} largest drop",
        ]
    return pd.DataFrame(rows, columns=cols)


def run_table(study: Study, args: dict[str, str]) -> pd.DataFrame:
    if not study.records:  # a study that has just started
        cols = ["cells", "collapsed", "minutes per cell (median)", "range", "cell-hours"]
        return pd.DataFrame([["0", "0", "-", "-", "0.0", "-"]], columns=cols + ["evaluation share"])
    minutes = [r["wall_time_s"] / 60 for r in study.records]
    timing = [r.get("timing") or {} for r in study.records]
    evals = sum(t.get("eval_s", 0.0) for t in timing)
    epochs = sum(t.get("epochs_s", 0.0) for t in timing)
    share = f"{100 * evals / (evals + epochs):.1f} %" if evals else "-"
    row = [
        str(len(study.records)),
        str(sum(bool(r.get("collapsed")) for r in study.records)),
        f"{statistics.median(minutes):.2f}",
        f"{min(minutes):.2f}-{max(minutes):.2f}",
        f"{sum(minutes) / 60:.1f}",
        share,
    ]
    cols = [
        "cells",
        "collapsed",
        "minutes per cell (median)",
        "range",
        "cell-hours",
        "evaluation share of epochs + evaluation",
    ]
    return pd.DataFrame([row], columns=cols)


def rerun_table(study: Study, args: dict[str, str]) -> pd.DataFrame:
    other = Study(study.root.parent / args["other"])
    mine = study.frame.set_index("cell_id")
    theirs = other.frame.set_index("cell_id")
    shared = sorted(set(mine.index) & set(theirs.index))
    seeds = sorted({int(mine.loc[c, "seed"]) for c in shared})
    rows = []
    for eta in sorted({float(mine.loc[c, "eta"]) for c in shared}):
        ids = [c for c in shared if mine.loc[c, "eta"] == eta]
        moved = [abs(mine.loc[c, "map"] - theirs.loc[c, "map"]) for c in ids]
        here = relative_improvements(study.frame[study.frame["cell_id"].isin(ids)])
        there_same = relative_improvements(other.frame[other.frame["cell_id"].isin(ids)])
        there_all = relative_improvements(other.frame[other.frame["eta"] == eta])
        for _, r in here.iterrows():
            same = there_same[there_same["label"] == r["label"]].iloc[0]
            every = there_all[there_all["label"] == r["label"]].iloc[0]
            cells = [
                _diff(
                    x["map_diff"],
                    x["map_ci_low"],
                    x["map_ci_high"],
                    x["map_ahead"],
                    int(x["n_pairs"]),
                )
                for x in (r, same, every)
            ]
            rows.append(
                [
                    f"{eta:g}",
                    r["label"],
                    r["baseline_label"],
                    str(len(ids)),
                    f"{100 * max(moved):.2f}",
                    f"{100 * statistics.fmean(moved):.2f}",
                    *cells,
                ]
            )
    cols = [
        "eta",
        "Loss",
        "vs",
        "cells re-run",
        "largest mAP move (points)",
        "mean mAP move",
        f"mAP diff. here (seeds {', '.join(map(str, seeds))})",
        f"mAP diff. in {args['other']}, same seeds",
        f"mAP diff. in {args['other']}, all seeds",
    ]
    return pd.DataFrame(rows, columns=cols)


def _test_reading(diff: float, low: float, high: float, expected: str) -> str:
    """How a pre-registered finding reads on this study: the protocol's three classes.

    >>> _test_reading(-0.02, -0.03, -0.01, "-"), _test_reading(-0.02, -0.05, 0.01, "-")
    ('holds', 'holds in sign only')
    >>> _test_reading(0.01, -0.02, 0.04, "-")
    'does not hold'
    """
    sign = 1 if expected == "+" else -1
    if sign * diff <= 0:
        return "does not hold"
    return "holds" if sign * low > 0 and sign * high > 0 else "holds in sign only"


def pointwise_table(study: Study, args: dict[str, str]) -> pd.DataFrame:
    """Findings of other studies tested on this one, each read only once its pairs are in.

    ``tests=ID:METRIC:LOSS:ETAS:SIGN/...`` (``ETAS`` ``,``-separated; ``SIGN`` ``+`` or ``-``
    the direction the finding claims for ``LOSS`` against ``vs``; ``METRIC`` a paired metric
    such as ``map``, ``ap50``, ``map_75_95`` or ``retention_map``); ``pairs=N`` the pairs the
    protocol plans: a test with fewer reads "pending", its figures not shown.
    """
    vs, planned = args["vs"], int(args["pairs"])
    empty = pd.DataFrame(columns=["label", "eta", "n_pairs"])
    frames = {
        "diff": relative_improvements(study.frame, vs) if study.records else empty,
        "retention": retention_differences(study.frame, vs) if study.records else empty,
    }
    names = {r["cell"]["loss"]: _label_of(r) for r in study.records}
    rows = []
    for test in args["tests"].replace(" ", "_").split("/"):
        finding, metric, loss, etas, expected = test.split(":")
        frame = frames["retention" if metric.startswith("retention_") else "diff"]
        for eta in (float(e) for e in etas.split(",")):
            hit = frame[(frame["label"] == names.get(loss)) & (frame["eta"] == eta)]
            n = int(hit["n_pairs"].iloc[0]) if len(hit) else 0
            base = metric.removeprefix("retention_")
            title = COLUMN_TITLES[base] + (" retention" if base != metric else "")
            row = [finding, loss, title, f"{eta:g}", {"+": "higher", "-": "lower"}[expected]]
            if n < planned:
                rows.append([*row, "-", f"pending ({n} of {planned} pairs)"])
                continue
            r = hit.iloc[0]
            scale = 1 if metric.startswith("retention_") else 100
            d, lo, hi = r[f"{metric}_diff"], r[f"{metric}_ci_low"], r[f"{metric}_ci_high"]
            shown = _diff(d, lo, hi, r[f"{metric}_ahead"], n, scale)
            rows.append([*row, shown, _test_reading(d, lo, hi, expected)])
    cols = ["Finding", "Loss", "Metric", "eta", "claimed", f"paired diff. vs {vs}", "reading"]
    return pd.DataFrame(rows, columns=cols)


KINDS: dict[str, Callable[[Study, dict[str, str]], pd.DataFrame]] = {
    "pairs": pairs_table,
    "retention": retention_table,
    "by-loss": by_loss_table,
    "retention-levels": retention_levels_table,
    "curves": curves_table,
    "run": run_table,
    "rerun": rerun_table,
    "pointwise": pointwise_table,
}


def render(study: Study, spec: str) -> str:
    """The Markdown table of one ``<!-- generated: SPEC -->`` block."""
    kind, args = _args(spec)
    if kind not in KINDS:
        raise ValueError(f"Expected a table kind among {sorted(KINDS)} but got {kind!r}")
    return markdown_table(KINDS[kind](study, args))


def regenerate(text: str, study: Study) -> str:
    """``text`` with every generated block rendered again from the study's records."""
    return BLOCK.sub(
        lambda m: m.group(1) + render(study, m.group("spec")) + "\n" + m.group(4), text
    )


def figures(text: str) -> list[str]:
    """The decimal numbers of Markdown prose: outside code, comments and link targets.

    >>> figures("NWD +0.84 [+0.05, +1.63] (`eta0.3`, [plot](a/b_0.5.png)), v8.4.190")
    ['0.84', '0.05', '1.63']
    """
    for pattern in (CODE, COMMENT, LINK_TARGET):
        text = pattern.sub(" ", text)
    return NUMBER.findall(text)


def intervals(text: str) -> list[str]:
    """The paired differences quoted with their interval, as ``mean [low, high]``.

    >>> intervals("NWD +0.84 [+0.05, +1.63]; mAP −1.85 points (95% CI −3.45 to −0.26;")
    ['+0.84 [+0.05, +1.63]', '-1.85 [-3.45, -0.26]']
    """
    text = text.replace("\u2212", "-")
    found = [(m.start(), "{} [{}, {}]".format(*m.groups())) for m in INTERVAL.finditer(text)]
    found += [(m.start(), "{} [{}, {}]".format(*m.groups())) for m in VERDICT.finditer(text)]
    return [figure for _, figure in sorted(found)]


def _quoted(text: str) -> list[str]:
    """The figures of prose a check compares: each interval as a whole, each number."""
    text = text.replace("\u2212", "-")
    for pattern in (CODE, COMMENT, LINK_TARGET):
        text = pattern.sub(" ", text)
    return intervals(text) + NUMBER.findall(text)


def pool(study_dir: Path, text: str, *, linked: bool = True) -> set[str]:
    """The figures a study's README may quote: its generated tables', its report's, those
    it lists as not from the records and (``linked``) those of the studies it links to;
    intervals (``mean [low, high]``) as wholes, and each number."""
    found = set()
    report = study_dir / "report" / "report.md"
    for source in [m.group("body") for m in BLOCK.finditer(text)] + [
        report.read_text(encoding="utf-8")
    ]:
        found |= set(NUMBER.findall(source)) | set(intervals(source))
    for m in EXTERNAL.finditer(text):
        found |= set(m.group("figures").split())
    if linked:
        for name in sorted(set(LINKED.findall(text)) - {study_dir.name}):
            other = study_dir.parent / name
            found |= pool(other, (other / "README.md").read_text(encoding="utf-8"), linked=False)
    return found


def prose(text: str) -> str:
    """``text`` without its generated blocks."""
    return BLOCK.sub("", text)


def check_study(study_dir: Path, text: str | None = None) -> list[str]:
    """What in ``study_dir/README.md`` (or ``text``, in its place) is not what the study's
    records give."""
    readme = study_dir / "README.md"
    text = readme.read_text(encoding="utf-8") if text is None else text
    problems = []
    blocks = len(BLOCK.findall(text))
    if not blocks or blocks != len(START.findall(text)):
        problems.append(f"{readme}: no generated table, or one without its end marker")
    fresh = regenerate(text, Study(study_dir))
    if fresh != text:
        problems.append(f"{readme}: a generated table is not what the records give (run --write)")
    allowed = pool(study_dir, fresh)
    for figure in _quoted(prose(text)):
        if figure not in allowed:
            problems.append(f"{readme}: the figure {figure} is in no table of the records")
    return problems


def check_findings(readme: Path, text: str | None = None) -> list[str]:
    """What in the main README's findings table (or ``text``'s) is not in the study it links
    to."""
    text = readme.read_text(encoding="utf-8") if text is None else text
    match = FINDINGS.search(text)
    if not match:
        return [f"{readme}: no <!-- study findings --> table"]
    problems = []
    for line in match.group("body").splitlines():
        if not line.startswith("| ") or line.startswith("| Study"):
            continue
        links = re.findall(r"\(benchmarks/results/([\w-]+)/README\.md\)", line)
        if not links:
            problems.append(f"{readme}: a findings row links to no study: {line[:60]}")
            continue
        study_dir = RESULTS / links[0]
        allowed = pool(study_dir, (study_dir / "README.md").read_text(encoding="utf-8"))
        problems += [
            f"{readme}: the figure {f} of {links[0]}'s row is in none of its tables"
            for f in _quoted(line)
            if f not in allowed
        ]
    return problems


def study_dirs() -> list[Path]:
    return sorted(p.parent for p in RESULTS.glob("*/README.md"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="regenerate the tables in place")
    args = parser.parse_args(argv)
    problems = []
    for study_dir in study_dirs():
        if args.write:
            readme = study_dir / "README.md"
            text = readme.read_text(encoding="utf-8")
            fresh = regenerate(text, Study(study_dir))
            if fresh != text:
                readme.write_text(fresh, encoding="utf-8")
                print(f"updated {readme}", file=sys.stderr)
        problems += check_study(study_dir)
    problems += check_findings(ROOT / "README.md")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
