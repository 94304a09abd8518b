"""The paper's noise on real Pascal VOC boxes against the figures of
``benchmarks/bench_noise_voc.py`` (and the paper's own).

These tests need the real VOC annotations: ``../shared/realdata`` beside the repository, or
the folder named by ``NOISYBOX_REALDATA``; elsewhere they are skipped. They read the
annotations from there (the VOC2007 XML files are unpacked into a temporary folder) and copy
nothing into the repository.

Reference figures: ``python benchmarks/bench_noise_voc.py`` (seeds 0-19, eta 0.3, boundary
shift), per-image mean IoU, mean ± std over the 20 seeds:

* VOC2007 trainval alone (5,011 images): ``VOC2007_ETA03`` ± ``VOC2007_ETA03_STD``;
* VOC07+12 trainval (16,551 images): ``VOC0712_ETA03`` ± ``VOC0712_ETA03_STD``.

Each test draws with seed 20, a seed the benchmark did not use, so its figure is a fresh
sample of the seed-to-seed distribution, and allows 4 standard deviations of it. The
reference mean carries its own error, std / sqrt(20), which widens the spread of the
difference by 2.5% only; a standard deviation estimated from 20 seeds is too low by more
than a factor 1.4 with probability under 5%, so 4 measured stds are at least 2.8 true ones
(a correct model fails with probability under 0.5% even then). The tolerance stays well
below the gaps the tests are there to catch, measured on VOC2007 at seed 20: the per-box mean
(0.019 lower), boundary truncate (0.024 lower), the noise without eq. 5's border clamp (0.06
lower), and VOC07+12's figure instead of VOC2007's (0.0077 higher). Against the paper, whose
0.613 is one draw given to three decimals, the VOC07+12 test allows the same 4 stds plus
half a unit of the last decimal.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from _bench_voc import REALDATA, bench
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.corrupt import corrupt_annotations

REPO = Path(__file__).resolve().parents[1]

VOC2007_ETA03 = 0.6058
VOC2007_ETA03_STD = 0.0013
VOC0712_ETA03 = 0.6135
VOC0712_ETA03_STD = 0.0007
PAPER_ETA03 = 0.613  # Alpha-IoU §4.3, three decimals
SEED = 20  # not among the benchmark's seeds 0-19


_WHERE = os.environ.get("NOISYBOX_REALDATA") or REPO.parent / "shared" / "realdata"
pytestmark = pytest.mark.skipif(
    REALDATA is None,
    reason=f"real VOC annotations not found in {_WHERE} (NOISYBOX_REALDATA names their "
    "folder; see benchmarks/bench_noise_voc.py)",
)


@pytest.fixture(scope="module")
def voc2007(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The VOC2007 trainval year folder, unpacked from the realdata archive."""
    return bench.voc2007_year_folder(REALDATA, tmp_path_factory.mktemp("realdata"))


def test_voc2007_per_image_iou_matches_the_benchmark(voc2007: Path, tmp_path: Path) -> None:
    result = corrupt_annotations(
        voc2007, tmp_path / "VOC2007", eta=0.3, seed=SEED, image_set="trainval"
    )
    assert result.stats.num_images == 5011 and result.stats.num_boxes == 15662
    assert result.stats.mean_image_iou == pytest.approx(VOC2007_ETA03, abs=4 * VOC2007_ETA03_STD)


def test_voc0712_in_one_command_matches_the_benchmark_and_the_paper(
    voc2007: Path, tmp_path: Path
) -> None:
    assert REALDATA is not None
    voc2012 = [str(REALDATA / p) for p in bench.VOC2012_JSON]
    out = tmp_path / "VOC0712_eta0.3"
    args = ["corrupt", str(voc2007), *voc2012, "--image-set", "trainval", "--eta", "0.3"]
    result = CliRunner().invoke(main, [*args, "--seed", str(SEED), "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    iou = report["iou"]
    assert (iou["num_images"], iou["num_boxes"]) == (16551, 47223)
    assert iou["paper_statistic"] == "mean_image_iou"
    tolerance = 4 * VOC0712_ETA03_STD
    assert iou["mean_image_iou"] == pytest.approx(VOC0712_ETA03, abs=tolerance)
    # the paper's figure, given to three decimals (half a unit of rounding on top)
    assert iou["mean_image_iou"] == pytest.approx(PAPER_ETA03, abs=tolerance + 0.0005)
    assert sorted(p.name for p in out.iterdir()) == [
        "VOC2007",
        "noisybox-manifest.json",
        "pascal_train2012.json",
        "pascal_val2012.json",
    ]
