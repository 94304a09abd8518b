"""The embedded shapes dataset: determinism, COCO validity, tight boxes, size coverage."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from pycocotools.coco import COCO

from noisybox.cli import main
from noisybox.data import SHAPE_CLASSES, draw_shapes_image, make_shapes_dataset


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory):
    return make_shapes_dataset(
        tmp_path_factory.mktemp("shapes"), num_train=6, num_val=3, image_size=64
    )


# Committed benchmark results (benchmarks/results/) were trained on this generator's output.
# If this digest changes, the generator changed: existing results folders refuse to continue
# (runner.check_dataset) and the committed studies must be re-run. Update it knowingly.
GOLDEN_ANNOTATIONS_SHA256 = {
    "instances_train.json": "dbe83c18028bd5da7ba868a2c05f3ebf72d388d680acae624a40e5103a925c15",
    "instances_val.json": "1932f8a0a97105387dd373e47e969e4bdee137eb7d8d5dfefd8829a82df9177e",
}


def test_generator_output_is_pinned(shapes) -> None:
    for path in (shapes.train_annotations, shapes.val_annotations):
        assert hashlib.sha256(path.read_bytes()).hexdigest() == GOLDEN_ANNOTATIONS_SHA256[path.name]


def test_same_seed_gives_identical_files(shapes, tmp_path: Path) -> None:
    again = make_shapes_dataset(tmp_path / "a", num_train=6, num_val=3, image_size=64)
    assert _files(again.root) == _files(shapes.root)
    other = make_shapes_dataset(tmp_path / "b", num_train=6, num_val=3, image_size=64, seed=1)
    assert (
        _files(other.root)["images/train/000001.png"]
        != _files(shapes.root)["images/train/000001.png"]
    )


def test_more_images_keep_the_first_ones(shapes, tmp_path: Path) -> None:
    bigger = make_shapes_dataset(tmp_path, num_train=8, num_val=3, image_size=64)
    small, big = (
        json.loads(shapes.train_annotations.read_text()),
        json.loads(bigger.train_annotations.read_text()),
    )
    assert big["images"][:6] == small["images"]
    assert big["annotations"][: len(small["annotations"])] == small["annotations"]
    assert (bigger.root / "images/train/000006.png").read_bytes() == (
        shapes.root / "images/train/000006.png"
    ).read_bytes()


def test_coco_files_load_in_pycocotools_and_match_images(shapes) -> None:
    for path, count, split in (
        (shapes.train_annotations, 6, "train"),
        (shapes.val_annotations, 3, "val"),
    ):
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
        assert len(coco.getImgIds()) == count
        assert [coco.cats[k]["name"] for k in sorted(coco.cats)] == list(SHAPE_CLASSES)
        for image in coco.dataset["images"]:
            assert image["file_name"].startswith(f"images/{split}/")
            with Image.open(shapes.image_root / image["file_name"]) as pil:
                assert pil.size == (image["width"], image["height"]) == (64, 64)
                assert pil.mode == "RGB"
        for ann in coco.dataset["annotations"]:
            x, y, w, h = ann["bbox"]
            assert w >= 4 and h >= 4 and x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64
            assert ann["area"] == w * h and ann["iscrowd"] == 0


def test_boxes_are_tight_around_the_visible_pixels_of_every_object() -> None:
    for index in range(20):
        image, boxes, labels, instances = draw_shapes_image(
            np.random.default_rng(index), 96, return_instances=True
        )
        assert instances.shape == image.shape[:2]
        assert set(np.unique(instances)) <= {-1, *range(len(labels))}
        assert labels.min() >= 0 and labels.max() < len(SHAPE_CLASSES)
        for k, box in enumerate(boxes):
            ys, xs = np.nonzero(instances == k)
            assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            # each edge of the box touches the object (the box is tight on all four sides)
            x1, y1, x2, y2 = box.astype(int)
            window = instances[y1:y2, x1:x2] == k
            assert (
                window[0].any() and window[-1].any() and window[:, 0].any() and window[:, -1].any()
            )


def test_objects_overlap_and_cover_coco_size_ranges() -> None:
    areas, overlaps, counts = [], 0, []
    for index in range(60):
        _, boxes, labels, _ = draw_shapes_image(
            np.random.default_rng([7, index]), 128, return_instances=True
        )
        counts.append(len(labels))
        areas += ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).tolist()
        for i in range(len(boxes)):
            for j in range(i):
                lo, hi = (
                    np.maximum(boxes[i, :2], boxes[j, :2]),
                    np.minimum(boxes[i, 2:], boxes[j, 2:]),
                )
                overlaps += bool((hi > lo).all())
    areas_array = np.asarray(areas)
    assert (areas_array < 32**2).sum() >= 20
    assert ((areas_array >= 32**2) & (areas_array < 96**2)).sum() >= 20
    assert (areas_array >= 96**2).sum() >= 3
    assert overlaps >= 10
    assert max(counts) > 3


def test_rejects_bad_sizes_and_existing_dataset(shapes, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="image_size to be an integer >= 32 but got 8"):
        make_shapes_dataset(tmp_path, image_size=8)
    with pytest.raises(ValueError, match="num_train"):
        make_shapes_dataset(tmp_path, num_train=0)
    with pytest.raises(FileExistsError, match="overwrite"):
        make_shapes_dataset(shapes.root, num_train=6, num_val=3, image_size=64)


def test_cli_make_dataset(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "shapes"
    args = [
        "make-dataset",
        "shapes",
        str(out),
        "--num-train",
        "3",
        "--num-val",
        "2",
        "--image-size",
        "48",
    ]
    result = runner.invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["num_train"] == 3 and summary["image_size"] == 48
    assert len(json.loads((out / "instances_val.json").read_text())["images"]) == 2
    again = runner.invoke(main, args)
    assert again.exit_code == 1
    assert "--overwrite" in again.output and "Traceback" not in again.output
    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0
    bad = runner.invoke(main, ["make-dataset", "shapes", str(out), "--image-size", "8"])
    assert bad.exit_code == 2
    assert runner.invoke(main, ["make-dataset", "circles", str(out)]).exit_code == 2
