"""Export to an Ultralytics dataset folder: boxes survive the round trip through YOLO text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from noisybox.data import make_shapes_dataset
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations
from noisybox.formats.yolo_export import export_yolo_dataset, yolo_class_ids


def test_export_round_trip(tmp_path: Path) -> None:
    ds = make_shapes_dataset(tmp_path / "coco", num_train=5, num_val=3, image_size=64, seed=1)
    train = read_annotations(ds.train_annotations)
    val = read_annotations(ds.val_annotations)
    data = export_yolo_dataset(
        {"train": (train, ds.image_root), "val": (val, ds.image_root)}, tmp_path / "yolo"
    )
    text = data.read_text()
    assert f'path: "{tmp_path / "yolo"}"' in text and "train: images/train" in text
    ids = yolo_class_ids({"train": train, "val": val})
    assert ids == sorted(train.category_names)
    back = read_annotations(data.parent / "labels" / "train", "yolo")
    assert back.num_images == train.num_images and back.num_boxes == train.num_boxes
    # the same images in the same (sorted) order, boxes to the 6 written decimals
    assert [Path(n).name for n in back.file_names] == [
        n.replace("/", "__") for n in train.file_names
    ]
    order = np.lexsort((train.boxes[:, 0], train.box_image_index))
    order_back = np.lexsort((back.boxes[:, 0], back.box_image_index))
    np.testing.assert_allclose(back.boxes[order_back], train.boxes[order], atol=64 * 1e-6)
    np.testing.assert_array_equal(
        [ids[k] for k in back.categories[order_back]], train.categories[order]
    )
    # an earlier export is replaced; a foreign folder is refused
    export_yolo_dataset({"train": (train, ds.image_root)}, tmp_path / "yolo")
    assert not (tmp_path / "yolo" / "images" / "val").exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(NoisyboxError, match="Expected an absent, empty"):
        export_yolo_dataset({"train": (train, ds.image_root)}, tmp_path / "mine")
