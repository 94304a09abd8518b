"""A torch detection dataset over any annotation format, its collate function and loader.

:class:`DetectionDataset` pairs an :class:`~noisybox.formats.Annotations` (COCO json, a
Pascal VOC devkit split or a YOLO folder, read with :func:`noisybox.formats.read_annotations`)
with an image folder. The annotations may be a noisy file written by ``noisybox corrupt``
while the images come from the clean dataset: only ``file_name`` and the image size have to
agree.

Targets follow torchvision's detection API: ``boxes`` ``FloatTensor[N, 4]`` absolute
``xyxy``, ``labels`` ``Int64Tensor[N]`` in ``1..K`` (``0`` is background), ``image_id``.
Crowd boxes are left out of the targets (COCO evaluation still sees them through the
ground-truth file); boxes are clipped to the image and boxes left with no area are dropped
(counted in ``num_dropped_boxes``).

:func:`build_dataloader` seeds every item's augmentation from ``(seed, epoch, index)``, so a
run is reproducible for any number of workers and an epoch can be replayed exactly after a
resume (``loader.sampler.set_epoch(epoch)``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from noisybox._seeds import stream_seed
from noisybox.errors import NoisyboxError
from noisybox.formats import read_annotations
from noisybox.formats.annotations import Annotations
from noisybox.formats.images import default_image_root, image_path, load_image

__all__ = ["DetectionDataset", "SeededSampler", "build_dataloader", "collate_fn"]

Target = dict[str, Any]


class DetectionDataset(Dataset):
    """Images and box targets for torchvision detectors.

    Args:
        annotations: an :class:`~noisybox.formats.Annotations` or a path read with
            :func:`noisybox.formats.read_annotations` (COCO json, VOC devkit, YOLO folder).
        image_root: folder the annotations' ``file_names`` are relative to. Default: for a
            COCO file its folder; for VOC and YOLO the folder the reader resolved the
            file names against (the devkit year folder, the YOLO images folder).
        transforms: an albumentations-style callable
            ``transforms(image=uint8[H, W, 3], bboxes=float[N, 4] xyxy, labels=int[N])``
            returning the same keys (see :func:`noisybox.data.build_transforms`); ``None``
            returns the images and boxes unchanged.
        format: ``"coco"``, ``"voc"`` or ``"yolo"`` when ``annotations`` is a path
            (default: detected).
        image_set: VOC split name (``"trainval"``, ``"test"``) when reading a devkit.

    Attributes:
        annotations: the :class:`~noisybox.formats.Annotations` read.
        image_root: the resolved image root.
        category_ids: label ``k`` (``1..K``) stands for category id ``category_ids[k - 1]``.
        category_names: the names in label order.
        num_classes: ``K + 1`` (background included), as torchvision detectors expect.
        num_dropped_boxes: boxes with no area inside their image, left out of the targets.

    Raises:
        NoisyboxError: an image path escapes the image root (absolute or ``..``), the
            first image is not under the image root, or a box is not finite.

    Example:
        >>> import tempfile
        >>> from noisybox.data import make_shapes_dataset
        >>> shapes = make_shapes_dataset(tempfile.mkdtemp(), num_train=2, num_val=1, image_size=64)
        >>> dataset = DetectionDataset(shapes.train_annotations)
        >>> image, target = dataset[0]
        >>> image.shape, dataset.num_classes, target["boxes"].shape[1]
        (torch.Size([3, 64, 64]), 6, 4)
    """

    def __init__(
        self,
        annotations: Annotations | str | os.PathLike[str],
        image_root: str | os.PathLike[str] | None = None,
        *,
        transforms: Callable[..., dict[str, Any]] | None = None,
        format: str | None = None,
        image_set: str | None = None,
    ) -> None:
        if not isinstance(annotations, Annotations):
            read_kwargs: dict[str, Any] = {}
            if image_set is not None:
                read_kwargs["image_set"] = image_set
            if image_root is not None:
                read_kwargs["image_root"] = str(image_root)
            annotations = read_annotations(str(annotations), format, **read_kwargs)
        self.annotations = annotations
        self.image_root = (
            Path(image_root) if image_root is not None else default_image_root(annotations)
        )
        self.transforms = transforms

        category_ids = sorted(
            {int(c) for c in annotations.category_names} | {int(c) for c in annotations.categories}
        )
        self.category_ids: list[int] = category_ids
        self.category_names: list[str] = [
            str(annotations.category_names.get(c, c)) for c in category_ids
        ]
        self.num_classes = len(category_ids) + 1

        self._paths = [
            image_path(annotations, i, self.image_root) for i in range(annotations.num_images)
        ]
        if self._paths and not self._paths[0].is_file():
            raise NoisyboxError(
                f"Expected image {annotations.file_names[0]!r} (image id "
                f"{int(annotations.image_ids[0])} of {annotations.source}) under the image root "
                f"{self.image_root} but got no file {self._paths[0]}; pass the image root"
            )
        boxes = np.asarray(annotations.boxes, dtype=np.float64).reshape(-1, 4)
        bad = ~np.isfinite(boxes).all(axis=1)
        if bad.any():
            record = annotations.record_ids[int(np.flatnonzero(bad)[0])]
            raise NoisyboxError(
                f"Expected finite box coordinates but got {boxes[bad][0].tolist()} for "
                f"record {record} in {annotations.source}"
            )
        index = np.asarray(annotations.box_image_index, dtype=np.int64)
        sizes = np.asarray(annotations.image_sizes, dtype=np.float64)[index]
        clipped = np.concatenate([boxes[:, :2].clip(0), np.minimum(boxes[:, 2:], sizes)], axis=1)
        keep = ~np.asarray(annotations.iscrowd, dtype=bool)
        valid = (clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])
        self.num_dropped_boxes = int((keep & ~valid).sum())
        keep &= valid
        lookup = {c: k + 1 for k, c in enumerate(category_ids)}
        labels = np.array([lookup[int(c)] for c in annotations.categories], dtype=np.int64)
        order = np.argsort(index[keep], kind="stable")
        kept_index = index[keep][order]
        self._boxes = clipped[keep][order].astype(np.float32)
        self._labels = labels[keep][order]
        self._starts = np.searchsorted(kept_index, np.arange(annotations.num_images + 1))

    def __len__(self) -> int:
        return self.annotations.num_images

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, Target]:
        """Image ``Tensor[3, H, W]`` float in ``[0, 1]`` and its target dict.

        ``key`` is an image index, or ``(index, seed)`` to seed the item's augmentation
        (what :class:`SeededSampler` yields).
        """
        index, seed = (int(key[0]), int(key[1])) if isinstance(key, tuple) else (int(key), None)
        if not 0 <= index < len(self):
            raise IndexError(f"Expected an image index in [0, {len(self)}) but got {index}")
        image = self.load_image(index)
        start, stop = self._starts[index], self._starts[index + 1]
        boxes, labels = self._boxes[start:stop], self._labels[start:stop]
        if self.transforms is not None:
            if seed is not None:
                from noisybox.data.transforms import reseed_transforms

                reseed_transforms(self.transforms, seed)
            out = self.transforms(image=image, bboxes=boxes, labels=labels)
            image = out["image"]
            boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
            labels = np.asarray(out["labels"], dtype=np.int64).reshape(-1)
            positive = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            boxes, labels = boxes[positive], labels[positive]
        tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255)
        target: Target = {
            "boxes": torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.as_tensor(labels, dtype=torch.int64).reshape(-1),
            "image_id": int(self.annotations.image_ids[index]),
        }
        return tensor, target

    def image_path(self, index: int) -> Path:
        """The file of image ``index``."""
        return self._paths[index]

    def load_image(self, index: int) -> np.ndarray:
        """``uint8[H, W, 3]`` RGB pixels of image ``index`` as stored (EXIF orientation ignored).

        Raises:
            NoisyboxError: the file is missing or unreadable, or its size differs from the
                annotations'.
        """
        return load_image(self.annotations, index, self.image_root)

    @staticmethod
    def collate_fn(batch: Sequence[tuple[torch.Tensor, Target]]) -> tuple[list, list]:
        """See :func:`collate_fn`."""
        return collate_fn(batch)


def collate_fn(
    batch: Sequence[tuple[torch.Tensor, Target]],
) -> tuple[list[torch.Tensor], list[Target]]:
    """Keep a batch as lists (images may differ in size): ``(images, targets)``.

    Example:
        >>> images, targets = collate_fn([(torch.zeros(3, 2, 2), {"image_id": 1})])
        >>> len(images), targets[0]["image_id"]
        (1, 1)
    """
    images = [item[0] for item in batch]
    targets = [item[1] for item in batch]
    return images, targets


class SeededSampler(Sampler):
    """Yields ``(index, item_seed)`` so every item's augmentation has its own seed.

    ``item_seed`` depends only on ``(seed, epoch, index)``: augmentations do not depend on
    the number of workers or on the order items are loaded in, and an epoch replays exactly
    after a resume. The index order comes from ``base`` (e.g. a ``DistributedSampler``)
    or is a permutation seeded by ``(seed, epoch)`` when ``shuffle`` is set.

    Args:
        num_items: dataset length.
        shuffle: shuffle the order every epoch (ignored when ``base`` is given).
        seed: the run seed.
        base: sampler giving the indices; ``set_epoch`` is forwarded to it.

    Example:
        >>> sampler = SeededSampler(4, shuffle=True, seed=0)
        >>> sorted(index for index, _ in sampler)
        [0, 1, 2, 3]
    """

    def __init__(
        self, num_items: int, *, shuffle: bool, seed: int, base: Sampler | None = None
    ) -> None:
        self.num_items = int(num_items)
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.base = base
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the next pass (every pass then advances it by one)."""
        self.epoch = int(epoch)
        if self.base is not None and hasattr(self.base, "set_epoch"):
            self.base.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.base) if self.base is not None else self.num_items  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        self.epoch = epoch + 1
        if self.base is not None:
            order: Any = self.base
        elif self.shuffle:
            generator = torch.Generator().manual_seed(stream_seed(self.seed, epoch))
            order = torch.randperm(self.num_items, generator=generator).tolist()
        else:
            order = range(self.num_items)
        for index in order:
            yield int(index), stream_seed(self.seed, epoch, int(index))


