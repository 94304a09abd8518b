"""Find and load the images an annotation set describes, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from noisybox.errors import NoisyboxError
from noisybox.formats.annotations import Annotations

__all__ = ["default_image_root", "load_image", "resolve_image_root"]


def default_image_root(ann: Annotations) -> Path:
    """The folder ``ann.file_names`` are relative to when none is given.

    COCO: the folder of the json file (the layout of the embedded shapes dataset); VOC: the
    devkit year folder; YOLO: the images folder the reader resolved.
    """
    source = Path(ann.source)
    try:
        if ann.format == "voc":
            from noisybox.formats.voc import find_voc_root

            return find_voc_root(source)[0]
        if ann.format == "yolo":
            from noisybox.formats.yolo import find_yolo_dirs

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


def load_image(ann: Annotations, row: int, image_root: str | os.PathLike[str]) -> np.ndarray:
    """Pixels of image ``row`` of ``ann`` as stored (EXIF orientation ignored, like the
    detectors' data loader).

    Args:
        ann: the annotations naming the image.
        row: image row (``0 <= row < ann.num_images``).
        image_root: the folder ``ann.file_names`` are relative to.

    Returns:
        ``uint8[H, W, 3]`` RGB.

    Raises:
        NoisyboxError: if the file is missing or unreadable, or its size differs from the
            size the annotations give.
    """
    name = ann.file_names[row]
    image_id = int(ann.image_ids[row])
    path = Path(image_root) / name
    if not name or not path.is_file():
        raise NoisyboxError(
            f"Expected image file {path} for image id {image_id} of {ann.source} but got no "
            f"such file (image root {image_root}; is --images the right folder?)"
        )
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            rgb = np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise NoisyboxError(
            f"Expected a readable image at {path} (image id {image_id} of {ann.source}) "
            f"but got: {reason}"
        ) from None
    want_w, want_h = (int(round(v)) for v in ann.image_sizes[row])
    height, width = rgb.shape[:2]
    if (width, height) != (want_w, want_h):
        raise NoisyboxError(
            f"Expected image {path} (image id {image_id}) to be {want_w}x{want_h} as in "
            f"{ann.source} but got {width}x{height}; do the images match the annotations?"
        )
    return rgb
