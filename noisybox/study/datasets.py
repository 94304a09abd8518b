"""The data of a benchmark: the dataset's paths, its digest, and the noisy-file cache.

The builtin shapes dataset is generated into ``work/data`` on first use and pinned by the
digest of its annotation files (:func:`check_dataset`); a real dataset is used where it
lies. The training boxes of each (eta, seed), and noise condition in a study with several,
are corrupted once into ``work/noisy`` and shared by every cell of that noise draw
(:func:`noisy_annotations`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path
from typing import Any

from noisybox._fileio import atomic_write_json, read_json_object
from noisybox.corrupt import corrupt_annotations
from noisybox.data.synthetic import make_shapes_dataset
from noisybox.data.voc_splits import voc_digest, write_voc_split
from noisybox.errors import NoisyboxError
from noisybox.noise.annotation_noise import ANNOTATION_CORRUPTIONS
from noisybox.noise.spec import NoiseSpec
from noisybox.study.results import ResultsFolder
from noisybox.study.spec import BenchmarkConfig, NoiseConfig

__all__ = [
    "ResolvedDataset",
    "check_dataset",
    "dataset_digest",
    "noisy_annotations",
    "prepare_dataset",
]


@dataclasses.dataclass(frozen=True)
class ResolvedDataset:
    """Concrete paths of the data a cell trains and is evaluated on.

    In a study, ``train`` is the noisy-able training set and ``test`` the clean test set.
    In calibration (``mode: calibration``) ``train`` is the calibration training split and
    ``test`` is the *validation* split: the test split is not even resolved.
    """

    train_annotations: Path
    train_images: Path
    test_annotations: Path
    test_images: Path
    format: str | None
    evaluated_on: str = "test"


def prepare_dataset(cfg: BenchmarkConfig, folder: ResultsFolder) -> ResolvedDataset:
    """The paths of the cells' data: the builtin dataset is generated into ``work/data``
    and a VOC folder's image sets are written there as split folders, where missing.

    Raises:
        NoisyboxError: calibration of a dataset without a validation split.
    """
    ds = cfg.dataset
    calibrating = cfg.mode == "calibration"
    if ds.voc is not None:
        roles = ("calibration_train", "val") if calibrating else ("train", "test")
        train, test = (
            write_voc_split(ds.voc, ds.image_sets[r], folder.data_dir / "voc" / ds.image_sets[r])
            for r in roles
        )
        return ResolvedDataset(train, train, test, test, "voc", _eval(cfg))
    if ds.builtin is None:
        assert ds.train_annotations and ds.train_images and ds.test_annotations and ds.test_images
        if calibrating:
            if not (ds.val_annotations and ds.val_images):
                raise NoisyboxError(
                    f"Expected dataset.val_annotations and val_images in {cfg.source} to "
                    "calibrate on (calibration never evaluates on the test split) but got none"
                )
            split = (ds.val_annotations, ds.val_images)
        else:
            split = (ds.test_annotations, ds.test_images)
        return ResolvedDataset(
            Path(ds.train_annotations),
            Path(ds.train_images),
            Path(split[0]),
            Path(split[1]),
            ds.format,
            _eval(cfg),
        )

    root = folder.data_dir / ds.builtin
    done = root / "dataset.json"
    options = dict(ds.builtin_options)
    if not (done.is_file() and read_json_object(done) == options):
        make_shapes_dataset(root, overwrite=True, **options)
        atomic_write_json(done, options)
    train = root / "instances_train.json"
    test = root / ("instances_calib.json" if calibrating else "instances_val.json")
    if calibrating and not test.is_file():
        raise NoisyboxError(
            f"Expected the validation split {test} of the shapes dataset but got none "
            "(dataset.num_calib is 0)"
        )
    return ResolvedDataset(train, root, test, root, "coco", _eval(cfg))


def _eval(cfg: BenchmarkConfig) -> str:
    """What the cells are evaluated on: ``val`` in calibration, else ``test``."""
    return "val" if cfg.mode == "calibration" else "test"


def dataset_digest(data: ResolvedDataset) -> str:
    """SHA-256 of the train and test annotation files (the builtin dataset's COCO jsons).

    For the builtin dataset this pins the generator's output: its boxes come from the same
    random stream as its pixels, so a changed generator changes the digest. Image bytes are
    left out on purpose (PNG encoding may differ between Pillow versions for equal pixels).
    """
    h = hashlib.sha256()
    for path in (data.train_annotations, data.test_annotations):
        h.update(path.name.encode() + b"\0" + path.read_bytes())
    return h.hexdigest()[:16]


def check_dataset(cfg: BenchmarkConfig, folder: ResultsFolder, data: ResolvedDataset) -> None:
    """Pin the builtin dataset's digest in ``benchmark.json``; refuse a folder whose records
    were trained on other data (a changed shapes generator would mix two datasets).

    Raises:
        NoisyboxError: the digest differs from the one stored with the results.
    """
    if cfg.dataset.voc is not None:
        digest = voc_digest(cfg.dataset.voc)[:16]
    elif cfg.dataset.builtin is None:
        return
    else:
        digest = dataset_digest(data)
    stored = folder.read_stored()
    known = stored.get("dataset_digest")
    if known is None:
        atomic_write_json(folder.config_json, {**stored, "dataset_digest": digest})
    elif known != digest:
        raise NoisyboxError(
            f"Expected the {cfg.dataset.builtin or cfg.dataset.voc} dataset of "
            f"{folder.config_json} (digest {known}) "
            f"but generated one with digest {digest}: the generator's output changed since these "
            "results were recorded, so new cells would not be comparable. Use another --out"
        )


def noisy_annotations(
    cfg: BenchmarkConfig,
    folder: ResultsFolder,
    data: ResolvedDataset,
    eta: float,
    seed: int,
    condition: NoiseConfig | None = None,
) -> tuple[Path, dict[str, Any], float]:
    """The training annotations of ``(eta, seed)``, corrupted once and shared by every cell.

    Args:
        condition: the cell's noise condition in a study with several (``cfg.noise``
            when ``None``). A condition without box noise (model ``none``) draws its
            corruptions alone: the boxes kept are the clean ones.

    Returns:
        ``(path, noise, seconds)``: the annotation file, the noise record (measured IoU
        statistics and provenance) and the time spent corrupting now (0 when cached).
    """
    noise_cfg = cfg.noise if condition is None else condition
    # the key "model" is the noise model: it is what the cached noise.json and every
    # published record hold, so it keeps its name
    base = {
        "eta": eta,
        "seed": seed,
        "model": noise_cfg.model,
        "boundary": noise_cfg.boundary,
        "ratio": noise_cfg.ratio,
        # annotation-level noise at the rate eta (absent when none, as in older records)
        **({"corruptions": list(noise_cfg.corruptions)} if noise_cfg.corruptions else {}),
        **({"condition": condition.label} if condition is not None else {}),
    }
    if eta == 0:
        if cfg.noise_conditions:  # one clean cell for every condition
            base = {"eta": eta, "seed": seed, "conditions": [n.label for n in cfg.conditions]}
        return (
            data.train_annotations,
            {**base, "mean_iou": 1.0, "mean_image_iou": 1.0, "file": "clean"},
            0.0,
        )
    out = folder.noisy_dir(eta, seed, None if condition is None else condition.label)
    meta = out / "noise.json"
    target = out / data.train_annotations.name
    if meta.is_file() and target.exists():
        noise = read_json_object(meta)
        if all(noise.get(k) == v for k, v in base.items()):
            return target, noise, 0.0

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    kinds = noise_cfg.corruptions
    spec = NoiseSpec(
        # without box noise: eta 0 of the default model, which leaves every box as it is
        eta=eta if noise_cfg.box_noise else 0.0,
        noise_model=noise_cfg.model if noise_cfg.box_noise else "uniform",
        boundary=noise_cfg.boundary,
        ratio=noise_cfg.ratio,
        **{kind: eta for kind in ANNOTATION_CORRUPTIONS if kind in kinds},
    )
    result = corrupt_annotations(
        data.train_annotations, target, spec=spec, seed=seed, format=data.format
    )
    stats = result.stats.to_dict()
    noise = {**base, **stats, "file": str(target.relative_to(folder.root))}
    atomic_write_json(meta, noise)
    return target, noise, time.perf_counter() - start
