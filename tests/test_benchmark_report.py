"""The benchmark report on hand-made result records (no training involved)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from noisybox.cli import main
from noisybox.engine.evaluation import THRESHOLD_METRICS
from noisybox.errors import NoisyboxError
from noisybox.report.paired_tables import retention_reading
from noisybox.report.writer import (
    TABLE_METRICS,
    build_report,
    loss_label,
    paired_differences,
    paired_verdicts,
    records_frame,
    relative_improvements,
    retention_differences,
    robustness_frame,
    summarize,
    write_report,
)
from noisybox.study.collapse_flags import apply_collapse_flags, find_twin
from noisybox.study.grid import expand_grid
from noisybox.study.loading import CollapseConfig, load_config
from noisybox.study.results import ResultsFolder


def metrics_for(ap50: float) -> dict[str, float]:
    """AP falling linearly with the threshold: ap_t = ap50 * (1 - 0.1 * i)."""
    aps = {m: ap50 * (1 - 0.1 * i) for i, m in enumerate(THRESHOLD_METRICS)}
    return {
        **aps,
        "map": float(np.mean(list(aps.values()))),
        "map_75_95": float(np.mean([aps[m] for m in THRESHOLD_METRICS[5:]])),
    }


def record(loss: str, alpha: float | None, eta: float, seed: int, ap50: float, **extra) -> dict:
    cell = {
        "detector": "retinanet",
        "backbone": "resnet18",
        "loss": loss,
        "alpha": alpha,
        "alpha_warmup": extra.pop("alpha_warmup", None),
        "eta": eta,
        "seed": seed,
    }
    label = loss_label(loss, alpha)
    return {
        "cell_id": f"retinanet-resnet18__{label}__eta{eta:g}__s{seed}",
        "cell": cell,
        "metrics": metrics_for(ap50),
        "noise": {"mean_iou": 1.0 if eta == 0 else 1 - eta},
        "history": extra.pop("history", []),
        "collapsed": False,
        "collapse_reasons": [],
        **extra,
    }


GRID = {
    # (loss, alpha, eta): AP50 of seeds 0 and 1
    ("iou", 1.0, 0.0): (0.80, 0.82),
    ("alpha-iou", 3.0, 0.0): (0.81, 0.83),
    ("iou", 1.0, 0.2): (0.70, 0.72),
    ("alpha-iou", 3.0, 0.2): (0.73, 0.75),
    ("iou", 1.0, 0.3): (0.60, 0.62),
    ("alpha-iou", 3.0, 0.3): (0.0, 0.64),  # seed 0 collapsed
}


@pytest.fixture
def records() -> list[dict]:
    return [
        record(loss, alpha, eta, seed, ap)
        for (loss, alpha, eta), aps in GRID.items()
        for seed, ap in enumerate(aps)
    ]


def table_rows(markdown: str, eta: float) -> list[list[str]]:
    section = markdown.split(f"eta = {eta:g} (")[1].split("\n## ")[0]
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| Loss")
    ]


def test_loss_label() -> None:
    assert loss_label("alpha-iou", 3.0) == "alpha-iou@3"
    assert loss_label("iou", 2.0) == "iou@2"
    assert loss_label("diou", 1.0) == "diou"


def test_table3_means_std_and_relative_improvement(records: list[dict]) -> None:
    report, data = build_report(records, thresholds=CollapseConfig())
    rows = table_rows(report.markdown, 0.2)
    assert [r[0] for r in rows] == [
        "iou",
        "alpha-iou@3",
        "rela. improv. (vs iou)",
        "paired diff. (points)",
        "seeds ahead",
        "95% CI (points)",
        "p (Wilcoxon / sign)",
    ]
    # both seeds gain exactly 3 AP50 points: no spread, so the gain exceeds it
    assert rows[3][1:3] == ["2", "+3.00 ± 0.00*"]
    assert rows[4][1:3] == ["2", "2/2"]
    # no spread: the interval is the point; two pairs cannot give an exact p below 2/4
    assert rows[5][1:3] == ["2", "[+3.00, +3.00]"]
    assert rows[6][1:3] == ["2", "0.500 / 0.500"]
    header = report.markdown.split("eta = 0.2 (")[1].splitlines()[2]
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns == [
        "Loss",
        "seeds",
        "AP50",
        "AP55",
        "AP60",
        "AP65",
        "AP70",
        "AP75",
        "AP80",
        "AP85",
        "AP90",
        "AP95",
        "mAP",
        "mAP75:95",
    ]
    # hand-computed: mean of 70 and 72 is 71.00, sample std sqrt(2) = 1.41
    assert rows[0][1] == "2"
    assert rows[0][2] == "71.00 ± 1.41"
    assert rows[1][2] == "74.00 ± 1.41"
    # (74 - 71) / 71 = 4.225 %
    assert rows[2][2] == "4.23%"
    # AP95 = AP50 * 0.1: relative improvement is the same 4.23 % at every threshold
    assert rows[2][11] == "4.23%"
    assert rows[1][11] == "7.40 ± 0.14"
    rel = data["relative"]
    sel = rel[(rel["eta"] == 0.2) & (rel["label"] == "alpha-iou@3")].iloc[0]
    assert sel["ap50_rel"] == pytest.approx(300 / 71)
    assert sel["n_pairs"] == 2
    # paired differences are 0.03 for both seeds: no spread, so the gain exceeds it
    assert sel["ap50_diff"] == pytest.approx(0.03)
    assert bool(sel["ap50_beyond_spread"]) is True


def test_paired_verdicts_beyond_or_within_the_spread() -> None:
    # seed gains of +3, +3 (eta 0.2) and +4, -2 (eta 0.3) AP50 points
    grid = {
        ("iou", 1.0, 0.2): (0.70, 0.72),
        ("alpha-iou", 3.0, 0.2): (0.73, 0.75),
        ("iou", 1.0, 0.3): (0.60, 0.62),
        ("alpha-iou", 3.0, 0.3): (0.64, 0.60),
    }
    recs = [
        record(loss, alpha, eta, seed, ap)
        for (loss, alpha, eta), aps in grid.items()
        for seed, ap in enumerate(aps)
    ]
    report, data = build_report(recs)
    lines = paired_verdicts(data["relative"], ["ap50"])
    assert lines == [
        "eta 0.2, retinanet (resnet18): alpha-iou@3 vs iou: AP50 +3.00 points "
        "(95% CI +3.00 to +3.00; Wilcoxon p 0.500, sign p 0.500; 2/2 seeds ahead; "
        "higher, the 95% CI excludes 0)",
        # mean +1, sample std of (+4, -2) = 4.2426, t_{0.975, 1} = 12.706:
        # half width 12.706 * 4.2426 / sqrt(2) = 38.12; one of two seeds ahead: p = 1
        "eta 0.3, retinanet (resnet18): alpha-iou@3 vs iou: AP50 +1.00 points "
        "(95% CI -37.12 to +39.12; Wilcoxon p 1.000, sign p 1.000; 1/2 seeds ahead; "
        "the 95% CI includes 0: cannot be told apart)",
    ]
    section = report.markdown.split("## Paired comparison over seeds")[1]
    assert "- eta 0.3, retinanet (resnet18): alpha-iou@3 vs iou: mAP " in section
    assert "cannot be told apart" in section
    one_seed = build_report([r for r in recs if r["cell"]["seed"] == 0])[1]["relative"]
    assert paired_verdicts(one_seed)[0].endswith("1 seed pair(s), no spread to compare with")


def test_collapsed_cells_flagged_excluded_and_never_plain_numbers(records: list[dict]) -> None:
    report, data = build_report(records, thresholds=CollapseConfig())
    collapsed = [r["cell_id"] for r in report.collapsed]
    assert collapsed == ["retinanet-resnet18__alpha-iou@3__eta0.3__s0"]
    rows = table_rows(report.markdown, 0.3)
    assert rows[1][0] == "alpha-iou@3 [1/2 seeds collapsed, excluded]"
    assert rows[1][1] == "1"
    assert rows[1][2] == "64.00"  # the surviving seed only, no std from one seed
    # relative improvement from the one seed where neither collapsed: (64 - 62) / 62
    assert rows[2][1] == "1"
    assert rows[2][2] == f"{100 * 2 / 62:.2f}%"
    assert "## Collapsed cells (1)" in report.markdown
    assert (
        "AP50 near zero: 0.000 while alpha = 1 reaches 0.600 (twin retinanet-resnet18__iou__eta0.3__s0)"
        in report.markdown
    )

    # all seeds collapsed: every column says so, and the improvement is not a number
    both = [
        r for r in records if not (r["cell"]["loss"] == "alpha-iou" and r["cell"]["eta"] == 0.3)
    ]
    both += [record("alpha-iou", 3.0, 0.3, s, 0.001) for s in (0, 1)]
    report, data = build_report(both, thresholds=CollapseConfig())
    rows = table_rows(report.markdown, 0.3)
    assert rows[1][0] == "alpha-iou@3 [collapsed: 2/2 seeds]"
    assert rows[1][2:] == ["collapsed"] * len(TABLE_METRICS)
    assert rows[2][2:] == ["n/a (collapsed)"] * len(TABLE_METRICS)
    assert not re.search(r"\d", "".join(rows[1][2:]))
    rob = data["robustness"].set_index("label")
    assert bool(rob.loc["alpha-iou@3", "collapsed"]) is True
    assert np.isnan(rob.loc["alpha-iou@3", "mpc_map"])


def test_robustness_mpc_rpc(records: list[dict]) -> None:
    summary = summarize(records_frame(records))
    rob = robustness_frame(summary).set_index("label")
    iou = rob.loc["iou"]
    # map = ap50 * mean(1 - 0.1 i) = 0.55 ap50; clean 0.81, noisy levels 0.71 and 0.61
    assert iou["clean_map"] == pytest.approx(0.55 * 0.81)
    assert iou["mpc_map"] == pytest.approx(0.55 * (0.71 + 0.61) / 2)
    assert iou["rpc_map"] == pytest.approx(0.66 / 0.81)
    assert iou["etas"] == "0.2 0.3"
    assert bool(iou["collapsed"]) is False


def test_baseline_alpha_iou_at_1_and_no_baseline() -> None:
    recs = [
        record("alpha-iou", 1.0, 0.1, 0, 0.5),
        record("alpha-iou", 2.0, 0.1, 0, 0.6),
        record("giou", 1.0, 0.1, 0, 0.5),
        record("alpha-diou", 3.0, 0.1, 0, 0.6),  # no diou baseline in the grid
    ]
    rel = relative_improvements(records_frame(recs))
    assert list(rel["label"]) == ["alpha-iou@2"]
    assert rel.iloc[0]["baseline_label"] == "alpha-iou@1"
    assert rel.iloc[0]["map_rel"] == pytest.approx(20.0)


def test_runner_twin_and_report_baseline_follow_one_rule() -> None:
    # Candidates the two used to choose between differently: find_twin took the first
    # alpha = 1 record in cell-id order (alpha-iou@1 sorts before iou), the report the
    # plain name. Both now use collapse.baseline_of: plain name, then no warm-up.
    recs = sorted(
        [
            record(loss, alpha, 0.3, seed, 0.5 + 0.01 * seed, alpha_warmup=warmup)
            for loss, alpha, warmup, seeds in (
                ("alpha-iou", 1.0, None, (0, 1, 2)),
                ("iou", 1.0, 0.3, (0, 1, 2)),
                ("iou", 1.0, None, (0, 1)),  # the baseline, without seed 2
                ("alpha-iou", 3.0, None, (0, 1, 2)),
                ("alpha-giou", 3.0, 0.3, (0, 1)),
                ("giou", 1.0, 0.3, (0, 1)),  # only a warmed-up baseline: still the baseline
                ("alpha-diou", 3.0, None, (0,)),  # no diou at alpha = 1
            )
            for seed in seeds
        ],
        key=lambda r: r["cell_id"],
    )
    rel = relative_improvements(records_frame(recs))
    report_baseline = dict(zip(rel["label"], rel["baseline_label"], strict=True))
    assert report_baseline == {
        "alpha-iou@3": "iou",
        "alpha-giou@3 (warm-up 0.3)": "giou (warm-up 0.3)",
    }
    for rec in recs:
        cell = rec["cell"]
        label = loss_label(cell["loss"], cell["alpha"], cell["alpha_warmup"])
        twin = find_twin(rec, recs)
        if twin is None:
            # no baseline at all, or the baseline has no cell with this seed
            assert label not in report_baseline or (label, cell["seed"]) == ("alpha-iou@3", 2)
            continue
        t = twin["cell"]
        assert loss_label(t["loss"], t["alpha"], t["alpha_warmup"]) == report_baseline[label]
        assert t["seed"] == cell["seed"]
    # the pairs behind the report's numbers are the runner's twins
    diffs = paired_differences(records_frame(recs))
    assert sorted(zip(diffs["label"], diffs["seed"], strict=True)) == sorted(
        (
            loss_label(r["cell"]["loss"], r["cell"]["alpha"], r["cell"]["alpha_warmup"]),
            r["cell"]["seed"],
        )
        for r in recs
        if find_twin(r, recs) is not None
    )


def make_folder(tmp_path: Path, records: list[dict], losses: list, **extra: object) -> Path:
    """A results folder whose config is valid and whose grid holds every record's cell
    (``losses`` first, in their order, then the other losses of the records); each record
    is stored under its cell's id, as the runner writes it."""
    out = tmp_path / "results"
    (out / "records").mkdir(parents=True)
    specs = [dict(spec) for spec in losses]
    for rec in records:
        c = rec["cell"]
        spec = {"name": c["loss"], "alpha": c["alpha"], "alpha_warmup": c["alpha_warmup"]}
        spec = {k: v for k, v in spec.items() if v is not None}
        known = [{"alpha": 1.0, **s} for s in specs]
        if {"alpha": 1.0, **spec} not in known:
            specs.append(spec)
    config = {
        "name": "handmade",
        "dataset": {"builtin": "shapes"},
        "detectors": [{"name": "retinanet", "backbone": "resnet18"}],
        "losses": specs,
        "etas": sorted({r["cell"]["eta"] for r in records}),
        "seeds": sorted({r["cell"]["seed"] for r in records}),
        "schedule": {"epochs": 1},
        "device": "cpu",
        "collapse": {"ap50_near_zero": 0.02},
        **extra,
    }
    (out / "benchmark.json").write_text(json.dumps({"config": config}))
    try:
        grid = expand_grid(load_config(config, check_paths=False))
    except NoisyboxError:  # an invalid config on purpose: records keep their ids
        grid = []
    ids = {json.dumps(c.to_dict(), sort_keys=True): c.cell_id for c in grid}
    for rec in records:
        rec = {**rec, "cell_id": ids.get(json.dumps(rec["cell"], sort_keys=True), rec["cell_id"])}
        (out / "records" / f"{rec['cell_id']}.json").write_text(json.dumps(rec))
    return out


