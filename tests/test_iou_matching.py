"""``noisybox iou`` matches records it can trust, and counts invalid boxes apart (item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations
from noisybox.stats import align_boxes, compare_annotations

COCO_FILE = Path(__file__).parent / "data" / "coco" / "instances_tiny.json"


def _doc() -> dict:
    return json.loads(COCO_FILE.read_text())


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def test_unrelated_files_with_the_same_ids_are_refused(tmp_path: Path) -> None:
    """The issue: other image ids, sizes and categories gave ``mean IoU 1.0000``."""
    other = _doc()
    for img in other["images"]:
        img["id"] += 10
        img["width"] += 1
    for ann in other["annotations"]:
        ann["image_id"] += 10
        ann["category_id"] = 7
    other["categories"].append({"id": 7, "name": "dog"})  # a valid file, just another one
    path = _write(tmp_path / "other.json", other)
    result = CliRunner().invoke(main, ["iou", str(COCO_FILE), str(path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: Expected the same images in both files but got image 1")
    with pytest.raises(NoisyboxError, match="record 101"):
        only_categories = _doc()
        only_categories["annotations"][0]["category_id"] = 3
        compare_annotations(read_annotations(COCO_FILE), read_annotations(
            _write(tmp_path / "c.json", only_categories)))  # fmt: skip


def test_invalid_boxes_are_counted_apart_not_as_iou_zero(tmp_path: Path) -> None:
    """The issue: a file with a NaN and a negative box against itself gave 0.75."""
    doc = _doc()
    doc["annotations"][0]["bbox"] = [float("nan"), 20.0, 100.0, 50.0]
    doc["annotations"][4]["bbox"] = [50.0, 60.0, -2.0, 3.0]
    path = _write(tmp_path / "bad.json", doc)
    result = CliRunner().invoke(main, ["iou", str(path), str(path), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert stats["mean_iou"] == 1.0 and stats["num_boxes"] == 2
    assert stats["num_invalid"] == 2 and stats["num_excluded"] == 1  # the crowd box
    text = CliRunner().invoke(main, ["iou", str(path), str(path)]).stdout
    assert "invalid boxes (left out): 2" in text and "mean IoU per box:   1.0000" in text


def test_record_order_does_not_matter_and_duplicates_are_refused(tmp_path: Path) -> None:
    noisy = tmp_path / "noisy.json"
    assert CliRunner().invoke(main, ["corrupt", str(COCO_FILE), "-o", str(noisy)]).exit_code == 0
    doc = json.loads(noisy.read_text())
    doc["annotations"].reverse()
    shuffled = _write(tmp_path / "shuffled.json", doc)
    a = compare_annotations(read_annotations(COCO_FILE), read_annotations(noisy))
    b = compare_annotations(read_annotations(COCO_FILE), read_annotations(shuffled))
    assert a.to_dict() == b.to_dict()

    dup = _doc()
    dup["annotations"][4]["id"] = 201  # two records of image 2 share id 201
    dup_path = _write(tmp_path / "dup.json", dup)
    out = tmp_path / "dup_noisy.json"
    result = CliRunner().invoke(main, ["corrupt", str(dup_path), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "warning: 1 annotation id(s) appear more than once" in result.stderr
    assert "(first: 201, 2 times)" in result.stderr
    refused = CliRunner().invoke(main, ["iou", str(dup_path), str(out)])
    assert refused.exit_code == 1
    assert "Expected every record id once" in refused.stderr and "201 2 times" in refused.stderr


def test_boxes_made_in_memory_pair_row_by_row() -> None:
    """``corrupt`` and the on-the-fly previews compare a copy made with ``with_boxes``."""
    clean = read_annotations(COCO_FILE)
    clean.record_ids[4] = clean.record_ids[3]  # duplicates do not matter for a copy
    noisy = clean.with_boxes(clean.boxes + 1.0)
    np.testing.assert_array_equal(align_boxes(clean, noisy), clean.boxes + 1.0)
    reread = read_annotations(COCO_FILE)
    with pytest.raises(NoisyboxError, match="once"):
        align_boxes(clean, reread)
