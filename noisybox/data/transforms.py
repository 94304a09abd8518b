"""Augmentation pipelines (albumentations, bbox-aware) for detection training and evaluation.

Training: optional online box noise (:class:`noisybox.noise.BoxNoise`, on the original
image so that the noise sees the true image size), a horizontal flip, a letterbox to a
square ``image_size`` (``LongestMaxSize`` + ``PadIfNeeded``: content at the top-left, grey
padding at the bottom and right) and a light colour jitter.

Evaluation: no geometric change at all. Images keep their original size, so targets and
detections stay in original image pixels, which is what COCO evaluation needs. torchvision
detectors resize internally (``GeneralizedRCNNTransform``) and map their detections back
to the input size; built with ``min_size = max_size = image_size`` they scale the longest
side to ``image_size`` exactly like the training letterbox, and pad at the bottom-right
like its top-left placement, so train and test see objects at the same scale.

Every pipeline takes and returns albumentations' keywords: ``image`` (``uint8[H, W, 3]``),
``bboxes`` (``float[N, 4]`` absolute ``xyxy``, albumentations' ``"pascal_voc"``) and
``labels`` (``int[N]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import albumentations as A
import cv2

from noisybox._seeds import child_seeds
from noisybox.noise.spec import NoiseSpec
from noisybox.noise.transform import BoxNoise

__all__ = ["LETTERBOX_FILL", "build_transforms", "reseed_transforms"]

#: Grey used for letterbox padding (the YOLO convention; neutral for a colour jitter).
LETTERBOX_FILL = 114


def build_transforms(
    train: bool,
    image_size: int,
    noise: Mapping[str, Any] | NoiseSpec | None = None,
    *,
    flip: float = 0.5,
    color_jitter: float = 0.2,
    scale_range: tuple[float, float] | None = None,
    seed: int | None = None,
) -> A.Compose:
    """Build the albumentations pipeline of a split.

    Args:
        train: training pipeline (noise, letterbox, flip, jitter) or evaluation
            pipeline (identity geometry, see the module docstring).
        image_size: side of the square training letterbox in pixels.
        noise: a :class:`~noisybox.noise.NoiseSpec` or the keyword arguments of
            :class:`noisybox.noise.BoxNoise` (e.g. ``{"eta": 0.3, "noise_model": "uniform"}``)
            to perturb training boxes online, a new draw every time an image is loaded.
            Ignored for evaluation.
        flip: probability of a horizontal flip (training).
        color_jitter: strength of brightness, contrast and saturation jitter (``0`` turns
            it off); hue moves by a tenth of it (training).
        scale_range: ``(low, high)`` zoom of the letterboxed image, drawn uniformly per
            image (``A.Affine`` about the centre, with a random shift of up to half the
            zoom's slack, grey fill; boxes are moved with it, cut at the border and
            dropped when they leave the image). ``None`` (default) keeps the scale.
        seed: seed of the pipeline's random generators. The data loader of
            :func:`~noisybox.data.build_dataloader` re-seeds per item, so this only
            matters when the pipeline is called directly.

    Returns:
        An ``A.Compose`` called as ``pipeline(image=..., bboxes=..., labels=...)``.

    Raises:
        ValueError: ``image_size`` is not positive or ``noise`` is not a mapping.

    Example:
        >>> import numpy as np
        >>> pipeline = build_transforms(True, 64, seed=0)
        >>> out = pipeline(image=np.zeros((32, 16, 3), np.uint8),
        ...                bboxes=np.array([[0.0, 0.0, 8.0, 16.0]]), labels=np.array([1]))
        >>> out["image"].shape, out["bboxes"].round(1).tolist() in ([[0, 0, 16, 32]], [[16, 0, 32, 32]])
        ((64, 64, 3), True)
    """
    if int(image_size) != image_size or image_size < 1:
        raise ValueError(f"Expected image_size to be a positive integer but got {image_size!r}")
    transforms = (
        _training_transforms(int(image_size), noise, flip, color_jitter, scale_range)
        if train
        else []
    )
    if not transforms:
        # Nothing moves the boxes: skip albumentations' normalise/denormalise round trip
        # (float32), so evaluation targets are the annotation values bit for bit.
        pipeline = A.Compose([])
    else:
        pipeline = A.Compose(
            transforms,
            bbox_params=A.BboxParams(
                format="pascal_voc",
                label_fields=["labels"],
                clip=True,
                filter_invalid_bboxes=True,
            ),
        )
    reseed_transforms(pipeline, seed)
    return pipeline


def _training_transforms(
    image_size: int,
    noise: Mapping[str, Any] | NoiseSpec | None,
    flip: float,
    color_jitter: float,
    scale_range: tuple[float, float] | None,
) -> list[Any]:
    """The training pipeline's transforms, in order (see :func:`build_transforms`)."""
    transforms: list[Any] = []
    if noise is not None:
        if not isinstance(noise, (Mapping, NoiseSpec)):
            raise ValueError(
                f"Expected noise to be a NoiseSpec or a dict of BoxNoise options but got {noise!r}"
            )

        transforms.append(
            BoxNoise(spec=noise) if isinstance(noise, NoiseSpec) else BoxNoise(**dict(noise))
        )
    transforms += [
        A.HorizontalFlip(p=flip),
        A.LongestMaxSize(max_size=image_size, interpolation=cv2.INTER_LINEAR),
        A.PadIfNeeded(
            min_height=image_size,
            min_width=image_size,
            position="top_left",
            border_mode=cv2.BORDER_CONSTANT,
            fill=LETTERBOX_FILL,
        ),
    ]
    if scale_range is not None:
        low, high = (float(v) for v in scale_range)
        if not 0 < low <= high:
            raise ValueError(
                f"Expected scale_range (low, high) with 0 < low <= high but got {scale_range!r}"
            )
        shift = max(abs(1 - low), abs(high - 1)) / 2
        transforms.append(
            A.Affine(
                scale=(low, high),
                translate_percent=(-shift, shift),
                keep_ratio=True,
                interpolation=cv2.INTER_LINEAR,
                border_mode=cv2.BORDER_CONSTANT,
                fill=LETTERBOX_FILL,
                p=1.0,
            )
        )
    if color_jitter > 0:
        transforms.append(
            A.ColorJitter(
                brightness=color_jitter,
                contrast=color_jitter,
                saturation=color_jitter,
                hue=color_jitter / 10,
                p=0.8,
            )
        )
    return transforms


def reseed_transforms(pipeline: Any, seed: int | None) -> None:
    """Seed an albumentations pipeline, giving every transform its own stream.

    ``Compose.set_random_seed`` hands the same seed to every child, so a flip and a jitter
    with the same probability would always fire together; here each child gets an
    independent seed spawned from ``seed`` (``None`` draws fresh OS entropy).

    Args:
        pipeline: an ``A.Compose`` (other callables are left alone).
        seed: the pipeline seed.
    """
    if not hasattr(pipeline, "set_random_seed"):
        return
    pipeline.set_random_seed(seed)
    children = getattr(pipeline, "transforms", [])
    if seed is None or not children:
        return
    for child, child_seed in zip(children, child_seeds(int(seed), len(children)), strict=True):
        if hasattr(child, "set_random_seed"):
            reseed_transforms(child, child_seed)