def build_dataloader(
    dataset: Dataset,
    *,
    batch_size: int,
    shuffle: bool,
    workers: int,
    seed: int,
    pin_memory: bool | None = None,
    sampler: Sampler | None = None,
    drop_last: bool = False,
) -> DataLoader:
    """A ``DataLoader`` with seeded order and augmentation, workers and pinned memory.

    Args:
        dataset: usually a :class:`DetectionDataset` (items are requested as
            ``(index, seed)``); any dataset indexed by ``int`` works too.
        batch_size: images per batch.
        shuffle: reshuffle every epoch (ignored when ``sampler`` is given).
        workers: loader processes; ``0`` loads in the main process. Workers persist
            across epochs.
        seed: seeds the order and every item's augmentation.
        pin_memory: pin batches for fast host-to-GPU copies (default: when CUDA is available).
        sampler: index sampler to use instead, e.g. ``DistributedSampler`` under DDP.
        drop_last: drop the last incomplete batch.

    Returns:
        A loader yielding ``(images: list[Tensor[3, H, W]], targets: list[dict])``. Its
        ``sampler`` is a :class:`SeededSampler` for :class:`DetectionDataset`; call
        ``loader.sampler.set_epoch(epoch)`` to replay an epoch after a resume.

    Raises:
        ValueError: ``batch_size < 1`` or ``workers < 0``.
    """
    if batch_size < 1:
        raise ValueError(f"Expected batch_size >= 1 but got {batch_size}")
    if workers < 0:
        raise ValueError(f"Expected workers >= 0 but got {workers}")
    if pin_memory is None:
        pin_memory = torch.cuda.is_available()
    generator = torch.Generator().manual_seed(int(seed))
    item_sampler: Sampler | None = sampler
    loader_shuffle: bool | None = shuffle if sampler is None else None
    if isinstance(dataset, DetectionDataset):
        item_sampler = SeededSampler(len(dataset), shuffle=shuffle, seed=seed, base=sampler)
        loader_shuffle = None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=loader_shuffle,
        sampler=item_sampler,
        num_workers=workers,
        collate_fn=collate_fn,
        pin_memory=pin_memory,
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=_worker_init if workers > 0 else None,
        persistent_workers=workers > 0,
    )


def _worker_init(worker_id: int) -> None:
    """Keep workers single-threaded and seed unseeded pipelines from the worker seed."""
    cv2.setNumThreads(0)
    torch.set_num_threads(1)
    info = torch.utils.data.get_worker_info()
    transforms = getattr(info.dataset, "transforms", None) if info is not None else None
    if transforms is not None and hasattr(transforms, "set_random_seed"):
        from noisybox.data.transforms import reseed_transforms

        reseed_transforms(transforms, torch.initial_seed() % 2**32)