def test_write_report_files_and_plots(tmp_path: Path, records: list[dict]) -> None:
    sweep = [
        record("alpha-iou", a, eta, 0, 0.5 + 0.02 * a)
        for a in (0.5, 2.0, 4.0)
        for eta in (0.0, 0.2)
    ]
    out = make_folder(
        tmp_path, records + sweep, [{"name": "iou"}, {"name": "alpha-iou", "alpha": 3}]
    )
    report = write_report(out)
    names = sorted(p.name for p in report.files)
    assert names == sorted(
        [
            "report.md",
            "records.csv",
            "summary.csv",
            "relative_improvement.csv",
            "paired_differences.csv",
            "robustness.csv",
            "retention_paired.csv",
            "table3.tex",
            "ap_vs_iou_retinanet-resnet18.png",
            "paired_diff_retinanet-resnet18.png",
            "map_vs_eta_retinanet-resnet18.png",
            "alpha_sweep_retinanet-resnet18_alpha-iou.png",
        ]
    )
    for p in report.files:
        assert p.is_file() and p.stat().st_size > 0
        if p.suffix == ".png":
            with Image.open(p) as im:
                assert im.format == "PNG" and im.width > 600 and im.height > 300
    summary = pd.read_csv(out / "report" / "summary.csv")
    row = summary[(summary["label"] == "iou") & (summary["eta"] == 0.2)].iloc[0]
    assert row["ap50_mean"] == pytest.approx(0.71)
    assert row["ap50_std"] == pytest.approx(np.std([0.70, 0.72], ddof=1))
    diffs = pd.read_csv(out / "report" / "paired_differences.csv")
    at3 = diffs[(diffs["label"] == "alpha-iou@3") & (diffs["baseline_label"] == "iou")]
    # +3 AP50 points at eta 0.2 on both seeds; at eta 0.3 seed 0 collapsed, so no pair
    assert at3[at3["eta"] == 0.2]["ap50"].tolist() == pytest.approx([0.03, 0.03])
    assert at3[at3["eta"] == 0.3]["seed"].tolist() == [1]
    assert at3[at3["eta"] == 0.3]["ap95"].iloc[0] == pytest.approx(0.1 * (0.64 - 0.62))
    tex = (out / "report" / "table3.tex").read_text()
    # 3 etas + robustness + the paired retention of the alpha variants
    assert tex.count(r"\begin{tabular}") == 5
    assert r"71.00 $\pm$ 1.41" in tex and r"4.23\%" in tex
    assert (out / "report" / "report.md").read_text() == report.markdown


