"""The embedded "shapes" detection dataset: deterministic, generated in seconds, no download.

Each image is a textured background (colour gradient, stripes, low-frequency blotches, all
with pixel noise) carrying a few filled shapes of five classes (rectangle, ellipse, triangle,
cross, ring) with random size, aspect ratio, rotation and colour. Objects may overlap; a new
object is only accepted when it leaves every earlier object's tight box unchanged and at
least half of its pixels visible, so the ground-truth box of every object is exactly the
extent of its visible pixels (pixel-edge coordinates: a shape covering pixel columns
``3..9`` has ``x1 = 3, x2 = 10``). Shapes are drawn without anti-aliasing, so the boxes are
tight to the pixel and AP at IoU 0.85-0.95 measures real localisation quality.

Sizes are drawn as a fraction of the image side in three bands that, at the default 128 px,
fall into COCO's small (< 32² px), medium and large (>= 96² px) area ranges, so ``ap_small``,
``ap_medium`` and ``ap_large`` are all defined.

Layout written by :func:`make_shapes_dataset`::

    OUT/
      images/train/000001.png ...
      images/val/000001.png ...
      images/calib/000001.png ...
      instances_train.json     # COCO; file_name "images/train/000001.png" (relative to OUT)
      instances_val.json       # the benchmark's clean test split (its historical name)
      instances_calib.json     # the validation split calibration evaluates on

The benchmark trains on ``train`` and tests on ``val`` (the name it had before the
validation split existed, kept so that published studies regenerate byte-identical);
``calib`` is a held-out validation split, drawn from its own stream (split code 2), that
``noisybox calibrate`` evaluates on so that no choice of a study looks at its test split.

``file_name`` is relative to the dataset root ``OUT`` (the folder holding the json files),
which is also :class:`~noisybox.data.DetectionDataset`'s default image root for COCO files.
Image ``i`` of a split depends only on ``(seed, split, i)``: a larger ``num_train`` keeps
the first images identical.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from noisybox._fileio import atomic_write_bytes, atomic_write_json, make_dirs, staged
from noisybox._limits import MAX_DATASET_IMAGES, MAX_IMAGE_SIZE, MAX_OBJECTS, check_limit
from noisybox._seeds import stream_rng

__all__ = [
    "SHAPE_CLASSES",
    "ShapesDataset",
    "draw_shapes_image",
    "make_shapes_dataset",
]

#: Class names; category id ``k + 1`` is ``SHAPE_CLASSES[k]``.
SHAPE_CLASSES: tuple[str, ...] = ("rectangle", "ellipse", "triangle", "cross", "ring")

# Box side as a fraction of the image side, per COCO size band at 128 px
# (small < 32 px, medium 32-96 px, large >= 96 px) and the probability of each band.
_SIZE_BANDS = ((0.0625, 0.23), (0.28, 0.70), (0.78, 0.95))
_SIZE_PROBS = (0.42, 0.43, 0.15)
_SPLIT_CODES = {"train": 0, "val": 1, "calib": 2}


@dataclasses.dataclass(frozen=True)
class ShapesDataset:
    """Where :func:`make_shapes_dataset` wrote a dataset.

    Attributes:
        root: the dataset folder; also the image root (COCO ``file_name`` is relative to it).
        train_annotations: ``root/instances_train.json``.
        val_annotations: ``root/instances_val.json`` (the benchmark's test split).
        calib_annotations: ``root/instances_calib.json``, the validation split
            (``None`` when ``num_calib`` was 0).
        categories: class names, category id ``k + 1`` for ``categories[k]``.
        num_train: number of training images.
        num_val: number of images of ``val`` (the benchmark's test split).
        image_size: image side in pixels (images are square).
        num_calib: number of validation images.
    """

    root: Path
    train_annotations: Path
    val_annotations: Path
    categories: tuple[str, ...]
    num_train: int
    num_val: int
    image_size: int
    calib_annotations: Path | None = None
    num_calib: int = 0

    @property
    def image_root(self) -> Path:
        """The folder COCO ``file_name`` entries are relative to (``root``)."""
        return self.root


_HIGH = {
    "num_train": MAX_DATASET_IMAGES,
    "num_val": MAX_DATASET_IMAGES,
    "num_calib": MAX_DATASET_IMAGES,
    "image_size": MAX_IMAGE_SIZE,
    "max_objects": MAX_OBJECTS,
}


def make_shapes_dataset(
    out_dir: str | os.PathLike[str],
    *,
    num_train: int = 800,
    num_val: int = 200,
    num_calib: int = 200,
    image_size: int = 128,
    max_objects: int = 6,
    seed: int = 0,
    overwrite: bool = False,
) -> ShapesDataset:
    """Write the synthetic shapes dataset as COCO (PNG images + two json files).

    Args:
        out_dir: output folder, created if missing.
        num_train: training images (``>= 1``).
        num_val: images of ``val``, the benchmark's clean test split (``>= 1``).
        num_calib: images of ``calib``, the validation split calibration evaluates on
            (``>= 0``; 200 by default, the size of ``val``). Its images come from their
            own stream: ``train`` and ``val`` are the same whatever ``num_calib`` is.
        image_size: side of the square images in pixels (``>= 32``).
        max_objects: objects per image are drawn uniformly from ``1..max_objects``
            (fewer when no free spot is found).
        seed: the dataset is a pure function of ``seed`` and the sizes.
        overwrite: replace the annotation files of an existing dataset in ``out_dir``.

    Returns:
        The paths and sizes of the written dataset. It is written whole or not at all: if
        anything fails, the files and folders this call created are removed.

    Raises:
        ValueError: a size is out of range (upper bounds: :mod:`noisybox._limits`) or the
            seed is negative.
        FileExistsError: ``out_dir`` already holds a dataset and ``overwrite`` is false.

    Example:
        >>> import tempfile
        >>> ds = make_shapes_dataset(tempfile.mkdtemp(), num_train=2, num_val=1, image_size=64)
        >>> ds.train_annotations.name, ds.categories[:2], ds.num_val
        ('instances_train.json', ('rectangle', 'ellipse'), 1)
    """
    for name, value, low in (
        ("num_train", num_train, 1),
        ("num_val", num_val, 1),
        ("num_calib", num_calib, 0),
        ("image_size", image_size, 32),
        ("max_objects", max_objects, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"Expected {name} to be an integer >= {low} but got {value!r}")
        check_limit(name, value, _HIGH[name])
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ValueError(f"Expected seed to be an integer >= 0 but got {seed!r}")
    root = Path(out_dir)
    train_json, val_json = root / "instances_train.json", root / "instances_val.json"
    calib_json = root / "instances_calib.json"
    if not overwrite and (train_json.exists() or val_json.exists()):
        raise FileExistsError(
            f"Expected no dataset in {root} but got an existing {train_json.name}; "
            "pass overwrite=True to replace it"
        )
    with staged():
        for split, count, json_path in (
            ("train", num_train, train_json),
            ("val", num_val, val_json),
            ("calib", num_calib, calib_json),
        ):
            if count == 0:
                continue
            document = _write_split(
                root, split, int(count), int(image_size), int(max_objects), seed
            )
            atomic_write_json(
                json_path, document, indent=None, separators=(",", ":"), newline=False
            )
    return ShapesDataset(
        root=root,
        train_annotations=train_json,
        val_annotations=val_json,
        categories=SHAPE_CLASSES,
        num_train=int(num_train),
        num_val=int(num_val),
        image_size=int(image_size),
        calib_annotations=calib_json if num_calib else None,
        num_calib=int(num_calib),
    )


def draw_shapes_image(
    rng: np.random.Generator,
    image_size: int = 128,
    max_objects: int = 6,
    *,
    return_instances: bool = False,
) -> tuple[np.ndarray, ...]:
    """Draw one image of the shapes dataset.

    Args:
        rng: the only source of randomness.
        image_size: side of the square image in pixels.
        max_objects: upper bound of the number of objects.
        return_instances: also return the instance map.

    Returns:
        ``(image, boxes, labels)``: ``uint8[S, S, 3]`` RGB, ``float64[N, 4]`` tight absolute
        ``xyxy`` boxes in pixel-edge coordinates, ``int64[N]`` class indices into
        :data:`SHAPE_CLASSES`; with ``return_instances`` a fourth ``int32[S, S]`` map of the
        object index visible at each pixel (``-1`` for background).

    Example:
        >>> image, boxes, labels = draw_shapes_image(np.random.default_rng(0), 64)
        >>> image.shape, image.dtype, boxes.shape[1], bool((boxes[:, 2:] > boxes[:, :2]).all())
        ((64, 64, 3), dtype('uint8'), 4, True)
    """
    size = int(image_size)
    canvas = _background(rng, size)
    instance = np.full((size, size), -1, dtype=np.int32)
    labels: list[int] = []
    count = int(rng.integers(1, max_objects + 1))
    # Larger objects first: later (smaller) ones may overlap them without hiding them.
    bands = np.sort(rng.choice(len(_SIZE_BANDS), size=count, p=_SIZE_PROBS))[::-1]
    for band in bands:
        for _ in range(10):
            label = int(rng.integers(len(SHAPE_CLASSES)))
            placed = _sample_shape(rng, label, int(band), size)
            if placed is None:
                continue
            (y0, x0), mask = placed
            window = (slice(y0, y0 + mask.shape[0]), slice(x0, x0 + mask.shape[1]))
            if not _keeps_earlier_boxes(instance, window, mask):
                continue
            colour = _object_colour(rng, canvas[window][mask])
            patch = canvas[window]
            texture = rng.normal(0.0, rng.uniform(2.0, 10.0), size=(int(mask.sum()), 1))
            shade = _linear_ramp(rng, mask.shape, amplitude=rng.uniform(0.0, 30.0))[mask]
            patch[mask] = colour[None, :] + texture + shade[:, None]
            instance[window][mask] = len(labels)
            labels.append(label)
            break

    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * np.float32(
        rng.uniform(1.0, 6.0)
    )
    image = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    boxes = np.zeros((len(labels), 4), dtype=np.float64)
    for index in range(len(labels)):
        ys, xs = np.nonzero(instance == index)
        boxes[index] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    if return_instances:
        return image, boxes, np.asarray(labels, dtype=np.int64), instance
    return image, boxes, np.asarray(labels, dtype=np.int64)


def _write_split(
    root: Path, split: str, count: int, size: int, max_objects: int, seed: int
) -> dict[str, Any]:
    """Draw and save the images of one split; return its COCO document."""
    make_dirs(root / "images" / split)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for number in range(1, count + 1):
        rng = stream_rng(int(seed), _SPLIT_CODES[split], number)
        image, boxes, labels = draw_shapes_image(rng, size, max_objects)
        file_name = f"images/{split}/{number:06d}.png"
        _save_png(root / file_name, image)
        images.append({"id": number, "file_name": file_name, "width": size, "height": size})
        for box, label in zip(boxes, labels, strict=True):
            x1, y1, x2, y2 = (int(v) for v in box)
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": number,
                    "category_id": int(label) + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1],
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                }
            )
    return {
        "info": {
            "description": "noisybox synthetic shapes",
            "split": split,
            "seed": int(seed),
            "image_size": size,
            "max_objects": max_objects,
            "generator": "noisybox.data.make_shapes_dataset",
        },
        "images": images,
        "annotations": annotations,
        "categories": [
            {"id": k + 1, "name": name, "supercategory": "shape"}
            for k, name in enumerate(SHAPE_CLASSES)
        ],
    }


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """``float32[S, S, 3]`` a gradient, stripes or blotches between two random colours."""
    low, high = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
    kind = int(rng.integers(3))
    if kind == 0:
        mix = _linear_ramp(rng, (size, size), amplitude=1.0) + 0.5
    elif kind == 1:
        angle = rng.uniform(0, math.pi)
        period = rng.uniform(4.0, size / 3)
        ys, xs = np.arange(size)[:, None], np.arange(size)[None, :]
        phase = (xs * math.cos(angle) + ys * math.sin(angle)) * (2 * math.pi / period)
        mix = 0.5 + rng.uniform(0.15, 0.5) * np.sin(phase + rng.uniform(0, 2 * math.pi))
    else:
        cells = int(rng.integers(3, 9))
        coarse = Image.fromarray(rng.uniform(0, 1, size=(cells, cells)).astype(np.float32))
        mix = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float64)
    weight = np.clip(mix, 0.0, 1.0).astype(np.float32)[..., None]
    grain = rng.standard_normal((size, size, 1), dtype=np.float32) * np.float32(
        rng.uniform(2.0, 12.0)
    )
    colours = low.astype(np.float32) * (1 - weight) + high.astype(np.float32) * weight
    return colours + grain


def _linear_ramp(rng: np.random.Generator, shape: tuple[int, ...], amplitude: float) -> np.ndarray:
    """``float64[H, W]`` a ramp from ``-amplitude / 2`` to ``amplitude / 2`` in a random direction."""
    height, width = shape[0], shape[1]
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.arange(height)[:, None], np.arange(width)[None, :]
    ramp = xs / max(width - 1, 1) * math.cos(angle) + ys / max(height - 1, 1) * math.sin(angle)
    span = float(ramp.max() - ramp.min()) or 1.0
    return (ramp - ramp.min()) / span * amplitude - amplitude / 2


def _sample_shape(
    rng: np.random.Generator, label: int, band: int, size: int
) -> tuple[tuple[int, int], np.ndarray] | None:
    """A random shape of class ``label`` and size band: ``((y0, x0), bool[h, w] mask)``."""
    side = rng.uniform(*_SIZE_BANDS[band]) * size
    aspect = math.exp(rng.uniform(-0.5, 0.5))
    half_w, half_h = side * math.sqrt(aspect) / 2, side / math.sqrt(aspect) / 2
    angle = rng.uniform(-math.pi / 6, math.pi / 6)
    if label == 2:  # triangles point in any of four directions
        angle += int(rng.integers(4)) * math.pi / 2
    cos, sin = math.cos(angle), math.sin(angle)
    extent_x = abs(half_w * cos) + abs(half_h * sin)
    extent_y = abs(half_w * sin) + abs(half_h * cos)
    shrink = min(1.0, (size / 2 - 0.5) / max(extent_x, extent_y))
    half_w, half_h, extent_x, extent_y = (v * shrink for v in (half_w, half_h, extent_x, extent_y))
    cx = rng.uniform(extent_x, size - extent_x)
    cy = rng.uniform(extent_y, size - extent_y)
    x0, x1 = max(int(math.floor(cx - extent_x)), 0), min(int(math.ceil(cx + extent_x)), size)
    y0, y1 = max(int(math.floor(cy - extent_y)), 0), min(int(math.ceil(cy + extent_y)), size)
    dx = np.arange(x0, x1, dtype=np.float64)[None, :] + 0.5 - cx
    dy = np.arange(y0, y1, dtype=np.float64)[:, None] + 0.5 - cy
    u = (dx * cos + dy * sin) / half_w
    v = (-dx * sin + dy * cos) / half_h
    if label == 0:
        mask = (np.abs(u) <= 1) & (np.abs(v) <= 1)
    elif label == 1:
        mask = u * u + v * v <= 1
    elif label == 2:
        mask = (v <= 1) & (np.abs(u) <= (v + 1) / 2)
    elif label == 3:
        arm = rng.uniform(0.22, 0.4)
        mask = ((np.abs(u) <= arm) & (np.abs(v) <= 1)) | ((np.abs(v) <= arm) & (np.abs(u) <= 1))
    else:
        radius = u * u + v * v
        mask = (radius <= 1) & (radius >= rng.uniform(0.35, 0.6) ** 2)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size < 4 or cols.size < 4 or mask.sum() < 12:
        return None
    mask = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    return (y0 + int(rows[0]), x0 + int(cols[0])), mask


def _keeps_earlier_boxes(
    instance: np.ndarray, window: tuple[slice, slice], mask: np.ndarray
) -> bool:
    """Whether painting ``mask`` keeps every earlier object's tight box and half its pixels."""
    covered = np.unique(instance[window][mask])
    for index in covered[covered >= 0]:
        before = instance == index
        after = before.copy()
        after[window] &= ~mask
        if int(after.sum()) * 2 < int(before.sum()):
            return False
        if not _same_extent(after.any(axis=1), before.any(axis=1)):
            return False
        if not _same_extent(after.any(axis=0), before.any(axis=0)):
            return False
    return True


def _same_extent(after: np.ndarray, before: np.ndarray) -> bool:
    """Whether two occupancy profiles have the same first and last occupied index."""
    a, b = np.flatnonzero(after), np.flatnonzero(before)
    return bool(a.size and a[0] == b[0] and a[-1] == b[-1])


def _object_colour(rng: np.random.Generator, under: np.ndarray) -> np.ndarray:
    """``float64[3]`` a colour far enough from the background it is painted on."""
    mean = under.mean(axis=0) if under.size else np.full(3, 127.5)
    best, best_distance = mean, -1.0
    for _ in range(8):
        colour = rng.uniform(0, 255, size=3)
        distance = float(np.linalg.norm(colour - mean))
        if distance >= 110:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


def _save_png(path: Path, image: np.ndarray) -> None:
    """Save ``uint8[H, W, 3]`` as PNG (through :mod:`noisybox._fileio`)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", compress_level=1)
    atomic_write_bytes(path, buffer.getvalue())
