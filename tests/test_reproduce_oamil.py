"""``--reproduce oamil``: OA-MIL's seeded noisy VOC2007 boxes, bit for bit.

The golden fixture (``tests/data/voc_oamil``, see its README) is the output of a standalone
transcription of OA-MIL's generator run once outside the repository. The real-data test
compares digests of the noisy VOC2007 trainval boxes with those the same script gave on the
real annotations (``../shared/realdata``; skipped when absent, nothing copied here).
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from _bench_voc import REALDATA, bench
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.corrupt import corrupt_annotations
from noisybox.corrupt.oamil import oamil_coco, oamil_voc
from noisybox.formats import read_annotations
from noisybox.noise.published import OAMIL_SEED, oamil_legacy_boxes

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "voc_oamil"
VOC = FIXTURE / "VOC2007"
GOLDEN = json.loads((FIXTURE / "oamil_golden.json").read_text())
LEVELS = sorted(GOLDEN)

# The standalone transcription's --digest on the real VOC2007 trainval XML files
# (/work/shared/realdata, KuiQian archive; 5,011 images): the count of noisy boxes and the
# sha256 of their float32 corners (little-endian, images in trainval.txt order).
REAL_DIGESTS = {
    "0.1": "0d8151d9e94d89f46a4faf6766367075c805729db0a0681dbcf0dc686f0d9cdc",
    "0.2": "17d95579f946c62f8435fc05f5914b99199b69e94052844f06fd9201655ccb53",
    "0.3": "6db216825a744b539b1335d67095edc50a12c09b8887f80e323032bd0a750079",
    "0.4": "4a35756c8679b54a1ec7a57e5c438e3a48edb843bdff1244bf45fa19b92b4cd2",
}
REAL_BOXES = 12608  # VOC2007 trainval's non-difficult objects, the official count


def _golden_boxes(rows: list[list[float]]) -> np.ndarray:
    return np.asarray(rows, dtype=np.float32).reshape(-1, 4)


@pytest.mark.parametrize("level", LEVELS)
def test_matches_the_sources_output_bit_for_bit(level: str) -> None:
    clean = read_annotations(VOC, "voc", image_set="trainval")
    infos = oamil_voc(clean, float(level)).infos
    golden = GOLDEN[level]
    assert [i["filename"] for i in infos] == [g["filename"] for g in golden]
    for info, gold in zip(infos, golden, strict=True):
        assert (info["width"], info["height"]) == (gold["width"], gold["height"])
        noisy = np.asarray(info["ann"]["bboxes"]).reshape(-1, 4)
        assert noisy.dtype == np.float32
        assert noisy.tobytes() == _golden_boxes(gold["bboxes"]).tobytes(), gold["filename"]
        assert info["ann"]["labels"].tolist() == gold["labels"]
        assert (
            info["ann"]["bboxes_ignore"].tobytes() == _golden_boxes(gold["bboxes_ignore"]).tobytes()
        )


def test_one_array_draw_is_the_sources_scalar_draws() -> None:
    boxes = np.array([[10.0, 20, 60, 90], [0, 0, 5, 5], [100, 40, 199, 99]], dtype=np.float32)
    sizes = np.array([[200, 100]] * 3)
    got = oamil_legacy_boxes(boxes, sizes, 0.3, np.random.RandomState(OAMIL_SEED))
    rs = np.random.RandomState(OAMIL_SEED)
    for box, row in zip(boxes.astype(np.float64), got, strict=True):
        x1, y1, x2, y2 = box
        w, h = x2 - x1, y2 - y1
        cx = (x1 + x2) / 2 + w * rs.uniform(-0.3, 0.3)
        cy = (y1 + y2) / 2 + h * rs.uniform(-0.3, 0.3)
        nw = w * (rs.uniform(-0.3, 0.3) + 1.0)
        nh = h * (rs.uniform(-0.3, 0.3) + 1.0)
        want = [
            max(0, cx - nw / 2),
            max(0, cy - nh / 2),
            min(cx + nw / 2, 199),
            min(cy + nh / 2, 99),
        ]
        assert row.tolist() == np.float32(want).tolist()


def test_level_zero_draws_nothing_and_changes_nothing() -> None:
    clean = read_annotations(VOC, "voc", image_set="trainval")
    made = oamil_voc(clean, 0.0)
    assert made.annotations.boxes.tobytes() == clean.boxes.tobytes()


def test_cli_writes_the_sources_pickle_and_voc_files(tmp_path: Path) -> None:
    out = tmp_path / "noisy"
    run = CliRunner().invoke(
        main,
        [
            "corrupt",
            str(VOC),
            "--reproduce",
            "oamil",
            "--eta",
            "0.3",
            "-o",
            str(out),
            "-q",
            "--json",
        ],
    )
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert report["reproduce"] == "oamil" and report["seed"] == OAMIL_SEED
    assert report["model"] == "oamil" and "difficult" in report["conventions"]
    assert report["counts"]["ignored"] == 3  # two difficult boxes and the unicorn
    infos = pickle.loads((out / "voc07_trainval_noise-r0.3.pkl").read_bytes())
    for info, gold in zip(infos, GOLDEN["0.3"], strict=True):
        assert (
            np.asarray(info["ann"]["bboxes"]).reshape(-1, 4).tobytes()
            == _golden_boxes(gold["bboxes"]).tobytes()
        )
    # The VOC files hold the same boxes as whole pixels (source corner x1 -> xmin = x1 + 1,
    # x2 -> xmax = x2 + 1), and the difficult boxes as they were.
    clean = read_annotations(VOC, "voc", image_set="trainval")
    noisy = read_annotations(out, "voc", image_set="trainval")
    source = np.concatenate([np.asarray(g["bboxes"]).reshape(-1, 4) for g in GOLDEN["0.3"]])
    perturbed = oamil_voc(clean, 0.3).perturbed
    want = np.floor(source + 0.5) + [0, 0, 1, 1]
    np.testing.assert_array_equal(noisy.boxes[perturbed], want)
    np.testing.assert_array_equal(noisy.boxes[~perturbed], clean.boxes[~perturbed])
    # everything but the numbers of changed boxes is the input's text
    before = (VOC / "Annotations" / "000009.xml").read_bytes()
    assert (out / "Annotations" / "000009.xml").read_bytes() == before


def test_api_and_cli_agree(tmp_path: Path) -> None:
    result = corrupt_annotations(VOC, tmp_path / "a", eta=0.2, reproduce="oamil")
    assert result.provenance["seed"] == OAMIL_SEED and result.eligible.sum() == 12
    again = corrupt_annotations(VOC, tmp_path / "b", eta=0.2, reproduce="oamil", seed=OAMIL_SEED)
    assert (tmp_path / "a" / "voc07_trainval_noise-r0.2.pkl").read_bytes() == (
        tmp_path / "b" / "voc07_trainval_noise-r0.2.pkl"
    ).read_bytes()
    assert again.stats.to_dict() == result.stats.to_dict()


@pytest.mark.skipif(REALDATA is None, reason="real VOC annotations not found (../shared/realdata)")
def test_real_voc2007_trainval_digests(tmp_path: Path) -> None:
    root = bench.voc2007_year_folder(REALDATA, tmp_path)
    clean = read_annotations(root, "voc", image_set="trainval")
    for level, expected in REAL_DIGESTS.items():
        infos = oamil_voc(clean, float(level)).infos
        boxes = [np.asarray(i["ann"]["bboxes"], dtype="<f4").reshape(-1, 4) for i in infos]
        assert sum(b.shape[0] for b in boxes) == REAL_BOXES
        digest = hashlib.sha256(b"".join(b.tobytes() for b in boxes)).hexdigest()
        assert digest == expected, level


COCO_FIXTURE = REPO / "tests" / "data" / "coco_oamil"
COCO = COCO_FIXTURE / "instances_train2017.json"
COCO_GOLDEN = json.loads((COCO_FIXTURE / "oamil_golden.json").read_text())


@pytest.mark.parametrize("level", LEVELS)
def test_coco_matches_the_sources_output_bit_for_bit(level: str) -> None:
    infos = oamil_coco(read_annotations(COCO), float(level)).infos
    golden = COCO_GOLDEN[level]
    assert [i["id"] for i in infos] == [g["id"] for g in golden] == [7, 3, 12, 5]
    for info, gold in zip(infos, golden, strict=True):
        # the source's record: the image's own keys, then filename and ann
        assert list(info) == ["id", "file_name", "width", "height", "license", "filename", "ann"]
        assert info["filename"] == gold["filename"]
        noisy = np.asarray(info["ann"]["bboxes"])
        assert list(noisy.shape) == gold["bboxes_shape"] and noisy.dtype == np.float32
        assert noisy.tobytes() == _golden_boxes(gold["bboxes"]).tobytes(), (level, gold["id"])
        assert info["ann"]["labels"].tolist() == gold["labels"]
        ignore = info["ann"]["bboxes_ignore"]
        assert ignore.tobytes() == _golden_boxes(gold["bboxes_ignore"]).tobytes()


def test_coco_cli_writes_the_json_and_the_sources_pickle_beside_it(tmp_path: Path) -> None:
    out = tmp_path / "noisy" / "instances_train2017_r0.4.json"
    args = ["corrupt", str(COCO), "--reproduce", "oamil", "--eta", "0.4", "-o", str(out)]
    run = CliRunner().invoke(main, [*args, "-q", "--json"])
    assert run.exit_code == 0, run.output
    report = json.loads(run.stdout)
    assert report["reproduce"] == "oamil" and "gen_noisy_coco.py" in report["conventions"]
    # 14 annotations: 8 perturbed; crowd, ignore, w < 1, no overlap, area 0 and a
    # category outside COCO's 80 draw nothing
    assert report["counts"]["ignored"] == 6
    infos = pickle.loads((out.parent / "coco2017_train_noise-r0.4.pkl").read_bytes())
    for info, gold in zip(infos, COCO_GOLDEN["0.4"], strict=True):
        assert np.asarray(info["ann"]["bboxes"]).tobytes() == (
            np.asarray(gold["bboxes"], dtype=np.float32).reshape(gold["bboxes_shape"]).tobytes()
        )
    # the JSON: moved boxes as the source's corners, x y w h to 2 decimals; the rest as read
    clean = json.loads(COCO.read_text())["annotations"]
    noisy = {a["id"]: a for a in json.loads(out.read_text())["annotations"]}
    by_image = {g["id"]: g["bboxes"] for g in COCO_GOLDEN["0.4"]}
    x1, y1, x2, y2 = np.asarray(by_image[7][0], dtype=np.float32).astype(np.float64)
    want = np.round([x1, y1, x2 - x1, y2 - y1], 2)  # the first box of image 7, id 701
    np.testing.assert_allclose(noisy[701]["bbox"], want, atol=0.0051)
    assert noisy[701]["bbox"] != next(a for a in clean if a["id"] == 701)["bbox"]
    for a in clean:
        if a["id"] in (301, 302, 303, 304, 702, 704, 502):  # drawing nothing, or kept clean
            assert noisy[a["id"]] == a
    assert [a["id"] for a in json.loads(out.read_text())["annotations"]] == [a["id"] for a in clean]


def test_coco_reproduction_refuses_what_it_cannot_honour(tmp_path: Path) -> None:
    data = json.loads(COCO.read_text())
    del data["annotations"][1]["area"]
    bad = tmp_path / "no_area.json"
    bad.write_text(json.dumps(data))
    out = tmp_path / "out.json"
    run = CliRunner().invoke(
        main, ["corrupt", str(bad), "--reproduce", "oamil", "--eta", "0.2", "-o", str(out)]
    )
    assert run.exit_code == 1 and "Traceback" not in run.output
    assert run.output.strip().splitlines()[-1] == (
        "Error: Expected a number area in every annotation for --reproduce oamil (the source "
        f"reads it) but got None in {bad} (annotation id 701)"
    )
    data["annotations"][1]["area"] = "big"
    bad.write_text(json.dumps(data))
    run = CliRunner().invoke(
        main, ["corrupt", str(bad), "--reproduce", "oamil", "--eta", "0.2", "-o", str(out)]
    )
    assert run.exit_code == 1 and "but got 'big' in" in run.output and "Traceback" not in run.output
    assert not out.exists() and not (tmp_path / "coco2017_train_noise-r0.2.pkl").exists()
    run = CliRunner().invoke(
        main,
        ["corrupt", str(COCO), "--reproduce", "oamil", "--eta", "0.2", "-o", str(out), "--format", "yolo"],
    )  # fmt: skip
    assert run.exit_code != 0 and "VOC folder or COCO file" in run.output
