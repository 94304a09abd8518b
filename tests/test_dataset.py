"""DetectionDataset over COCO, VOC and YOLO; transforms; the seeded data loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from noisybox.data import (
    DetectionDataset,
    build_dataloader,
    build_transforms,
    collate_fn,
    make_shapes_dataset,
)
from noisybox.errors import NoisyboxError


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory):
    return make_shapes_dataset(
        tmp_path_factory.mktemp("shapes"), num_train=6, num_val=2, image_size=64
    )


def _xyxy(bbox: list[float]) -> list[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def _write_coco(path: Path, images: list[dict], annotations: list[dict]) -> Path:
    path.write_text(
        json.dumps(
            {
                "images": images,
                "annotations": annotations,
                "categories": [{"id": 3, "name": "cat"}, {"id": 8, "name": "dog"}],
            }
        )
    )
    return path


def test_coco_items_match_the_files(shapes) -> None:
    dataset = DetectionDataset(shapes.train_annotations)
    document = json.loads(shapes.train_annotations.read_text())
    assert len(dataset) == 6
    assert dataset.image_root == shapes.root
    assert dataset.num_classes == 6
    assert dataset.category_ids == [1, 2, 3, 4, 5]
    assert dataset.category_names == list(shapes.categories)
    for index, record in enumerate(document["images"]):
        image, target = dataset[index]
        with Image.open(shapes.root / record["file_name"]) as pil:
            reference = torch.from_numpy(np.array(pil.convert("RGB"))).permute(2, 0, 1) / 255
        assert image.dtype == torch.float32 and image.shape == (3, 64, 64)
        torch.testing.assert_close(image, reference.float(), rtol=0, atol=0)
        anns = [a for a in document["annotations"] if a["image_id"] == record["id"]]
        assert target["image_id"] == record["id"]
        assert target["boxes"].dtype == torch.float32 and target["labels"].dtype == torch.int64
        assert target["boxes"].tolist() == [_xyxy(a["bbox"]) for a in anns]
        assert target["labels"].tolist() == [a["category_id"] for a in anns]


def test_noisy_annotations_with_clean_images(shapes, tmp_path: Path) -> None:
    from noisybox.corrupt import corrupt_annotations

    noisy_path = tmp_path / "noisy" / "train_eta0.3.json"
    noisy_path.parent.mkdir()
    corrupt_annotations(shapes.train_annotations, noisy_path, eta=0.3, seed=0)
    clean = DetectionDataset(shapes.train_annotations)
    noisy = DetectionDataset(noisy_path, shapes.root)
    noisy_document = json.loads(noisy_path.read_text())
    moved = 0
    for index in range(len(clean)):
        (clean_image, clean_target), (noisy_image, noisy_target) = clean[index], noisy[index]
        assert torch.equal(clean_image, noisy_image)
        assert noisy_target["labels"].tolist() == clean_target["labels"].tolist()
        anns = [
            a for a in noisy_document["annotations"] if a["image_id"] == noisy_target["image_id"]
        ]
        torch.testing.assert_close(
            noisy_target["boxes"], torch.tensor([_xyxy(a["bbox"]) for a in anns]).reshape(-1, 4)
        )
        moved += int((noisy_target["boxes"] != clean_target["boxes"]).any())
    assert moved > 0
    with pytest.raises(NoisyboxError, match="image id 1 .*under the image root .*noisy"):
        DetectionDataset(noisy_path)


@pytest.mark.parametrize(
    "file_name", ["../outside.png", "a/../../outside.png", "/etc/passwd", "C:\\x.png"]
)
def test_paths_escaping_the_image_root_are_rejected(tmp_path: Path, file_name: str) -> None:
    path = _write_coco(
        tmp_path / "gt.json",
        [
            {"id": 1, "file_name": "ok.png", "width": 8, "height": 8},
            {"id": 42, "file_name": file_name, "width": 8, "height": 8},
        ],
        [],
    )
    with pytest.raises(NoisyboxError, match="image path inside the image root .* for image id 42"):
        DetectionDataset(path)


def test_crowd_boxes_empty_images_and_boxes_outside_the_image(tmp_path: Path) -> None:
    for name, size in (("a.png", (40, 30)), ("b.png", (20, 20))):
        Image.new("RGB", size, (10, 20, 30)).save(tmp_path / name)
    path = _write_coco(
        tmp_path / "gt.json",
        [
            {"id": 5, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 6, "file_name": "b.png", "width": 20, "height": 20},
        ],
        [
            {
                "id": 1,
                "image_id": 5,
                "category_id": 8,
                "bbox": [2, 3, 10, 5],
                "area": 50,
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 5,
                "category_id": 3,
                "bbox": [0, 0, 40, 30],
                "area": 1200,
                "iscrowd": 1,
            },
            {
                "id": 3,
                "image_id": 5,
                "category_id": 3,
                "bbox": [35, 20, 10, 20],
                "area": 200,
                "iscrowd": 0,
            },
            {
                "id": 4,
                "image_id": 5,
                "category_id": 3,
                "bbox": [45, 2, 5, 5],
                "area": 25,
                "iscrowd": 0,
            },
        ],
    )
    dataset = DetectionDataset(path)
    assert dataset.category_ids == [3, 8] and dataset.num_classes == 3
    assert dataset.num_dropped_boxes == 1
    image, target = dataset[0]
    assert image.shape == (3, 30, 40)
    assert target["boxes"].tolist() == [[2, 3, 12, 8], [35, 20, 40, 30]]
    assert target["labels"].tolist() == [2, 1]
    _, empty = dataset[1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)
    assert empty["image_id"] == 6
    train = DetectionDataset(path, transforms=build_transforms(True, 32))
    _, empty = train[1]
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)


def test_image_size_mismatch_is_reported(tmp_path: Path) -> None:
    Image.new("RGB", (16, 16)).save(tmp_path / "a.png")
    path = _write_coco(
        tmp_path / "gt.json", [{"id": 9, "file_name": "a.png", "width": 20, "height": 16}], []
    )
    with pytest.raises(NoisyboxError, match="image id 9.* to be 20x16 .* but got 16x16"):
        DetectionDataset(path)[0]
    (tmp_path / "b.png").write_bytes(b"not a png")
    path = _write_coco(
        tmp_path / "gt.json",
        [
            {"id": 9, "file_name": "a.png", "width": 16, "height": 16},
            {"id": 10, "file_name": "b.png", "width": 16, "height": 16},
            {"id": 11, "file_name": "c.png", "width": 16, "height": 16},
        ],
        [],
    )
    dataset = DetectionDataset(path)
    assert dataset[0][0].shape == (3, 16, 16)
    for index, image_id in ((1, 10), (2, 11)):
        with pytest.raises(NoisyboxError, match=f"readable image at .* for image id {image_id} "):
            dataset[index]


def test_voc_devkit_split(tmp_path: Path) -> None:
    year = tmp_path / "VOCdevkit" / "VOC2007"
    for folder in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (year / folder).mkdir(parents=True)
    objects = {
        "000001": [("dog", 10, 5, 30, 25, 0)],
        "000002": [("cat", 1, 1, 20, 10, 0), ("dog", 3, 4, 9, 9, 1)],
    }
    for stem, objs in objects.items():
        Image.new("RGB", (48, 32), (200, 100, 0)).save(
            year / "JPEGImages" / f"{stem}.jpg", quality=95
        )
        body = "".join(
            f"<object><name>{n}</name><difficult>{d}</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
            f"<xmax>{c}</xmax><ymax>{e}</ymax></bndbox></object>"
            for n, a, b, c, e, d in objs
        )
        (year / "Annotations" / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>48</width><height>32</height>"
            f"<depth>3</depth></size>{body}</annotation>"
        )
    (year / "ImageSets/Main/test.txt").write_text("000002\n")
    (year / "ImageSets/Main/trainval.txt").write_text("000001\n000002\n")
    test = DetectionDataset(year, image_set="test")
    trainval = DetectionDataset(year, image_set="trainval", format="voc")
    assert (len(test), len(trainval)) == (1, 2)
    assert test.image_root == year
    image, target = test[0]
    assert image.shape == (3, 32, 48)
    names = [test.category_names[k - 1] for k in target["labels"].tolist()]
    assert names == ["cat", "dog"]
    expected = test.annotations.boxes[test.annotations.box_image_index == 0]
    assert target["boxes"].tolist() == expected.astype(np.float32).tolist()
    assert abs(target["boxes"][0, 2].item() - 20) <= 1  # VOC corners, 1-based or not


def test_yolo_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (40, 20)).save(tmp_path / "images" / "a.png")
    Image.new("RGB", (40, 20)).save(tmp_path / "images" / "b.png")
    (tmp_path / "labels" / "a.txt").write_text("1 0.5 0.5 0.25 0.5\n")
    (tmp_path / "labels" / "b.txt").write_text("")
    dataset = DetectionDataset(tmp_path, format="yolo")
    assert dataset.image_root == tmp_path / "images"
    targets = {t["image_id"]: t for _, t in (dataset[0], dataset[1])}
    boxes = [t["boxes"].tolist() for t in targets.values()]
    assert sorted(boxes, key=len) == [[], [[15.0, 5.0, 25.0, 15.0]]]


def test_letterbox_geometry_by_hand() -> None:
    image = np.zeros((20, 40, 3), np.uint8)
    boxes, labels = np.array([[4.0, 2.0, 10.0, 12.0]]), np.array([1])
    plain = build_transforms(True, 64, flip=0.0, color_jitter=0.0)(
        image=image, bboxes=boxes, labels=labels
    )
    flipped = build_transforms(True, 64, flip=1.0, color_jitter=0.0)(
        image=image, bboxes=boxes, labels=labels
    )
    assert plain["image"].shape == (64, 64, 3)
    np.testing.assert_allclose(plain["bboxes"], [[6.4, 3.2, 16.0, 19.2]], rtol=1e-5)
    np.testing.assert_allclose(flipped["bboxes"], [[48.0, 3.2, 57.6, 19.2]], rtol=1e-5)
    assert (plain["image"][32:] == 114).all()  # padding below the resized 64x32 content
    evaluation = build_transforms(False, 64)(image=image + 7, bboxes=boxes, labels=labels)
    assert np.array_equal(evaluation["image"], image + 7)
    np.testing.assert_array_equal(evaluation["bboxes"], boxes)


def test_online_noise_is_seeded_and_off_at_eta_zero() -> None:
    image = np.zeros((64, 64, 3), np.uint8)
    boxes = np.array([[10.0, 10.0, 30.0, 40.0], [40.0, 5.0, 60.0, 20.0]])
    labels = np.array([1, 2])
    kwargs = {"flip": 0.0, "color_jitter": 0.0}
    draw = [
        build_transforms(True, 64, {"eta": 0.3}, seed=seed, **kwargs)(
            image=image, bboxes=boxes, labels=labels
        )["bboxes"]
        for seed in (1, 1, 2)
    ]
    np.testing.assert_array_equal(draw[0], draw[1])
    assert not np.allclose(draw[0], boxes) and not np.allclose(draw[0], draw[2])
    assert (draw[0] >= 0).all() and (draw[0] <= 64).all()
    still = build_transforms(True, 64, {"eta": 0.0}, seed=1, **kwargs)(
        image=image, bboxes=boxes, labels=labels
    )
    np.testing.assert_allclose(still["bboxes"], boxes, atol=1e-4)
    with pytest.raises(ValueError, match="noise"):
        build_transforms(True, 64, noise=0.3)  # type: ignore[arg-type]


def _epoch(loader) -> list[tuple[list[int], torch.Tensor, list[list[float]]]]:
    out = []
    for images, targets in loader:
        out.append(
            (
                [t["image_id"] for t in targets],
                torch.stack(images),
                [t["boxes"].tolist() for t in targets],
            )
        )
    return out


def _same(a, b) -> bool:
    return all(
        x[0] == y[0] and torch.equal(x[1], y[1]) and x[2] == y[2] for x, y in zip(a, b, strict=True)
    )


def test_loader_is_seeded_independent_of_workers_and_replays_epochs(shapes) -> None:
    dataset = DetectionDataset(
        shapes.train_annotations, transforms=build_transforms(True, 64, {"eta": 0.2})
    )
    single = build_dataloader(dataset, batch_size=4, shuffle=True, workers=0, seed=3)
    assert single.pin_memory is torch.cuda.is_available()
    first, second = _epoch(single), _epoch(single)
    assert sorted(i for batch in first for i in batch[0]) == list(range(1, 7))
    assert not _same(first, second)
    parallel = build_dataloader(dataset, batch_size=4, shuffle=True, workers=2, seed=3)
    assert parallel.persistent_workers
    assert _same(_epoch(parallel), first)
    assert _same(_epoch(parallel), second)
    single.sampler.set_epoch(0)
    assert _same(_epoch(single), first)
    other_seed = build_dataloader(dataset, batch_size=4, shuffle=True, workers=0, seed=4)
    assert not _same(_epoch(other_seed), first)
    ordered = build_dataloader(dataset, batch_size=6, shuffle=False, workers=0, seed=3)
    assert _epoch(ordered)[0][0] == list(range(1, 7))


def test_loader_and_collate_arguments(shapes) -> None:
    dataset = DetectionDataset(shapes.val_annotations)
    images, targets = collate_fn([dataset[0], dataset[1]])
    assert len(images) == len(targets) == 2 and isinstance(images, list)
    with pytest.raises(ValueError, match="batch_size >= 1 but got 0"):
        build_dataloader(dataset, batch_size=0, shuffle=False, workers=0, seed=0)
    with pytest.raises(ValueError, match="workers >= 0 but got -1"):
        build_dataloader(dataset, batch_size=1, shuffle=False, workers=-1, seed=0)
    sampler = torch.utils.data.SequentialSampler(range(len(dataset)))
    loader = build_dataloader(
        dataset, batch_size=1, shuffle=True, workers=0, seed=0, sampler=sampler
    )
    assert [t[0]["image_id"] for _, t in loader] == [1, 2]


def test_reseeding_gives_each_transform_its_own_stream() -> None:
    import albumentations as A

    from noisybox.data.transforms import reseed_transforms

    pipeline = A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)])
    image = np.arange(4, dtype=np.uint8).reshape(2, 2, 1).repeat(3, axis=2)
    outcomes = set()
    for seed in range(32):
        reseed_transforms(pipeline, seed)
        out = pipeline(image=image)["image"][..., 0]
        outcomes.add((bool(out[0, 0] in (1, 3)), bool(out[0, 0] in (2, 3))))
    assert outcomes == {(False, False), (True, False), (False, True), (True, True)}
    reseed_transforms(pipeline, 5)
    first = [pipeline(image=image)["image"] for _ in range(4)]
    reseed_transforms(pipeline, 5)
    assert all(np.array_equal(pipeline(image=image)["image"], a) for a in first)
    plain = set()
    for seed in range(32):  # albumentations' own seeding: one seed for every child
        pipeline.set_random_seed(seed)
        out = pipeline(image=image)["image"][..., 0]
        plain.add((bool(out[0, 0] in (1, 3)), bool(out[0, 0] in (2, 3))))
    assert plain <= {(False, False), (True, True)}
