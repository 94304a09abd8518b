"""COCO-style box evaluation: detections of a model, and the one place that calls pycocotools.

:func:`predict` runs a detector over a dataset into COCO result dicts;
:func:`evaluate_model` scores them on the dataset's clean boxes and
:func:`evaluate_checkpoint` does both for a training checkpoint.

:func:`coco_evaluate` scores detections against ground truth with ``COCOeval`` (``iouType
"bbox"``, the standard area ranges and ``maxDets = 100``) and returns named metrics. The
per-threshold APs (``ap50`` ... ``ap95``) are read from ``COCOeval.eval["precision"]``
(``[T, R, K, A, M]``: IoU thresholds, recall points, categories, area ranges, max
detections), averaging only the entries that are not ``-1`` exactly like
``COCOeval.summarize`` does, so ``map``, ``ap50``, ``ap75`` and ``ap_small/medium/large``
equal COCOeval's own ``stats[0:6]``.

``map_75_95`` is the mean of ``ap75, ap80, ..., ap95`` (Alpha-IoU paper, Table 3 and §4.4:
"mAP75:95"), the part of the curve where box accuracy matters.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from noisybox._deprecation import renamed_keywords
from noisybox.boxes import box_convert
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations, to_coco_dict
from noisybox.formats.coco import read_coco_json

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "IOU_THRESHOLDS",
    "METRIC_NAMES",
    "THRESHOLD_METRICS",
    "coco_evaluate",
    "evaluate_checkpoint",
    "evaluate_model",
    "predict",
]

#: The ten COCO IoU thresholds 0.50, 0.55, ..., 0.95.
IOU_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))

#: ``ap50`` ... ``ap95``, one per IoU threshold, in threshold order.
THRESHOLD_METRICS: tuple[str, ...] = tuple(f"ap{round(t * 100)}" for t in IOU_THRESHOLDS)

#: Every key returned by :func:`coco_evaluate`, in display order.
METRIC_NAMES: tuple[str, ...] = (
    *THRESHOLD_METRICS,
    "map",
    "map_75_95",
    "ap_small",
    "ap_medium",
    "ap_large",
)

_AREA_INDEX = {"all": 0, "small": 1, "medium": 2, "large": 3}


def coco_evaluate(
    ground_truth: Any,
    detections: Iterable[Mapping[str, Any]],
    *,
    max_detections: int = 100,
) -> dict[str, float]:
    """Score box detections against ground truth with pycocotools.

    Args:
        ground_truth: an :class:`~noisybox.formats.Annotations` (converted with
            :func:`noisybox.formats.to_coco_dict`), a COCO ground-truth dict (``images``,
            ``annotations`` with ``bbox`` xywh, ``categories``), or a path: a ``.json`` file
            is read as COCO, anything else through :func:`noisybox.formats.read_annotations`.
        detections: COCO result dicts, each with ``image_id``, ``category_id``, ``bbox``
            (absolute ``[x, y, w, h]`` in original image pixels) and ``score``. Not modified.
        max_detections: detections kept per image (COCO: 100), highest scores first.

    Returns:
        ``{name: value}`` for every name in :data:`METRIC_NAMES`, fractions in ``[0, 1]``.
        Metrics that are undefined (no detections, or no ground-truth box in an area range)
        are ``0.0``, not COCOeval's ``-1``.

    Raises:
        ValueError: a detection misses a key, has a malformed box, or names an image or
            category that is not in the ground truth.

    Example:
        >>> gt = {"images": [{"id": 1, "width": 100, "height": 100}],
        ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1,
        ...                        "bbox": [10, 10, 40, 40], "area": 1600, "iscrowd": 0}],
        ...       "categories": [{"id": 1, "name": "square"}]}
        >>> m = coco_evaluate(gt, [{"image_id": 1, "category_id": 1,
        ...                         "bbox": [10, 10, 40, 40], "score": 0.9}])
        >>> round(m["map"], 6), round(m["ap95"], 6), m["ap_small"]
        (1.0, 1.0, 0.0)
        >>> coco_evaluate(gt, [])["map"]
        0.0
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt_dict = _ground_truth_dict(ground_truth)
    results = _result_annotations(detections, gt_dict)
    metrics = dict.fromkeys(METRIC_NAMES, 0.0)
    if not results or not gt_dict["annotations"]:
        return metrics

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        coco_dt = COCO()
        coco_dt.dataset = {
            "images": gt_dict["images"],
            "categories": gt_dict["categories"],
            "annotations": results,
        }
        coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.maxDets = [1, 10, max_detections]
        evaluator.evaluate()
        evaluator.accumulate()

    precision = np.asarray(evaluator.eval["precision"])  # [T, R, K, A, M]
    m = len(evaluator.params.maxDets) - 1
    thresholds = np.asarray(evaluator.params.iouThrs)
    for name, threshold in zip(THRESHOLD_METRICS, IOU_THRESHOLDS, strict=True):
        t = int(np.argmin(np.abs(thresholds - threshold)))
        metrics[name] = _mean_valid(precision[t, :, :, 0, m])
    metrics["map"] = _mean_valid(precision[:, :, :, 0, m])
    metrics["map_75_95"] = float(np.mean([metrics[f"ap{t}"] for t in range(75, 100, 5)]))
    for area in ("small", "medium", "large"):
        metrics[f"ap_{area}"] = _mean_valid(precision[:, :, :, _AREA_INDEX[area], m])
    return metrics