def test_report_cli(tmp_path: Path, records: list[dict]) -> None:
    out = make_folder(tmp_path, records, [{"name": "iou"}])
    result = CliRunner().invoke(main, ["report", str(out), "--no-plots"])
    assert result.exit_code == 0, result.output
    assert "| iou | 2 | 71.00 ± 1.41 |" in result.stdout
    assert "collapsed" in result.stdout

    result = CliRunner().invoke(main, ["report", str(tmp_path)])
    assert result.exit_code == 1
    assert "Expected a results folder with benchmark.json" in result.output
    assert "Traceback" not in result.output


def test_retention_beside_the_published_rows(records: list[dict]) -> None:
    plain, _ = build_report(records)  # uniform noise: no published retention to compare
    assert "Retention per noise level" not in plain.markdown
    for rec in records:
        rec["noise"]["model"] = "oamil"
    report, data = build_report(records)
    rob = data["robustness"].set_index("label")
    # AP50 of iou: 0.81 clean, 0.71 at eta 0.2, 0.61 at 0.3 (seed means)
    assert rob.loc["iou", "retention_ap50@0.2"] == pytest.approx(0.71 / 0.81)
    assert rob.loc["iou", "retention_ap75@0.3"] == pytest.approx(0.61 / 0.81)
    section = report.markdown.split("### Retention per noise level")[1].split("\n## ")[0]
    lines = [[c.strip() for c in line.strip("|").split("|")] for line in section.splitlines()
             if line.startswith("| ")]  # fmt: skip
    assert lines[0] == ["Detector", "Loss", "AP50 @0.2", "AP75 @0.2", "AP50 @0.3", "AP75 @0.3"]
    iou = next(row for row in lines if row[1] == "iou")
    assert iou[2:] == [f"{0.71 / 0.81:.2f}", f"{0.71 / 0.81:.2f}", f"{0.61 / 0.81:.2f}",
                       f"{0.61 / 0.81:.2f}"]  # fmt: skip
    frcnn = next(row for row in lines if row[1] == "VOC07 Faster R-CNN AP50")
    assert frcnn[2:] == ["0.92", "-", "0.78", "-"]
    coco = next(row for row in lines if row[1] == "COCO Faster R-CNN AP75")
    assert coco[2:] == ["-", "0.77", "-", "-"]


