"""Export annotation sets of any format as an Ultralytics-style YOLO dataset folder.

``out/images/<split>/<image>`` are links to the original images, ``out/labels/<split>/
<image stem>.txt`` hold ``class cx cy w h`` normalised to the image, ``out/data.yaml`` names
the splits and classes. Category ids map to YOLO classes ``0..K-1`` in sorted id order;
:func:`yolo_class_ids` gives that order back, to map predictions to category ids.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from noisybox._fileio import atomic_dir, atomic_write_json
from noisybox.boxes import box_convert
from noisybox.errors import NoisyboxError
from noisybox.formats._io import MANIFEST_NAME
from noisybox.formats.annotations import Annotations

__all__ = ["export_yolo_dataset", "yolo_class_ids", "yolo_label_lines"]


def yolo_class_ids(splits: Mapping[str, Annotations]) -> list[int]:
    """Category ids of all splits in YOLO class order (class ``k`` is ``ids[k]``)."""
    ids: set[int] = set()
    for ann in splits.values():
        ids.update(int(k) for k in ann.category_names)
        ids.update(int(k) for k in np.unique(ann.categories))
    return sorted(ids)


def yolo_label_lines(boxes: np.ndarray, image_size: np.ndarray, classes: np.ndarray) -> list[str]:
    """``class cx cy w h`` lines of absolute ``xyxy`` boxes in one image.

    Boxes are clipped to the image (Ultralytics drops every label of an image with a
    coordinate outside ``[0, 1]``); boxes with no area left are skipped.

    Args:
        boxes: ``float[N, 4]`` absolute ``xyxy``.
        image_size: ``(width, height)``.
        classes: ``int[N]`` YOLO class indices.

    >>> yolo_label_lines(np.array([[-2.0, 0.0, 6.0, 5.0]]), np.array([10.0, 10.0]), np.array([1]))
    ['1 0.300000 0.250000 0.600000 0.500000']
    """
    size = np.array([image_size[0], image_size[1]] * 2, dtype=np.float64)
    clipped = np.clip(np.asarray(boxes, dtype=np.float64), 0.0, size)
    classes = np.asarray(classes)
    if len(classes) != len(clipped):
        raise ValueError(f"Expected one class per box but got {len(classes)} for {len(clipped)}")
    kept = ~((clipped[:, 2] <= clipped[:, 0]) | (clipped[:, 3] <= clipped[:, 1]))
    normalised = box_convert(clipped[kept], "xyxy", "cxcywh") / size
    return [
        f"{int(k)} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}"
        for (cx, cy, bw, bh), k in zip(normalised.tolist(), classes[kept].tolist(), strict=True)
    ]


def export_yolo_dataset(
    splits: Mapping[str, tuple[Annotations, str | os.PathLike[str]]],
    out_dir: str | os.PathLike[str],
    *,
    class_ids: list[int] | None = None,
) -> Path:
    """Write ``splits`` (e.g. ``{"train": (ann, image_root), "val": ...}``) as a YOLO folder.

    Crowd boxes are left out. Written atomically: an earlier export at ``out_dir`` is
    replaced, any other non-empty folder refused.

    Args:
        splits: split name -> (annotations, the folder their ``file_names`` are relative to).
        out_dir: the dataset folder.
        class_ids: category ids in class order (default :func:`yolo_class_ids`).

    Returns:
        The ``data.yaml`` path (absolute paths, Ultralytics' ``path``/``train``/``val``/
        ``names`` keys).

    Raises:
        NoisyboxError: a missing image, or a category outside ``class_ids``.
    """
    annotations = {name: ann for name, (ann, _) in splits.items()}
    ids = list(class_ids) if class_ids is not None else yolo_class_ids(annotations)
    index = {cid: k for k, cid in enumerate(ids)}
    names: dict[int, str] = {}
    for ann in annotations.values():
        for cid, name in ann.category_names.items():
            names.setdefault(int(cid), str(name))
    target = Path(out_dir).resolve()
    with atomic_dir(target, manifest=MANIFEST_NAME) as tmp:
        for split, (ann, image_root) in splits.items():
            _write_split(tmp, split, ann, Path(image_root), index)
        lines = [f"path: {json.dumps(str(target))}"]
        lines += [f"{split}: images/{split}" for split in splits]
        lines.append("names:")
        lines += [f"  {k}: {json.dumps(names.get(cid, str(cid)))}" for k, cid in enumerate(ids)]
        (tmp / "data.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        atomic_write_json(tmp / MANIFEST_NAME, {"class_ids": ids, "splits": list(splits)}, indent=2)
    return target / "data.yaml"


def _write_split(
    root: Path, split: str, ann: Annotations, image_root: Path, index: Mapping[int, int]
) -> None:
    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    keep = ~np.asarray(ann.iscrowd, dtype=bool)
    unknown = sorted(set(int(c) for c in ann.categories[keep]) - set(index))
    if unknown:
        raise NoisyboxError(
            f"Expected categories in {sorted(index)} but got {unknown} in {ann.source}"
        )
    order = np.argsort(ann.box_image_index, kind="stable")
    starts = np.searchsorted(ann.box_image_index[order], np.arange(ann.num_images + 1))
    for i, file_name in enumerate(ann.file_names):
        source = (image_root / file_name).resolve()
        if not source.is_file():
            raise NoisyboxError(f"Expected an image at {source} but found none ({ann.source})")
        # one flat folder: a nested "images/" in a file name would confuse Ultralytics'
        # images -> labels path rule
        flat = file_name.replace("\\", "/").replace("/", "__")
        os.symlink(source, images / flat)
        rows = order[starts[i] : starts[i + 1]]
        rows = rows[keep[rows]]
        classes = np.array([index[int(c)] for c in ann.categories[rows]], dtype=np.int64)
        lines = yolo_label_lines(ann.boxes[rows], ann.image_sizes[i], classes)
        text = "".join(line + "\n" for line in lines)
        (labels / f"{Path(flat).stem}.txt").write_text(text, encoding="utf-8")
