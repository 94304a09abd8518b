"""Where the images of an annotation set are, and their pixels, with one-line errors.

The one home of the image-root rule and the image loader: the detectors' dataset
(:class:`noisybox.data.DetectionDataset`) and the previews (:mod:`noisybox.viz`) both use it.
The image root is the folder ``Annotations.file_names`` are relative to; a file name may
not leave it (absolute, a drive, or ``..``).
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from noisybox.errors import NoisyboxError
from noisybox.formats.annotations import Annotations
from noisybox.formats.voc import find_voc_root
from noisybox.formats.yolo import find_yolo_dirs

__all__ = ["default_image_root", "image_path", "load_image", "resolve_image_root"]


def default_image_root(ann: Annotations) -> Path:
    """The folder ``ann.file_names`` are relative to when none is given.

    COCO: the folder of the json file (the layout of the embedded shapes dataset); VOC: the
    devkit year folder; YOLO: the images folder the reader resolved.
    """
    source = Path(ann.source)
    try:
        if ann.format == "voc":
            return find_voc_root(source)[0]
        if ann.format == "yolo":
            return find_yolo_dirs(source)[2]
    except NoisyboxError:
        pass
    return source if source.is_dir() else source.parent


def resolve_image_root(ann: Annotations, image_root: str | os.PathLike[str] | None) -> Path:
    """``image_root`` (or :func:`default_image_root`), checked to be an existing folder.

    Raises:
        NoisyboxError: if the folder does not exist.
    """
    root = Path(image_root) if image_root is not None else default_image_root(ann)
    if not root.is_dir():
        raise NoisyboxError(f"Expected an images folder for {ann.source} but got no folder {root}")
    return root


def image_path(ann: Annotations, row: int, image_root: str | os.PathLike[str]) -> Path:
    """``image_root / ann.file_names[row]``, refusing names that are absolute or climb out.

    Raises:
        NoisyboxError: an empty or absolute name, a drive, or a ``..`` part.
    """
    return _safe_join(Path(image_root), ann.file_names[row], ann.image_ids[row], ann.source)


def _safe_join(root: Path, name: str, image_id: Any, source: str) -> Path:
    text = str(name)
    windows = PureWindowsPath(text)
    posix = PurePosixPath(text.replace("\\", "/"))
    if (
        not text
        or posix.is_absolute()
        or windows.is_absolute()
        or windows.drive
        or ".." in posix.parts
    ):
        raise NoisyboxError(
            f"Expected an image path inside the image root {root} but got {text!r} for "
            f"image id {image_id} in {source}"
        )
    return root.joinpath(*posix.parts)


def load_image(ann: Annotations, row: int, image_root: str | os.PathLike[str]) -> np.ndarray:
    """Pixels of image ``row`` of ``ann`` as stored (EXIF orientation ignored).

    Decoded with OpenCV (``IMREAD_IGNORE_ORIENTATION``), the decoder the training data
    loader has always used, so that training, evaluation and previews see the same pixels.

    Args:
        ann: the annotations naming the image.
        row: image row (``0 <= row < ann.num_images``).
        image_root: the folder ``ann.file_names`` are relative to.

    Returns:
        ``uint8[H, W, 3]`` RGB.

    Raises:
        NoisyboxError: if the name leaves the image root, the file is missing or
            unreadable, or its size differs from the size the annotations give.
    """
    import cv2

    path = image_path(ann, row, image_root)
    image_id = int(ann.image_ids[row])
    where = f"a readable image at {path} for image id {image_id} of {ann.source}"
    if not path.is_file():
        raise NoisyboxError(f"Expected {where} but got no such file (image root {image_root})")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise NoisyboxError(
            f"Expected {where} but got a file that cannot be decoded (image root {image_root})"
        )
    height, width = image.shape[:2]
    want_w, want_h = (int(round(v)) for v in ann.image_sizes[row])
    if (width, height) != (want_w, want_h):
        raise NoisyboxError(
            f"Expected image {path} (image id {image_id}) to be {want_w}x{want_h} as in "
            f"{ann.source} but got {width}x{height}; do the images match the annotations?"
        )
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