ZOO = {
    # (loss, alpha, eta): AP50 of seeds 0, 1 and 2
    ("iou", 1.0, 0.0): (0.80, 0.82, 0.84),
    ("giou", 1.0, 0.0): (0.81, 0.82, 0.86),
    ("alpha-iou", 3.0, 0.0): (0.79, 0.80, 0.85),
    ("iou", 1.0, 0.3): (0.60, 0.62, 0.64),
    ("giou", 1.0, 0.3): (0.62, 0.66, 0.65),
    ("alpha-iou", 3.0, 0.3): (0.61, 0.63, 0.0),  # seed 2 collapsed
}
ZOO_LOSSES = [{"name": "iou"}, {"name": "giou"}, {"name": "alpha-iou", "alpha": 3}]


@pytest.fixture
def zoo() -> list[dict]:
    return [
        record(loss, alpha, eta, seed, ap)
        for (loss, alpha, eta), aps in ZOO.items()
        for seed, ap in enumerate(aps)
    ]


def md_rows(section: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("| ")
    ]


def test_paired_difference_to_a_reference_loss(zoo: list[dict]) -> None:
    order = ["iou", "giou", "alpha-iou"]
    report, data = build_report(zoo, thresholds=CollapseConfig(), loss_order=order, reference="iou")
    section = report.markdown.split("## Paired difference to iou\n")[1].split("\n## ")[0]
    compact, at0, at3, retention = section.split("\n### ")
    assert retention.startswith("Retention difference to iou")
    rows = md_rows(compact)
    assert rows[0] == [
        "Detector",
        "Loss",
        "mAP @0",
        "mAP @0.3",
        "retention @0.3",
        "diff @0 (95% CI)",
        "diff @0.3 (95% CI)",
    ]
    iou, giou, alpha = (
        next(r for r in rows if r[1] == label) for label in order[:2] + ["alpha-iou@3"]
    )
    # mAP = 0.55 AP50 (metrics_for); giou at eta 0.3: AP50 0.62, 0.66, 0.65, mean 0.6433
    assert giou[2:5] == ["45.65 ± 1.46", "35.38 ± 1.14", f"{0.6433 / 0.83:.2f}"]
    assert iou[5:] == ["reference", "reference"]
    # giou - iou at eta 0.3, AP50 points per seed: +2, +4, +1: mean 7/3, sample std
    # sqrt(7/3) = 1.5275, t(0.975, 2) = 4.3027, half width 4.3027 * 1.5275 / sqrt(3) = 3.7946;
    # mAP is 0.55 of it: +1.28 [-0.80, +3.37]
    assert giou[6] == "+1.28 [-0.80, +3.37]"
    # the collapsed seed is excluded from the mean and from the pairs
    assert alpha[3] == "34.10 ± 0.78 (1/3 collapsed)"
    assert alpha[6] == "+0.55 [+0.55, +0.55]"
    # 4 comparisons have a CI (giou and alpha-iou@3 at both etas); only alpha-iou@3 at 0.3
    # (+1 AP50 point on both seeds) excludes 0; chance gives 0.05 * 4 = 0.2
    assert (
        "mAP: 4 comparisons with `iou` have a 95% CI (every loss at every eta with at least "
        "2 seed pairs); in 1 it lies wholly above 0, in 0 wholly below. If no loss differed "
        "from `iou`, about 0.2 would exclude 0 by chance at the 5% level"
    ) in compact

    assert at3.startswith("retinanet (resnet18), eta = 0.3: difference to iou")
    rows = md_rows(at3)
    assert rows[0] == ["Loss", "pairs", "mAP", "AP50", "AP75", "mAP75:95"]
    assert [r[0] for r in rows[1:]] == ["alpha-iou@3", "giou"]  # config order, iou's variant first
    # three seeds ahead: exact two-sided Wilcoxon and sign tests both give 2 / 2**3
    assert rows[2][1:4] == [
        "3",
        "+1.28 [-0.80, +3.37]; 3/3 ahead; p 0.250 / 0.250",
        "+2.33 [-1.46, +6.13]; 3/3 ahead; p 0.250 / 0.250",
    ]
    assert rows[1][1:3] == ["2", "+0.55 [+0.55, +0.55]; 2/2 ahead; p 0.500 / 0.500"]
    assert "alpha-iou@3" in md_rows(at0)[1][0] and "p 0.750 / 1.000" in md_rows(at0)[1][2]

    paired = data["reference_paired"].set_index(["eta", "label"])
    sel = paired.loc[(0.3, "giou")]
    assert sel["baseline_label"] == "iou" and sel["n_pairs"] == 3
    assert sel["ap50_diff"] == pytest.approx(0.07 / 3)
    half = 4.302652729911275 * np.sqrt(7 / 3) / np.sqrt(3) / 100
    assert (sel["ap50_ci_low"], sel["ap50_ci_high"]) == pytest.approx(
        (0.07 / 3 - half, 0.07 / 3 + half)
    )
    diffs = data["reference_differences"]
    assert sorted(diffs[(diffs["eta"] == 0.3) & (diffs["label"] == "alpha-iou@3")]["seed"]) == [
        0,
        1,
    ]
    summary = data["reference_summary"].set_index("label")
    assert summary.loc["giou", "retention_map@0.3"] == pytest.approx(0.6433333 / 0.83)
    assert summary.loc["iou", "n_pairs@0.3"] == 0


