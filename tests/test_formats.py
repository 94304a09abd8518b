"""Readers and writers: golden values per format, byte-exact round trips, pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from noisybox.errors import NoisyboxError
from noisybox.formats import (
    detect_format,
    read_annotations,
    snap_boxes,
    to_coco_dict,
    write_annotations,
)

DATA = Path(__file__).parent / "data"
COCO_FILE = DATA / "coco" / "instances_tiny.json"
VOC_DIR = DATA / "voc" / "VOC2007"
YOLO_DIR = DATA / "yolo"


def test_detect_format() -> None:
    assert detect_format(COCO_FILE) == "coco"
    assert detect_format(VOC_DIR) == "voc"
    assert detect_format(VOC_DIR / "Annotations") == "voc"
    assert detect_format(YOLO_DIR) == "yolo"
    with pytest.raises(NoisyboxError, match="Expected an existing"):
        detect_format(DATA / "missing")


def test_read_coco_golden() -> None:
    ann = read_annotations(COCO_FILE)
    assert ann.format == "coco" and ann.num_images == 3 and ann.num_boxes == 5
    assert ann.image_ids.tolist() == [1, 2, 3]
    assert ann.image_sizes.tolist() == [[640, 480], [300, 200], [100, 100]]
    assert ann.record_ids == [101, 102, 103, 201, 202]
    np.testing.assert_array_equal(ann.boxes[1], [300.5, 200.25, 400.0, 479.0])
    assert ann.iscrowd.tolist() == [False, False, True, False, False]
    assert ann.categories.tolist() == [1, 3, 1, 3, 1]
    assert ann.category_names == {1: "cat", 3: "car"}
    assert ann.file_names[0] == "000000000001.jpg"


def test_read_voc_golden() -> None:
    ann = read_annotations(VOC_DIR)
    assert ann.num_images == 3 and ann.num_boxes == 5
    # 1-based inclusive corners -> x1 = xmin - 1, x2 = xmax
    np.testing.assert_array_equal(ann.boxes[0], [47, 239, 195, 371])
    # the object's own bndbox, not its part's
    np.testing.assert_array_equal(ann.boxes[2], [138, 89, 235, 463])
    assert ann.record_ids[2] == "000002.xml#0"
    assert ann.file_names == [
        "JPEGImages/000001.jpg",
        "JPEGImages/000002.jpg",
        "JPEGImages/000003.jpg",
    ]
    assert [ann.category_names[c] for c in ann.categories] == [
        "dog",
        "person",
        "person",
        "sofa",
        "chair",
    ]
    assert ann.image_sizes[0].tolist() == [353, 500]
    subset = read_annotations(VOC_DIR, image_set="train")
    assert subset.num_images == 2 and subset.num_boxes == 4


def test_read_yolo_golden() -> None:
    ann = read_annotations(YOLO_DIR)
    assert ann.file_names == ["train/a.png", "train/b.png", "train/c.jpg"]
    assert ann.image_sizes.tolist() == [[64, 48], [40, 40], [32, 16]]
    assert ann.num_boxes == 4
    np.testing.assert_allclose(ann.boxes[0], [24, 12, 40, 36])
    np.testing.assert_allclose(ann.boxes[3], [0, 0, 40, 40])
    assert ann.record_ids == ["train/a.txt:1", "train/a.txt:2", "train/b.txt:1", "train/b.txt:3"]
    assert ann.category_names == {0: "cat", 1: "car"}


@pytest.mark.parametrize("source", [VOC_DIR, YOLO_DIR])
def test_unchanged_round_trip_is_byte_identical(source: Path, tmp_path: Path) -> None:
    ann = read_annotations(source)
    out = tmp_path / "out"
    write_annotations(ann, out)
    sub = "Annotations" if ann.format == "voc" else "labels"
    src_dir = source / sub
    for f in src_dir.rglob("*"):
        if f.is_file():
            assert (out / sub / f.relative_to(src_dir)).read_bytes() == f.read_bytes()
    again = read_annotations(out)
    np.testing.assert_array_equal(again.boxes, ann.boxes)


def test_coco_round_trip_preserves_everything(tmp_path: Path) -> None:
    ann = read_annotations(COCO_FILE)
    noisy = ann.boxes.copy()
    noisy[0] = [11.111, 21.0, 105.555, 69.0]
    write_annotations(ann.with_boxes(noisy), tmp_path / "out.json", provenance={"eta": 0.1})
    src = json.loads(COCO_FILE.read_text())
    out = json.loads((tmp_path / "out.json").read_text())
    assert list(out) == list(src)  # key order
    assert out["info"]["noisybox"] == {"eta": 0.1}
    assert out["info"]["description"] == src["info"]["description"]
    for a, b in zip(src["annotations"], out["annotations"], strict=True):
        assert list(a) == list(b)
        for key in a:
            if key != "bbox" or a["id"] != 101:
                assert a[key] == b[key], key
    assert out["annotations"][0]["bbox"] == [11.11, 21.0, 94.45, 48.0]
    assert out["annotations"][0]["area"] == 5000.0  # area is the segmentation area, kept
    for key in ("images", "categories", "licenses"):
        assert out[key] == src[key]
    # what snap_boxes predicts is what reads back
    back = read_annotations(tmp_path / "out.json")
    np.testing.assert_array_equal(back.boxes, snap_boxes(ann, noisy))


def test_voc_writes_integers_and_touches_only_bndbox(tmp_path: Path) -> None:
    ann = read_annotations(VOC_DIR)
    noisy = ann.boxes.copy()
    noisy[2] = [140.4, 95.6, 230.2, 460.5]
    write_annotations(ann.with_boxes(noisy), tmp_path / "out")
    text = (tmp_path / "out" / "Annotations" / "000002.xml").read_text()
    src = (VOC_DIR / "Annotations" / "000002.xml").read_text()
    assert "<xmin>141</xmin>" in text and "<ymin>97</ymin>" in text
    assert "<xmax>230</xmax>" in text and "<ymax>461</ymax>" in text
    assert "<xmin>150</xmin>" in text  # the part's box is untouched
    assert (
        text.replace("141", "139")
        .replace(">97<", ">90<")
        .replace("<xmax>230<", "<xmax>235<")
        .replace(">461<", ">463<")
        == src
    )
    back = read_annotations(tmp_path / "out")
    np.testing.assert_array_equal(back.boxes, snap_boxes(ann, noisy))
    assert (tmp_path / "out" / "ImageSets").is_symlink()


def test_yolo_keeps_line_endings_and_reads_back(tmp_path: Path) -> None:
    ann = read_annotations(YOLO_DIR)
    noisy = ann.boxes.copy()
    noisy[2] = [11.0, 3.0, 31.0, 17.0]
    write_annotations(ann.with_boxes(noisy), tmp_path / "out")
    raw = (tmp_path / "out" / "labels" / "train" / "b.txt").read_bytes()
    assert raw == b"1 0.525000 0.250000 0.500000 0.350000\r\n\r\n0 0.5 0.5 1.0 1.0\r\n"
    back = read_annotations(tmp_path / "out")
    np.testing.assert_allclose(back.boxes, snap_boxes(ann, noisy), rtol=0, atol=1e-12)
    assert (tmp_path / "out" / "classes.txt").read_text() == "cat\ncar\n"


@pytest.mark.parametrize("source", [COCO_FILE, VOC_DIR, YOLO_DIR])
def test_to_coco_dict_loads_in_pycocotools(source: Path) -> None:
    ann = read_annotations(source)
    gt = to_coco_dict(ann)
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
    assert len(coco.getAnnIds()) == ann.num_boxes
    assert sorted(coco.getImgIds()) == sorted(ann.image_ids.tolist())
    first = coco.loadAnns(coco.getAnnIds(imgIds=[int(ann.image_ids[0])]))[0]
    x, y, w, h = first["bbox"]
    np.testing.assert_allclose([x, y, x + w, y + h], ann.boxes[0])


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", "Expected valid JSON"),
        ("[]", "Expected a JSON object"),
        ('{"annotations": []}', "Expected a list 'images'"),
        ('{"images": [{"id": 1, "width": 0, "height": 5}], "annotations": []}', r"width > 0 .*image id 1"),
        ('{"images": [{"id": 1, "width": 5, "height": 5}], "annotations": [{"id": 9, "image_id": 2, "bbox": [0,0,1,1]}]}',
         r"image_id of a listed image .*annotation id 9"),
        ('{"images": [{"id": 1, "width": 5, "height": 5}], "annotations": [{"id": 9, "image_id": 1, "bbox": [0,0,1]}]}',
         r"bbox as 4 numbers .*annotation id 9"),
    ],
)  # fmt: skip
def test_coco_malformed(tmp_path: Path, doc: str, message: str) -> None:
    path = _write(tmp_path / "bad.json", doc)
    with pytest.raises(NoisyboxError, match=message) as info:
        read_annotations(path)
    assert "bad.json" in str(info.value) and "\n" not in str(info.value)


def test_voc_malformed(tmp_path: Path) -> None:
    root = tmp_path / "VOC"
    shutil.copytree(VOC_DIR, root)
    _write(root / "Annotations" / "000009.xml", "<annotation><size><width>10</width></size>")
    with pytest.raises(NoisyboxError, match=r"well-formed XML .*000009.xml"):
        read_annotations(root)
    _write(
        root / "Annotations" / "000009.xml",
        "<annotation><size><width>10</width><height>x</height></size></annotation>",
    )
    with pytest.raises(NoisyboxError, match=r"size/height > 0 .*000009.xml"):
        read_annotations(root)
    _write(root / "Annotations" / "000009.xml",
           "<annotation><size><width>10</width><height>9</height></size><object><name>cat</name>"
           "<bndbox><xmin>1</xmin><ymin>a</ymin><xmax>3</xmax><ymax>4</ymax></bndbox></object></annotation>")  # fmt: skip
    with pytest.raises(NoisyboxError, match=r"numeric xmin.*000009.xml#0"):
        read_annotations(root)


def test_yolo_malformed(tmp_path: Path) -> None:
    root = tmp_path / "yolo"
    shutil.copytree(YOLO_DIR, root)
    _write(root / "labels" / "train" / "a.txt", "0 0.5 0.5 0.2\n")
    with pytest.raises(NoisyboxError, match=r"class cx cy w h.*train/a.txt:1"):
        read_annotations(root)
    _write(root / "labels" / "train" / "a.txt", "0 0.5 0.5 0.2 0.2\n")
    _write(root / "labels" / "train" / "zzz.txt", "0 0.5 0.5 0.2 0.2\n")
    with pytest.raises(NoisyboxError, match=r"Expected an image for label file .*zzz.txt"):
        read_annotations(root)


def test_write_refuses_input_and_foreign_folders(tmp_path: Path) -> None:
    ann = read_annotations(COCO_FILE)
    with pytest.raises(NoisyboxError, match="different from the input"):
        write_annotations(ann, COCO_FILE)
    voc = read_annotations(VOC_DIR)
    foreign = tmp_path / "keep"
    _write(foreign / "precious.txt", "x")
    with pytest.raises(NoisyboxError, match="earlier noisybox output"):
        write_annotations(voc, foreign)
    assert (foreign / "precious.txt").read_text() == "x"


def test_coco_image_size_beyond_a_float_is_one_line(tmp_path: Path) -> None:
    """An int too large for a float (the fuzz test's find) is refused, not an OverflowError."""
    from noisybox.formats import read_annotations

    path = tmp_path / "big.json"
    doc = {"images": [{"id": 1, "width": 10, "height": 10**400, "file_name": "a.png"}],
           "annotations": [], "categories": [{"id": 1, "name": "a"}]}  # fmt: skip
    path.write_text(json.dumps(doc))
    with pytest.raises(NoisyboxError, match="Expected image height > 0"):
        read_annotations(str(path))
