"""The ``reproduce=`` path of :func:`~noisybox.corrupt.corrupt_annotations`: a published
generator's noisy boxes regenerated exactly (:mod:`noisybox.corrupt.oamil`), with the settings
recorded in the manifest and the file the source itself writes."""

from __future__ import annotations

import os
import pickle
from collections.abc import Sequence
from typing import Any

from noisybox.corrupt.in_memory import DEFAULT_SEED, CorruptedBoxes
from noisybox.errors import NoisyboxError
from noisybox.formats import snap_boxes
from noisybox.formats._io import changed_rows
from noisybox.formats.annotations import Annotations
from noisybox.noise.oamil_legacy import OAMIL_SEED
from noisybox.noise.spec import NoiseSpec

__all__ = ["COCO_CONVENTIONS", "REPRODUCE_SETTINGS", "check_reproduce", "reproduce_oamil"]

REPRODUCE_SETTINGS: dict[str, dict[str, Any]] = {
    "oamil": {
        "reproduce": "oamil",
        "model": "oamil",
        "boundary": "truncate",
        "min_size": None,
        "on_invalid": None,
        "generator": "numpy.random.RandomState(45), the legacy global generator of np.random.seed(45)",
        "conventions": (
            "OA-MIL utils/gen_noisy_voc.py: images in image-set order, boxes in file order, "
            "corners int(float(.)) - 1 (0-based inclusive), clipped to width - 1 and "
            "height - 1, an invalid noisy box replaced by the clean one, difficult boxes and "
            "objects outside VOC's 20 classes left clean and drawing nothing"
        ),
    }
}
"""What the manifest records of each reproduction, over the settings that do not apply."""

#: The ``conventions`` the manifest records for a COCO input (the VOC ones are above).
COCO_CONVENTIONS = (
    "OA-MIL utils/gen_noisy_coco.py: images in file order, each image's annotations in file "
    "order, corners (x, y, x + w, y + h) as float32, clipped to width - 1 and height - 1, "
    "an invalid noisy box replaced by the clean one, crowd boxes and those the source skips "
    "(ignore, no overlap with the image, area <= 0, w or h < 1, not one of COCO's 80 "
    "classes) left clean and drawing nothing"
)


def check_reproduce(
    reproduce: str,
    paths: Sequence[str | os.PathLike[str]],
    spec: NoiseSpec,
    seed: int,
    format: str | None,
) -> None:
    """Refuse settings a reproduction of a published generator cannot honour.

    Raises:
        NoisyboxError: an unknown ``reproduce``, several inputs, a format other than VOC
            or COCO, per-side etas other than ``eta`` or a ratio other than 1, a seed
            other than the default or 45, a noise model or boundary other than the
            default or the source's (``oamil``, ``truncate``), or annotation-level noise
            (the source's pickle would keep the records the noisy file drops).
    """
    from noisybox.corrupt.oamil import REPRODUCIBLE

    if reproduce not in REPRODUCIBLE:
        raise NoisyboxError(f"Expected reproduce in {list(REPRODUCIBLE)} but got {reproduce!r}")
    if len(paths) != 1:
        raise NoisyboxError(
            f"Expected one VOC folder or COCO file with --reproduce {reproduce} but got "
            f"{len(paths)} inputs"
        )
    if format not in (None, "voc", "coco"):
        raise NoisyboxError(
            f"Expected a VOC folder or COCO file with --reproduce {reproduce} but got format "
            f"{format!r}"
        )
    if spec.anisotropic or spec.ratio != 1.0:
        raise NoisyboxError(
            f"Expected one --eta (the source's noise level) and ratio 1 with --reproduce "
            f"{reproduce} but got eta_w={spec.eta_w}, eta_h={spec.eta_h}, ratio={spec.ratio}"
        )
    source = REPRODUCE_SETTINGS[reproduce]
    for name, value, default in (
        ("noise-model", spec.noise_model, "uniform"),
        ("boundary", spec.boundary, "shift"),
    ):
        own = source["model" if name == "noise-model" else name]
        if value not in (default, own):
            raise NoisyboxError(
                f"Expected no --{name} with --reproduce {reproduce} (the source's is {own}) "
                f"but got {value}"
            )
    if spec.rates:
        raise NoisyboxError(
            f"Expected no annotation-level noise with --reproduce {reproduce} (the source "
            f"has none, and its pickle would keep the records the noisy file drops) but got "
            f"--{', --'.join(r.replace('_', '-') for r in spec.rates)}"
        )
    if seed not in (DEFAULT_SEED, OAMIL_SEED):
        raise NoisyboxError(
            f"Expected no --seed with --reproduce {reproduce} (the source seeds numpy with "
            f"{OAMIL_SEED}) but got {seed}"
        )


def reproduce_oamil(
    ann: Annotations, eta: float, image_set: str
) -> tuple[list[CorruptedBoxes], tuple[str, bytes]]:
    """OA-MIL's boxes for ``ann`` (a VOC folder or a COCO file) as a
    :class:`CorruptedBoxes`, and its pickle's name and bytes (protocol 2, what ``mmcv.dump``
    writes).

    Raises:
        NoisyboxError: ``ann`` is neither VOC nor COCO.
    """
    from noisybox.corrupt.oamil import oamil_coco, oamil_voc

    if ann.format not in ("voc", "coco"):
        raise NoisyboxError(
            f"Expected a VOC folder or COCO file for --reproduce oamil but got format "
            f"{ann.format!r} ({ann.source})"
        )
    made = (oamil_coco if ann.format == "coco" else oamil_voc)(ann, eta)
    noisy_ann = ann.with_boxes(snap_boxes(ann, made.annotations.boxes))
    counts = {
        "boxes": ann.num_boxes,
        "perturbed": int(changed_rows(noisy_ann.boxes, ann.boxes).sum()),
        "crowd_untouched": 0,
        "invalid": 0,
        "skipped": 0,
        "clipped": 0,
        "ignored": int((~made.perturbed).sum()),  # difficult, crowd, or skipped by the source
    }
    if ann.format == "coco":  # the source's fixed name (its train set's pickle)
        name = f"coco2017_train_noise-r{float(eta):.1f}.pkl"
    else:
        name = f"voc07_{image_set}_noise-r{float(eta):.1f}.pkl"
    payload = pickle.dumps(made.infos, protocol=2)
    return [CorruptedBoxes(noisy_ann, made.perturbed, counts)], (name, payload)