def _mean_valid(values: np.ndarray) -> float:
    """Mean over the entries COCOeval filled in (``-1`` marks "no ground truth")."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else 0.0


def _ground_truth_dict(ground_truth: Any) -> dict[str, Any]:
    """A private COCO ground-truth dict pycocotools can index, whatever the input."""
    if isinstance(ground_truth, (str, os.PathLike)):
        path = Path(ground_truth)
        if path.suffix.lower() == ".json":
            document, _ = read_coco_json(path)
            if not isinstance(document, dict):
                raise NoisyboxError(
                    f"Expected a JSON object at the top of {path} but got {type(document).__name__}"
                )
            source = str(path)
        else:
            document = to_coco_dict(read_annotations(path))
            source = str(path)
    elif isinstance(ground_truth, Mapping):
        document, source = dict(ground_truth), "ground-truth dict"
    else:
        document = to_coco_dict(ground_truth)
        source = str(getattr(ground_truth, "source", "annotations"))

    for key in ("images", "annotations", "categories"):
        if not isinstance(document.get(key), list):
            raise ValueError(f"Expected a COCO ground truth with a '{key}' list in {source}")
    annotations = []
    # COCOeval treats an annotation id of 0 as "unmatched", so ids are renumbered from 1.
    for number, ann in enumerate(document["annotations"], start=1):
        bbox = [float(v) for v in ann["bbox"]]
        annotations.append(
            {
                **ann,
                "id": number,
                "bbox": bbox,
                "area": float(ann.get("area", bbox[2] * bbox[3])),
                "iscrowd": int(ann.get("iscrowd", 0)),
            }
        )
    return {
        "images": [dict(img) for img in document["images"]],
        "annotations": annotations,
        "categories": [dict(cat) for cat in document["categories"]],
    }


def _result_annotations(
    detections: Iterable[Mapping[str, Any]], gt_dict: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Validated copies of the detections in the form ``COCO.loadRes`` would build."""
    image_ids = {img["id"] for img in gt_dict["images"]}
    category_ids = {cat["id"] for cat in gt_dict["categories"]}
    results = []
    for number, det in enumerate(detections, start=1):
        try:
            image_id, category_id = det["image_id"], det["category_id"]
            x, y, w, h = (float(v) for v in det["bbox"])
            score = float(det["score"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                "Expected a detection with image_id, category_id, bbox [x, y, w, h] and "
                f"score but got {dict(det)!r} (detection {number}): {exc}"
            ) from None
        image_id = int(image_id)
        category_id = int(category_id)
        if image_id not in image_ids:
            raise ValueError(
                f"Expected a detection image_id from the ground truth but got {image_id} "
                f"(detection {number})"
            )
        if category_id not in category_ids:
            raise ValueError(
                f"Expected a detection category_id in {sorted(category_ids)} but got "
                f"{category_id} (detection {number})"
            )
        results.append(
            {
                "id": number,
                "image_id": image_id,
                "category_id": category_id,
                "bbox": [x, y, w, h],
                "area": w * h,
                "score": score,
                "iscrowd": 0,
            }
        )
    return results


def predict(
    model: nn.Module,
    dataset: Any,
    *,
    category_ids: Sequence[int],
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    workers: int = 0,
) -> list[dict[str, Any]]:
    """COCO result dicts (``image_id``, ``category_id``, ``bbox`` xywh, ``score``) for ``dataset``.

    Args:
        model: a torchvision detector; it is put in eval mode.
        dataset: a ``DetectionDataset`` without geometric transforms, so boxes come back
            in original image pixels (torchvision detectors resize internally and map
            their detections back).
        category_ids: label ``k`` is category ``category_ids[k - 1]`` (the training set's).
        device: where to run.
        batch_size: images per forward.
        workers: data loader processes.
    """
    import torch

    from noisybox.data import build_dataloader

    device = torch.device(device)
    model.eval()
    loader = build_dataloader(
        dataset, batch_size=batch_size, shuffle=False, workers=workers, seed=0
    )
    results: list[dict[str, Any]] = []
    for images, targets in loader:
        with torch.no_grad():
            outputs = model([img.to(device) for img in images])
        for target, out in zip(targets, outputs, strict=True):
            boxes = out["boxes"].float().cpu()
            if boxes.numel() == 0:
                continue
            xywh = box_convert(boxes, "xyxy", "xywh").tolist()
            for box, score, label in zip(
                xywh, out["scores"].tolist(), out["labels"].tolist(), strict=True
            ):
                if not 1 <= label <= len(category_ids):
                    continue
                results.append(
                    {
                        "image_id": int(target["image_id"]),
                        "category_id": int(category_ids[label - 1]),
                        "bbox": [round(v, 3) for v in box],
                        "score": round(float(score), 5),
                    }
                )
    return results


def evaluate_model(
    model: nn.Module,
    dataset: Any,
    *,
    category_ids: Sequence[int],
    device: torch.device | str = "cpu",
    batch_size: int = 8,
    workers: int = 0,
) -> dict[str, float]:
    """Clean-test metrics of ``model`` on ``dataset`` (see :func:`coco_evaluate`).

    Raises:
        NoisyboxError: the test set lacks a category the model was trained on.
    """
    names = set(dataset.category_ids)
    missing = [c for c in category_ids if c not in names]
    if missing:
        raise NoisyboxError(
            f"Expected the test annotations {dataset.annotations.source} to have the trained "
            f"categories {list(category_ids)} but got none with id {missing[0]}"
        )
    detections = predict(
        model,
        dataset,
        category_ids=category_ids,
        device=device,
        batch_size=batch_size,
        workers=workers,
    )
    was_training = model.training
    metrics = coco_evaluate(dataset.annotations, detections)
    model.train(was_training)
    return metrics


@renamed_keywords(images="image_root")
def evaluate_checkpoint(
    checkpoint: str | os.PathLike[str],
    annotations: Any,
    image_root: str | os.PathLike[str] | None = None,
    *,
    device: str = "auto",
    batch_size: int = 8,
    format: str | None = None,
    workers: int = 0,
) -> dict[str, float]:
    """Evaluate a training checkpoint on (clean) test annotations.

    Args:
        checkpoint: ``last.pt`` written by :func:`noisybox.engine.train` (read with ``weights_only=True``).
        annotations: test annotations (path or ``Annotations``).
        image_root: their image root (``None``: the format's default).
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        batch_size: images per forward.
        format: annotation format (default: detected).
        workers: data loader processes.

    Returns:
        ``coco_evaluate``'s metrics (``ap50`` ... ``ap95``, ``map``, ``map_75_95``, ...).

    Raises:
        NoisyboxError: unreadable checkpoint or annotations, or categories that do not match.
    """
    from noisybox.data import DetectionDataset
    from noisybox.engine.checkpoint import load_checkpoint
    from noisybox.engine.distributed import select_device
    from noisybox.engine.model import model_from_checkpoint

    state = load_checkpoint(checkpoint)
    try:
        dev = select_device(device)
    except ValueError as exc:
        raise NoisyboxError(str(exc)) from None
    model = model_from_checkpoint(state)  # the moving average if training evaluated it
    model.to(dev)
    dataset = DetectionDataset(annotations, image_root, transforms=None, format=format)
    return evaluate_model(
        model,
        dataset,
        category_ids=state["category_ids"],
        device=dev,
        batch_size=batch_size,
        workers=workers,
    )