def test_robustness_rows_follow_the_config_loss_order(zoo: list[dict]) -> None:
    # the report's row order: the config's, each alpha variant after its plain loss
    report, data = build_report(zoo, loss_order=["giou", "iou", "alpha-iou"])
    assert data["robustness"]["label"].tolist() == ["giou", "iou", "alpha-iou@3"]
    section = report.markdown.split("## Robustness to noisy boxes\n")[1].split("\n## ")[0]
    assert [row[1] for row in md_rows(section)[1:]] == ["giou", "iou", "alpha-iou@3"]


def test_convergence_warning_says_how_far_from_flat(zoo: list[dict]) -> None:
    # final mAP minus last-quarter mean: +0.60 and +0.80 points (rising), -0.70 (falling),
    # +0.20 (within the half-point tolerance: converged)
    gaps = {("iou", 0): 0.006, ("iou", 1): 0.008, ("giou", 0): -0.007, ("giou", 1): 0.002}
    for rec in zoo:
        gap = gaps.get((rec["cell"]["loss"], rec["cell"]["seed"]))
        if rec["cell"]["eta"] == 0 and gap is not None:
            tail = 0.5 - gap
            rec["convergence"] = {"converged": abs(gap) <= 0.005, "final": 0.5, "tail_mean": tail}
        # two evaluations, so that the report has its learning-curve and convergence sections
        rec["history"] = [{"epoch": e, "metrics": rec["metrics"]} for e in (1, 2)]
    report, _ = build_report(zoo, loss_order=["iou", "giou", "alpha-iou"])
    assert (
        "**Warning: 3 of 4 clean-box (eta = 0) cells did not converge** (their mean mAP over "
        "the last quarter of the epochs is more than half a point from the final value). "
        "2 were still rising when training stopped (final mAP 0.60 to 0.80 points above "
        "their last-quarter mean); 1 was falling (final mAP 0.70 points below it). See "
    ) in report.markdown
    assert "`retinanet-resnet18__iou__eta0__s1` (+0.80)" in report.markdown
    assert "`retinanet-resnet18__giou__eta0__s0` (-0.70)" in report.markdown
    assert "giou__eta0__s1`" not in report.markdown.split("## Convergence")[1]


def test_reference_section_adds_and_changes_nothing_else(zoo: list[dict]) -> None:
    plain, plain_data = build_report(zoo, thresholds=CollapseConfig(), loss_order=["iou", "giou"])
    ref, ref_data = build_report(
        zoo, thresholds=CollapseConfig(), loss_order=["iou", "giou"], reference="iou"
    )
    assert "Paired difference to" not in plain.markdown
    assert not any(k.startswith("reference") for k in plain_data)
    start = ref.markdown.index("\n## Paired difference to iou")
    end = ref.markdown.index("\n## ", start + 1)
    assert ref.markdown[:start] + ref.markdown[end:] == plain.markdown
    assert ref_data["latex"].startswith(plain_data["latex"])
    for key in ("summary", "relative", "differences", "robustness"):
        pd.testing.assert_frame_equal(ref_data[key], plain_data[key])
    # a reference with no cell yet: the section says so
    early, _ = build_report([r for r in zoo if r["cell"]["loss"] != "iou"], reference="iou")
    assert "No finished cell of `iou` yet" in early.markdown


def test_write_report_with_a_reference(tmp_path: Path, zoo: list[dict]) -> None:
    out = make_folder(tmp_path, zoo, ZOO_LOSSES, report={"reference": "iou"})
    report = write_report(out, plots=False)
    names = {p.name for p in report.files}
    assert {"reference_summary.csv", "reference_paired.csv", "reference_differences.csv"} <= names
    assert "## Paired difference to iou" in (out / "report" / "report.md").read_text()
    tex = (out / "report" / "table3.tex").read_text()
    # 2 Table 3 + robustness + the alpha variant's retention, then the compact table, one
    # per eta and the retention differences to the reference
    assert tex.count(r"\begin{tabular}") == 8
    assert r"diff @0.3 (95\% CI)" in tex and "+1.28 [-0.80, +3.37]" in tex
    paired = pd.read_csv(out / "report" / "reference_paired.csv")
    assert set(paired["baseline_label"]) == {"iou"}
    assert set(paired["label"]) == {"giou", "alpha-iou@3"}

    bad = make_folder(tmp_path / "bad", zoo, ZOO_LOSSES, report={"reference": 3})
    with pytest.raises(NoisyboxError, match=r"report.reference is 3, not a loss label"):
        write_report(bad, plots=False)


def test_report_reference_option_overrides_the_config_and_draws_the_forest_plot(
    tmp_path: Path, zoo: list[dict]
) -> None:
    out = make_folder(tmp_path, zoo, ZOO_LOSSES, report={"reference": "iou"})
    result = CliRunner().invoke(main, ["report", str(out), "--reference", "giou"])
    assert result.exit_code == 0, result.output
    assert "## Paired difference to giou" in result.stdout
    assert "Paired difference to iou" not in result.stdout
    paired = pd.read_csv(out / "report" / "reference_paired.csv")
    assert set(paired["baseline_label"]) == {"giou"}
    assert set(paired["label"]) == {"iou", "alpha-iou@3"}
    forest = out / "report" / "plots" / "reference_diff_retinanet-resnet18.png"
    with Image.open(forest) as im:  # two metrics x three etas, one row per loss
        assert im.format == "PNG" and im.width > 900 and im.height > 300
    before = (out / "report" / "report.md").read_text()

    result = CliRunner().invoke(main, ["report", str(out), "--reference", "nope", "--no-plots"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        f"Error: Expected a reference among the loss rows of {out} "
        "(alpha-iou@3, giou, iou) but got 'nope'"
    )
    assert (out / "report" / "report.md").read_text() == before  # nothing rewritten

    # without the option the stored reference is used again
    report = write_report(out, plots=False)
    assert "## Paired difference to iou" in report.markdown


def condition_records() -> list[dict]:
    """Two noise conditions at eta 0.2 beside one clean (eta 0) cell per loss and seed:
    alpha-IoU 3 AP50 points ahead of IoU under ``uniform``, 2 behind under ``missing``."""
    recs = [record("iou", 1.0, 0.0, s, 0.80 + 0.01 * s) for s in (0, 1)]
    recs += [record("alpha-iou", 3.0, 0.0, s, 0.81 + 0.01 * s) for s in (0, 1)]
    grid = {
        "uniform": {"iou": (0.70, 0.72), "alpha-iou": (0.73, 0.75)},
        "missing": {"iou": (0.60, 0.64), "alpha-iou": (0.58, 0.62)},
    }
    for condition, losses in grid.items():
        for loss, aps in losses.items():
            for seed, ap in enumerate(aps):
                rec = record(loss, 1.0 if loss == "iou" else 3.0, 0.2, seed, ap)
                rec["cell"]["condition"] = condition
                rec["cell_id"] = rec["cell_id"].replace("__eta", f"__{condition}__eta")
                rec["noise"]["model"] = "uniform" if condition == "uniform" else "none"
                if condition == "missing":
                    rec["noise"]["corruptions"] = ["missing"]
                recs.append(rec)
    return recs


def test_report_has_one_section_per_noise_condition(tmp_path: Path) -> None:
    recs = condition_records()
    # the alpha = 1 twin stays within the condition
    twin = find_twin(recs[-1], recs)
    assert twin is not None and twin["cell_id"] == "retinanet-resnet18__iou__missing__eta0.2__s1"
    noise = [{"model": "uniform"}, {"model": "none", "corruptions": ["missing"]}]
    out = make_folder(
        tmp_path, recs, [{"name": "iou"}, {"name": "alpha-iou", "alpha": 3}], noise=noise
    )
    report = write_report(out)
    md = report.markdown
    head, uniform, missing = re.split(r"\n## Noise condition `(?:uniform|missing)`\n", md)
    missing, _ = missing.split("\n## Code\n")  # the study's closing notes
    assert "Noise conditions: `uniform`, `missing`" in head
    # UNA's layout: a row per loss and condition, a column per eta, eta 0 shared
    assert "| iou | uniform | 44.28 ± 0.39 | 39.05 ± 0.78 |" in head
    assert "| iou | missing | 44.28 ± 0.39 | 34.10 ± 1.56 |" in head
    assert "Training boxes at each eta > 0: box noise `uniform` only." in uniform
    assert "`missing` at the rate eta, no box noise" in missing
    for section, diff in ((uniform, "+3.00 ± 0.00*"), (missing, "-2.00 ± 0.00*")):
        # each section: the shared clean table, its own eta 0.2 table, robustness
        assert section.count("\n### retinanet (resnet18), eta = 0 (clean boxes)") == 1
        assert section.count("\n### retinanet (resnet18), eta = 0.2 (") == 1
        assert "\n### Robustness to noisy boxes" in section and "\n## " not in section
        rows = table_rows(section, 0.2)
        assert rows[3][0] == "paired diff. (points)" and rows[3][2] == diff
    assert "| iou | 2 | 71.00 ± 1.41 |" in uniform and "| iou | 2 | 62.00 ± 2.83 |" in missing
    summary = pd.read_csv(out / "report" / "summary.csv")
    assert summary.columns[0] == "condition"
    clean = summary[(summary["eta"] == 0) & (summary["label"] == "iou")]
    assert clean["condition"].tolist() == ["uniform", "missing"]  # every condition's reference
    assert clean["ap50_mean"].tolist() == pytest.approx([0.805, 0.805])
    rob = pd.read_csv(out / "report" / "robustness.csv")
    iou = rob[rob["label"] == "iou"].set_index("condition")
    assert iou.loc["missing", "clean_map"] == iou.loc["uniform", "clean_map"]
    assert iou.loc["missing", "rpc_map"] < iou.loc["uniform", "rpc_map"]
    rel = pd.read_csv(out / "report" / "relative_improvement.csv")
    noisy = rel[rel["eta"] == 0.2].set_index("condition")
    assert noisy.loc["uniform", "ap50_diff"] == pytest.approx(0.03)
    assert noisy.loc["missing", "ap50_diff"] == pytest.approx(-0.02)
    records_csv = pd.read_csv(out / "report" / "records.csv", keep_default_na=False)
    assert sorted(set(records_csv["condition"])) == ["", "missing", "uniform"]
    tex = (out / "report" / "table3.tex").read_text()
    # per condition: 2 Table 3, robustness and the retention of alpha-iou@3 against iou
    assert tex.count(r"\begin{tabular}") == 2 * 4 and "% noise condition missing" in tex
    plots = {
        p.relative_to(out / "report" / "plots").parts[0] for p in report.files if p.suffix == ".png"
    }
    assert plots == {"uniform", "missing"}


def test_one_condition_reads_as_before(records: list[dict]) -> None:
    """Records without a condition (every study with one noise mapping): no section."""
    report, data = build_report(records, thresholds=CollapseConfig())
    assert "Noise condition" not in report.markdown and "by_condition" not in data
    assert "condition" not in data["summary"].columns


def test_plot_styles_tell_a_loss_zoo_apart() -> None:
    """Up to twenty IoU variants get twenty looks (tab10 repeated its colours after ten);
    an alpha variant keeps its baseline's colour with its own line."""
    from noisybox.report.plot_style import line_styles as _styles
    from noisybox.report.tables import LossOrder
    from noisybox.study.loading import load_config, preset_path
    from noisybox.study.spec import LossSpec

    specs = list(load_config(preset_path("loss-zoo")).losses)
    labels = [spec.row_label for spec in specs]
    assert len(labels) == 16
    specs += [LossSpec(f"loss{i}", 1.0) for i in range(5)]
    order = LossOrder.of_specs([], specs)
    styles = _styles(labels, order)
    looks = {(styles[label]["color"], styles[label]["linestyle"]) for label in labels}
    assert len(looks) == 16
    alpha = next(label for label in labels if label.startswith("alpha-iou"))
    assert styles[alpha]["color"] == styles["iou"]["color"]
    assert styles[alpha]["linestyle"] != styles["iou"]["linestyle"]
    extra = _styles([*labels, *(f"loss{i}" for i in range(5))], order)  # 20 variants
    assert len({(s["color"], s["linestyle"]) for s in extra.values()}) == 21


T975 = {1: 12.706204736174707, 2: 4.302652729911275}  # t(0.975, n - 1 degrees of freedom)


def paired_interval(diffs: list[float]) -> tuple[float, float, float]:
    """Mean and 95 % t interval of paired differences, by hand."""
    n = len(diffs)
    mean = sum(diffs) / n
    sd = (sum((d - mean) ** 2 for d in diffs) / (n - 1)) ** 0.5
    half = T975[n - 1] * sd / n**0.5
    return mean, mean - half, mean + half


def test_retention_difference_is_paired_seed_by_seed(zoo: list[dict]) -> None:
    frame = records_frame(apply_collapse(zoo))
    ret = retention_differences(frame, "iou").set_index("label")
    assert set(ret["eta"]) == {0.3} and set(ret["baseline_label"]) == {"iou"}
    # mAP = 0.55 AP50 and mAP75:95 = 0.30 AP50 (metrics_for), so both retain AP50's ratio
    giou = [0.62 / 0.81, 0.66 / 0.82, 0.65 / 0.86]
    iou = [0.60 / 0.80, 0.62 / 0.82, 0.64 / 0.84]
    mean, low, high = paired_interval([g - i for g, i in zip(giou, iou, strict=True)])
    row = ret.loc["giou"]
    assert row["n_pairs"] == 3
    for m in ("map", "map_75_95"):
        assert row[f"retention_{m}"] == pytest.approx(sum(giou) / 3)
        assert row[f"retention_{m}_baseline"] == pytest.approx(sum(iou) / 3)
        assert (row[f"retention_{m}_diff"], row[f"retention_{m}_ci_low"]) == pytest.approx(
            (mean, low)
        )
        assert row[f"retention_{m}_ci_high"] == pytest.approx(high)
        assert row[f"retention_{m}_ahead"] == 2  # seed 2: 0.756 against 0.762
        # signed ranks +2, +3, -1: exact two-sided Wilcoxon p = 2 * 2/8; sign test 2 of 3
        assert row[f"retention_{m}_wilcoxon_p"] == pytest.approx(0.5)
        assert row[f"retention_{m}_sign_p"] == pytest.approx(1.0)
    # the noisy mAP difference beside it, on the same seeds, as the reference comparison has it
    assert row["map_diff"] == pytest.approx(0.55 * 0.07 / 3)
    # alpha-iou@3's noisy seed 2 collapsed: that seed has no pair
    alpha = ret.loc["alpha-iou@3"]
    assert alpha["n_pairs"] == 2
    assert alpha["retention_map"] == pytest.approx((0.61 / 0.79 + 0.63 / 0.80) / 2)
    # a collapsed clean cell takes its seed out as well
    for rec in zoo:
        if rec["cell"]["loss"] == "giou" and rec["cell"]["eta"] == 0 and rec["cell"]["seed"] == 0:
            rec["collapsed"] = True
    ret = retention_differences(records_frame(zoo), "iou").set_index("label")
    assert ret.loc["giou", "n_pairs"] == 2
    assert ret.loc["giou", "retention_map"] == pytest.approx(sum(giou[1:]) / 2)


def apply_collapse(records: list[dict]) -> list[dict]:
    return apply_collapse_flags(records, CollapseConfig())


@pytest.mark.parametrize(
    ("map_ci", "retention_ci", "reading"),
    [
        ((0.001, 0.02), (-0.03, 0.08), "higher mAP under noise; robustness cannot be told apart"),
        ((-0.02, -0.001), (-0.03, -0.01), "lower mAP under noise; less robust"),
        ((-0.01, 0.02), (0.01, 0.05), "mAP cannot be told apart; more robust"),
        ((-0.01, 0.02), (-0.01, 0.05), "mAP cannot be told apart; robustness cannot be told apart"),
    ],
)
def test_retention_reading_follows_the_wording_rule(
    map_ci: tuple[float, float], retention_ci: tuple[float, float], reading: str
) -> None:
    row = {
        "n_pairs": 3,
        "map_ci_low": map_ci[0],
        "map_ci_high": map_ci[1],
        "retention_map_ci_low": retention_ci[0],
        "retention_map_ci_high": retention_ci[1],
    }
    assert retention_reading(pd.Series(row)) == reading
    row["n_pairs"] = 1
    assert retention_reading(pd.Series(row)) == "fewer than 2 seed pairs: no interval"


def test_report_gives_the_retention_difference_beside_the_map_difference(
    tmp_path: Path, zoo: list[dict]
) -> None:
    out = make_folder(tmp_path, zoo, ZOO_LOSSES, report={"reference": "iou"})
    report = write_report(out, plots=False)
    text = report.markdown
    # the alpha variant against its baseline, under the paired comparison over seeds
    variant = text.split("### Retention: alpha variant minus baseline\n")[1].split("\n## ")[0]
    # against the reference, inside its section
    section = text.split("## Paired difference to iou\n")[1].split("\n## ")[0]
    reference = section.split("### Retention difference to iou\n")[1]
    rows = md_rows(reference)
    assert rows[0] == [
        "eta",
        "Loss",
        "vs",
        "pairs",
        "mAP diff. (points)",
        "mAP retention (loss / vs)",
        "mAP retention diff.",
        "mAP75:95 retention (loss / vs)",
        "mAP75:95 retention diff.",
        "reading",
    ]
    giou = next(r for r in rows if r[1] == "giou")
    g = [0.62 / 0.81, 0.66 / 0.82, 0.65 / 0.86]
    i = [0.60 / 0.80, 0.62 / 0.82, 0.64 / 0.84]
    mean, low, high = paired_interval([a - b for a, b in zip(g, i, strict=True)])
    assert giou[:4] == ["0.3", "giou", "iou", "3"]
    assert giou[4] == "+1.28 [-0.80, +3.37]; 3/3 ahead; p 0.250 / 0.250"
    assert giou[5] == f"{sum(g) / 3:.3f} / {sum(i) / 3:.3f}"
    # per-seed differences +0.0154, +0.0488, -0.0061: signed ranks +2, +3, -1, W- = 1; of the
    # 8 equally likely sign patterns 2 have W- <= 1, two-sided p = 2 * 2/8 = 0.5; sign test
    # 2 of 3 ahead: p = 1
    assert giou[6] == f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]; 2/3 ahead; p 0.500 / 1.000"
    assert giou[9] == "mAP cannot be told apart; robustness cannot be told apart"
    assert [r[1] for r in md_rows(variant)[1:]] == ["alpha-iou@3"]
    # CSV and LaTeX
    csv = pd.read_csv(out / "report" / "reference_retention.csv").set_index("label")
    assert csv.loc["giou", "retention_map_diff"] == pytest.approx(mean)
    assert set(pd.read_csv(out / "report" / "retention_paired.csv")["baseline_label"]) == {"iou"}
    tex = (out / "report" / "table3.tex").read_text()
    assert "Retention difference to iou" in tex
    assert f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]" in tex


def test_no_retention_difference_without_clean_cells(zoo: list[dict]) -> None:
    noisy = [r for r in zoo if r["cell"]["eta"] > 0]
    report, data = build_report(noisy, loss_order=["iou", "giou", "alpha-iou"], reference="iou")
    assert data["reference_retention"].empty and data["retention"].empty
    assert (
        "Retention needs each seed's clean cell (eta = 0) of both losses; these records have none"
    ) in report.markdown
    assert "reading" not in report.markdown


def test_a_calibration_report_says_its_figures_are_on_the_validation_split() -> None:
    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    calibration = ResultsFolder(results / "bccd-yolo" / "calibration" / "e50").load_records()
    study = ResultsFolder(results / "ultralytics-cpu").load_records()
    assert {r["evaluated_on"] for r in calibration} == {"val"}
    text = build_report(calibration)[0].markdown
    assert "AP on the clean validation set" in text and "clean test set" not in text
    assert "AP on the clean test set" in build_report(study)[0].markdown
