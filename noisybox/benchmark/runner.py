"""The benchmark runner: expand the grid, corrupt once per (eta, seed), train, evaluate, record.

Results folder layout (``OUT``)::

    OUT/benchmark.json       the validated config, its fingerprint and the builtin dataset's
                             digest (committed)
    OUT/benchmark.yaml       the same config, for humans
    OUT/records/<cell>.json  one result record per finished cell, written atomically
    OUT/report/              tables (Markdown, CSV, LaTeX) and plots
    OUT/work/                regenerable: dataset, noisy annotations, checkpoints (git-ignored)

A cell is one (detector, loss, alpha, eta, seed). Its record holds the metrics on the clean
test set, the per-epoch history, the measured noise IoU of its training boxes, the full
config, versions and timings, and the ``collapsed`` flag with its reasons. Re-running skips
cells with a record and resumes an interrupted cell from ``work/cells/<cell>/last.pt`` (the
engine's own resume), so a killed run loses at most the epoch in progress; the records
folder alone is enough to continue a study in another session.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from noisybox._fileio import atomic_write_text, read_json_object
from noisybox.benchmark.config import (
    BenchmarkConfig,
    CollapseConfig,
    DetectorSpec,
    LossSpec,
    config_diff,
    load_config,
)
from noisybox.engine.curves import convergence
from noisybox.errors import NoisyboxError

__all__ = [
    "Cell",
    "CellFailure",
    "ResultsFolder",
    "RunSummary",
    "check_dataset",
    "dataset_digest",
    "detect_collapse",
    "expand_grid",
    "find_twin",
    "open_results_folder",
    "parse_shard",
    "refresh_collapse_flags",
    "run_benchmark",
    "run_cell",
    "shard_cells",
]

RECORD_SCHEMA = 1
_GITIGNORE = "# regenerable: dataset, noisy annotations, checkpoints\nwork/\n"


# --------------------------------------------------------------------------- grid


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run of the grid."""

    detector: DetectorSpec
    loss: LossSpec
    eta: float
    seed: int

    @property
    def cell_id(self) -> str:
        """A file-name-safe id, e.g. ``retinanet-resnet18__alpha-iou@3__eta0.3__s0``.

        >>> from noisybox.benchmark.config import DetectorSpec, LossSpec
        >>> Cell(DetectorSpec("fcos"), LossSpec("alpha-iou", 3.0, 0.3), 0.1, 2).cell_id
        'fcos-resnet18__alpha-iou@3~w0.3__eta0.1__s2'
        """
        loss = self.loss.label
        if self.loss.alpha_warmup is not None:
            loss += f"~w{self.loss.alpha_warmup:g}"
        return f"{self.detector.label}__{loss}__eta{self.eta:g}__s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector.name,
            "backbone": self.detector.backbone,
            "loss": self.loss.name,
            "alpha": self.loss.alpha,
            "alpha_warmup": self.loss.alpha_warmup,
            "eta": self.eta,
            "seed": self.seed,
        }


def expand_grid(cfg: BenchmarkConfig) -> list[Cell]:
    """Every cell of the grid in run order: seeds, then etas, detectors and losses.

    Seeds vary slowest so that an interrupted study holds complete tables for its first
    seeds; losses vary fastest so that the cells sharing one noisy file run together.
    """
    return [
        Cell(det, loss, eta, seed)
        for seed in cfg.seeds
        for eta in cfg.etas
        for det in cfg.detectors
        for loss in cfg.losses
    ]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``"i/n"`` (``0 <= i < n``) into ``(i, n)``.

    Raises:
        NoisyboxError: malformed text or ``i`` out of range.

    >>> parse_shard("1/4")
    (1, 4)
    """
    if text is None:
        return None
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise NoisyboxError(f"Expected --shard as i/n (e.g. 0/4) but got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise NoisyboxError(f"Expected --shard i/n with 0 <= i < n but got {text!r}")
    return index, count


def shard_cells(cells: Sequence[Cell], index: int, count: int) -> list[Cell]:
    """Cells ``index, index + count, ...`` of the grid: deterministic, disjoint, covering."""
    return list(cells[index::count])


# --------------------------------------------------------------------------- folder


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(
        path, json.dumps(data, indent=1, sort_keys=False, default=_json_default) + "\n"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"Expected JSON-able data but got {type(value).__name__}")


@dataclasses.dataclass(frozen=True)
class ResultsFolder:
    """Paths inside a results folder (see the module docstring)."""

    root: Path

    @property
    def config_json(self) -> Path:
        return self.root / "benchmark.json"

    @property
    def records_dir(self) -> Path:
        return self.root / "records"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def work_dir(self) -> Path:
        return self.root / "work"

    @property
    def data_dir(self) -> Path:
        return self.work_dir / "data"

    def noisy_dir(self, eta: float, seed: int) -> Path:
        return self.work_dir / "noisy" / f"eta{eta:g}__s{seed}"

    def cell_dir(self, cell_id: str) -> Path:
        return self.work_dir / "cells" / cell_id

    def record_path(self, cell_id: str) -> Path:
        return self.records_dir / f"{cell_id}.json"

    def load_config(self) -> BenchmarkConfig:
        """The config stored in ``benchmark.json``.

        Raises:
            NoisyboxError: the folder holds no benchmark.
        """
        stored = self.read_stored()
        try:
            return load_config(stored["config"], base_dir=stored.get("base_dir", "."))
        except NoisyboxError as exc:
            raise NoisyboxError(
                f"Expected a valid benchmark config in {self.config_json} but got: {exc}"
            ) from None

    def read_stored(self) -> dict[str, Any]:
        """``benchmark.json`` as :func:`open_results_folder` wrote it.

        Raises:
            NoisyboxError: the folder holds no benchmark, or the file is not one (named).
        """
        if not self.config_json.is_file():
            raise NoisyboxError(
                f"Expected a results folder with benchmark.json but got {self.root}"
            )
        stored = read_json_object(self.config_json, what="a noisybox benchmark record")
        if not isinstance(stored.get("config"), dict):
            raise NoisyboxError(
                f"Expected a 'config' object in {self.config_json} but got "
                f"{type(stored.get('config')).__name__}"
            )
        return stored

    def load_records(self) -> list[dict[str, Any]]:
        """Every finished cell's record, sorted by cell id.

        Raises:
            NoisyboxError: a record is not valid JSON (named).
        """
        records: list[dict[str, Any]] = []
        if not self.records_dir.is_dir():
            return records
        for path in sorted(self.records_dir.glob("*.json")):
            records.append(read_json_object(path, what="a JSON result record"))
        return records


def open_results_folder(
    cfg: BenchmarkConfig, out_dir: str | os.PathLike[str], *, extend: bool = False
) -> tuple[ResultsFolder, BenchmarkConfig]:
    """Create a results folder for ``cfg`` or check that an existing one was made from it.

    Args:
        cfg: the validated config to run.
        out_dir: the results folder.
        extend: accept a folder made from a config with other grid axes (detectors, losses,
            etas, seeds) but the same dataset, noise model and schedule; the stored config
            becomes the union of both grids.

    Returns:
        The folder and the config stored in it (the union of grids when extending).

    Raises:
        NoisyboxError: the folder holds a different benchmark (the keys are listed).
    """
    folder = ResultsFolder(Path(out_dir).resolve())
    folder.root.mkdir(parents=True, exist_ok=True)
    stored_cfg = cfg
    digest = None
    if folder.config_json.is_file():
        stored = folder.read_stored()
        digest = stored.get("dataset_digest")
        old = stored["config"]
        diff = config_diff(old, cfg.to_dict())
        if diff:
            axes = ("detectors", "losses", "etas", "seeds", "collapse")
            protocol = [line for line in diff if not line.startswith(axes)]
            if not extend:
                raise NoisyboxError(
                    f"Expected {folder.root} to hold results of the same config but got "
                    f"differences: {'; '.join(diff)}. Use --extend to add cells to it, or another --out"
                )
            if protocol:
                raise NoisyboxError(
                    f"Expected --extend to keep the dataset, noise and schedule of {folder.root} "
                    f"but got differences: {'; '.join(protocol)}"
                )
            merged = dict(cfg.to_dict())
            for key in ("detectors", "losses"):
                merged[key] = _union(old[key], merged[key])
            merged["etas"] = sorted(set(old["etas"]) | set(merged["etas"]))
            merged["seeds"] = sorted(set(old["seeds"]) | set(merged["seeds"]))
            stored_cfg = load_config(merged, base_dir=cfg.base_dir, check_paths=False)
    data = stored_cfg.to_dict()
    payload = {
        "fingerprint": stored_cfg.fingerprint(),
        "config": data,
        "base_dir": stored_cfg.base_dir,
        "source": stored_cfg.source,
        "updated_at": _now(),
    }
    if digest is not None:
        payload["dataset_digest"] = digest
    atomic_write_json(folder.config_json, payload)
    atomic_write_text(folder.root / "benchmark.yaml", yaml.safe_dump(data, sort_keys=False))
    gitignore = folder.root / ".gitignore"
    if not gitignore.exists():
        atomic_write_text(gitignore, _GITIGNORE)
    return folder, stored_cfg


def _union(old: list[Any], new: list[Any]) -> list[Any]:
    out = list(old)
    for item in new:
        if item not in out:
            out.append(item)
    return out


# --------------------------------------------------------------------------- data


@dataclasses.dataclass(frozen=True)
class ResolvedDataset:
    """Concrete paths of the benchmark's dataset."""

    train_annotations: Path
    train_images: Path
    test_annotations: Path
    test_images: Path
    format: str | None


def prepare_dataset(cfg: BenchmarkConfig, folder: ResultsFolder) -> ResolvedDataset:
    """The dataset's paths, generating the builtin dataset into ``work/data`` if missing."""
    ds = cfg.dataset
    if ds.builtin is None:
        assert ds.train_annotations and ds.train_images and ds.test_annotations and ds.test_images
        return ResolvedDataset(
            Path(ds.train_annotations),
            Path(ds.train_images),
            Path(ds.test_annotations),
            Path(ds.test_images),
            ds.format,
        )
    from noisybox.data import make_shapes_dataset

    root = folder.data_dir / ds.builtin
    done = root / "dataset.json"
    options = dict(ds.builtin_options)
    if done.is_file() and read_json_object(done) == options:
        train, test = root / "instances_train.json", root / "instances_val.json"
    else:
        shapes = make_shapes_dataset(root, overwrite=True, **options)
        train, test = shapes.train_annotations, shapes.val_annotations
        atomic_write_json(done, options)
    return ResolvedDataset(train, root, test, root, "coco")


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
    if cfg.dataset.builtin is None:
        return
    digest = dataset_digest(data)
    stored = folder.read_stored()
    known = stored.get("dataset_digest")
    if known is None:
        atomic_write_json(folder.config_json, {**stored, "dataset_digest": digest})
    elif known != digest:
        raise NoisyboxError(
            f"Expected the {cfg.dataset.builtin} dataset of {folder.config_json} (digest {known}) "
            f"but generated one with digest {digest}: the generator's output changed since these "
            "results were recorded, so new cells would not be comparable. Use another --out"
        )


def noisy_annotations(
    cfg: BenchmarkConfig, folder: ResultsFolder, data: ResolvedDataset, eta: float, seed: int
) -> tuple[Path, dict[str, Any], float]:
    """The training annotations of ``(eta, seed)``, corrupted once and shared by every cell.

    Returns:
        ``(path, noise, seconds)``: the annotation file, the noise record (measured IoU
        statistics and provenance) and the time spent corrupting now (0 when cached).
    """
    base = {
        "eta": eta,
        "seed": seed,
        "model": cfg.noise.model,
        "boundary": cfg.noise.boundary,
        "ratio": cfg.noise.ratio,
    }
    if eta == 0:
        return (
            data.train_annotations,
            {**base, "mean_iou": 1.0, "mean_image_iou": 1.0, "file": "clean"},
            0.0,
        )
    out = folder.noisy_dir(eta, seed)
    meta = out / "noise.json"
    target = out / data.train_annotations.name
    if meta.is_file() and target.exists():
        noise = read_json_object(meta)
        if all(noise.get(k) == v for k, v in base.items()):
            return target, noise, 0.0
    from noisybox.corrupt import corrupt_annotations

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    result = corrupt_annotations(
        data.train_annotations,
        target,
        eta=eta,
        model=cfg.noise.model,
        boundary=cfg.noise.boundary,
        ratio=cfg.noise.ratio,
        seed=seed,
        format=data.format,
    )
    stats = result.stats.to_dict()
    noise = {**base, **stats, "file": str(target.relative_to(folder.root))}
    atomic_write_json(meta, noise)
    return target, noise, time.perf_counter() - start


# --------------------------------------------------------------------------- collapse


def _base_variant(loss_name: str) -> str:
    return loss_name[len("alpha-") :] if loss_name.startswith("alpha-") else loss_name


def find_twin(record: dict[str, Any], records: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The alpha = 1 twin of a cell: same detector, eta and seed, the same IoU variant.

    ``alpha-iou@3`` is twinned with ``iou`` (or ``alpha-iou@1``); cells with alpha = 1, the
    stock torchvision loss and ``log-iou`` have no twin.
    """
    cell = record["cell"]
    alpha = cell.get("alpha")
    if alpha is None or alpha == 1 or cell["loss"] in ("torchvision", "log-iou"):
        return None
    base = _base_variant(cell["loss"])
    for other in records:
        o = other["cell"]
        if (
            o["detector"] == cell["detector"]
            and o["backbone"] == cell["backbone"]
            and o["eta"] == cell["eta"]
            and o["seed"] == cell["seed"]
            and o.get("alpha") == 1
            and _base_variant(o["loss"]) == base
        ):
            return other
    return None


def detect_collapse(
    record: dict[str, Any], twin: dict[str, Any] | None, thresholds: CollapseConfig
) -> list[str]:
    """Why a cell counts as collapsed (empty list: it trained).

    The signals are the engine's (``noisybox.engine.collapse_reasons``): the matched
    predicted boxes' mean IoU with their targets (``fg_iou``, alpha-free) ended below
    ``min_fg_iou``; or, where ``fg_iou`` is not recorded and alpha was constant, the box
    loss fell by less than ``min_box_loss_drop``; or AP50 is below ``ap50_near_zero`` while
    the cell's alpha = 1 twin (see :func:`find_twin`) reached at least twice that.

    Args:
        record: a result record (``cell``, ``history``, ``metrics``).
        twin: the record of its alpha = 1 twin, if any.
        thresholds: the config's ``collapse`` section.

    >>> rec = {"history": [{"box_loss": 0.99, "alpha": 3.0}, {"box_loss": 0.99, "alpha": 3.0}],
    ...        "metrics": {"ap50": 0.0}}
    >>> [r.split(":")[0] for r in detect_collapse(rec, {"metrics": {"ap50": 0.7}}, CollapseConfig())]
    ['box loss did not fall', 'AP50 near zero']
    """
    from noisybox.engine.train import collapse_reasons

    ap50 = (record.get("metrics") or {}).get("ap50")
    twin_ap50 = None if twin is None else (twin.get("metrics") or {}).get("ap50")
    reasons = collapse_reasons(
        record.get("history") or [],
        ap50=ap50,
        reference_ap50=twin_ap50,
        min_drop=thresholds.min_box_loss_drop,
        min_fg_iou=thresholds.min_fg_iou,
        ap50_floor=thresholds.ap50_near_zero,
    )
    if twin is not None:
        reasons = [
            f"{r} (twin {twin.get('cell_id')})" if r.startswith("AP50 near zero") else r
            for r in reasons
        ]
    losses = [h.get("box_loss") for h in record.get("history") or []]
    if any(v is not None and not math.isfinite(float(v)) for v in losses):
        reasons.append("box loss was non-finite in some epochs")
    return reasons


def apply_collapse_flags(
    records: list[dict[str, Any]], thresholds: CollapseConfig
) -> list[dict[str, Any]]:
    """Records with ``collapsed`` and ``collapse_reasons`` recomputed from all records (copies)."""
    out = []
    for rec in records:
        reasons = detect_collapse(rec, find_twin(rec, records), thresholds)
        out.append({**rec, "collapsed": bool(reasons), "collapse_reasons": reasons})
    return out


def refresh_collapse_flags(
    folder: ResultsFolder, thresholds: CollapseConfig
) -> list[dict[str, Any]]:
    """Recompute every record's collapse flag (a twin may finish after its alpha variant).

    Records whose flag or reasons changed are rewritten atomically.

    Returns:
        All records, flags up to date.
    """
    records = folder.load_records()
    updated = apply_collapse_flags(records, thresholds)
    for old, new in zip(records, updated, strict=True):
        if (
            old.get("collapsed") != new["collapsed"]
            or old.get("collapse_reasons") != new["collapse_reasons"]
        ):
            atomic_write_json(folder.record_path(new["cell_id"]), new)
    return updated


# --------------------------------------------------------------------------- one cell


def versions() -> dict[str, str]:
    """Versions of noisybox, torch, torchvision, numpy and python."""
    import numpy
    import torch
    import torchvision

    import noisybox

    return {
        "noisybox": noisybox.__version__,
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }


def build_train_config(
    cfg: BenchmarkConfig, cell: Cell, data: ResolvedDataset, train_annotations: Path, out_dir: Path
) -> Any:
    """The engine's ``TrainConfig`` of a cell: noisy training boxes, clean test set (the
    engine evaluates it after the last epoch and keeps the metrics in the checkpoint)."""
    from noisybox.engine import TrainConfig

    values: dict[str, Any] = {
        **cfg.schedule,
        **cell.detector.options,
        "train_annotations": str(train_annotations),
        "train_images": str(data.train_images),
        "val_annotations": str(data.test_annotations),
        "val_images": str(data.test_images),
        "train_format": data.format,
        "val_format": data.format,
        "out_dir": str(out_dir),
        "detector": cell.detector.name,
        "backbone": cell.detector.backbone,
        "weights": cell.detector.weights,
        "loss": cell.loss.name,
        "alpha": cell.loss.alpha,
        "seed": cell.seed,
        "device": cfg.device,
    }
    if cell.loss.alpha_warmup is not None:
        values["alpha_warmup"] = cell.loss.alpha_warmup
    return TrainConfig.from_dict(values)


@dataclasses.dataclass
class _Trained:
    history: list[dict[str, Any]]
    metrics: dict[str, float]
    wall_time_s: float


def _train_local(train_cfg: Any, progress: bool) -> _Trained:
    from noisybox.engine import train

    result = train(train_cfg, progress=progress)
    if result.metrics is None:
        raise NoisyboxError(f"Expected test metrics from training {train_cfg.out_dir} but got none")
    return _Trained(list(result.history), dict(result.metrics), float(result.wall_time_s))


def _train_torchrun(train_cfg: Any, gpus: int, cell_dir: Path, progress: bool) -> _Trained:
    """Train under torchrun with ``gpus`` processes (DDP); read back rank 0's result.json."""
    config_path = cell_dir / "cell.json"
    atomic_write_json(config_path, train_cfg.to_dict())
    result_path = Path(train_cfg.out_dir) / "result.json"
    result_path.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={gpus}",
        "-m",
        "noisybox.benchmark.train_entry",
        "train",
        "--config",
        str(config_path),
    ]
    if not progress:
        cmd.append("--quiet")
    proc = subprocess.run(cmd, check=False)
    if proc.returncode != 0 or not result_path.is_file():
        raise NoisyboxError(
            f"Expected torchrun to train {cell_dir.name} but got exit code {proc.returncode}: {' '.join(cmd)}"
        )
    result = json.loads(result_path.read_text(encoding="utf-8"))
    if not result.get("metrics"):
        raise NoisyboxError(f"Expected test metrics in {result_path} but got none")
    return _Trained(list(result["history"]), dict(result["metrics"]), float(result["wall_time_s"]))


def run_cell(
    out_dir: str | os.PathLike[str],
    cell_id: str,
    gpus: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Train and evaluate one cell of the benchmark stored in ``out_dir``; write its record.

    A picklable module-level function, so that submitit can run it as one job of an array.
    Resumes from the cell's checkpoint; returns the existing record if the cell is done.

    Args:
        out_dir: a results folder prepared by :func:`open_results_folder`.
        cell_id: the id of a cell of the stored grid.
        gpus: ``0`` trains in this process; ``N >= 1`` under torchrun with N processes.
        progress: show the engine's progress bar (stderr).

    Returns:
        The cell's result record.

    Raises:
        NoisyboxError: the folder has no such cell.
    """
    folder = ResultsFolder(Path(out_dir).resolve())
    record_path = folder.record_path(cell_id)
    if record_path.is_file():
        return read_json_object(record_path, what="a JSON result record")
    cfg = folder.load_config()
    cells = {c.cell_id: c for c in expand_grid(cfg)}
    if cell_id not in cells:
        raise NoisyboxError(f"Expected a cell of the grid in {folder.root} but got {cell_id!r}")
    cell = cells[cell_id]
    total_start = time.perf_counter()
    data = prepare_dataset(cfg, folder)
    train_path, noise, corrupt_s = noisy_annotations(cfg, folder, data, cell.eta, cell.seed)
    cell_dir = folder.cell_dir(cell_id)
    cell_dir.mkdir(parents=True, exist_ok=True)
    train_cfg = build_train_config(cfg, cell, data, train_path, cell_dir)
    atomic_write_json(cell_dir / "cell.json", train_cfg.to_dict())

    start = time.perf_counter()
    if gpus >= 1:
        trained = _train_torchrun(train_cfg, gpus, cell_dir, progress)
    else:
        trained = _train_local(train_cfg, progress)
    train_s = time.perf_counter() - start
    metrics = trained.metrics

    record: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "cell_id": cell_id,
        "cell": cell.to_dict(),
        "metrics": {k: float(v) for k, v in metrics.items()},
        "noise": noise,
        "history": trained.history,
        "epochs_trained": len(trained.history),
        "convergence": convergence(trained.history),
        "wall_time_s": trained.wall_time_s,
        "timing": {
            "corrupt_s": corrupt_s,
            "epochs_s": sum(float(h.get("time_s", 0.0)) for h in trained.history),
            "eval_s": sum(float(h.get("eval_time_s", 0.0)) for h in trained.history),
            "train_call_s": train_s,
            "total_s": time.perf_counter() - total_start,
        },
        "train_config": _relative_paths(train_cfg.to_dict(), folder.root),
        "benchmark": cfg.to_dict(),
        "fingerprint": cfg.fingerprint(),
        "versions": versions(),
        "launcher": {"gpus": gpus, "host": platform.node()},
        "finished_at": _now(),
        "collapsed": False,
        "collapse_reasons": [],
    }
    twin = find_twin(record, folder.load_records())
    reasons = detect_collapse(record, twin, cfg.collapse)
    record["collapsed"] = bool(reasons)
    record["collapse_reasons"] = reasons
    atomic_write_json(record_path, record)
    return record


def _relative_paths(data: dict[str, Any], root: Path) -> dict[str, Any]:
    out = {}
    root_s = str(root.resolve())
    for key, value in data.items():
        if isinstance(value, str) and value.startswith(root_s):
            value = os.path.relpath(value, root_s)
        out[key] = value
    return out


# --------------------------------------------------------------------------- the grid


@dataclasses.dataclass
class CellFailure:
    """A cell that raised; the grid continues and the failures are reported at the end."""

    cell_id: str
    error: str


@dataclasses.dataclass
class RunSummary:
    """What one ``run_benchmark`` call did."""

    folder: ResultsFolder
    config: BenchmarkConfig
    cells: list[str]
    trained: list[str]
    skipped: list[str]
    failures: list[CellFailure]
    records: list[dict[str, Any]]
    wall_time_s: float
    corrupt_s: float = 0.0

    @property
    def collapsed(self) -> list[dict[str, Any]]:
        return [r for r in self.records if r.get("collapsed")]


def run_benchmark(
    cfg: BenchmarkConfig,
    out_dir: str | os.PathLike[str],
    *,
    extend: bool = False,
    shard: tuple[int, int] | None = None,
    gpus: int = 0,
    launcher: str = "local",
    jobs: int = 1,
    progress: bool = True,
    slurm_cluster: str | None = None,
    slurm_parameters: dict[str, Any] | None = None,
) -> RunSummary:
    """Run (or continue) a benchmark grid into ``out_dir``.

    Args:
        cfg: a validated config.
        out_dir: the results folder (created, or checked against ``cfg``).
        extend: add the grid of ``cfg`` to a folder made from another grid (see
            :func:`open_results_folder`).
        shard: ``(i, n)``: run only cells ``i, i + n, ...`` of the grid.
        gpus: ``0`` trains in-process; ``N >= 1`` trains each cell with torchrun DDP.
        launcher: ``"local"`` (cells one after the other) or ``"slurm"`` (a submitit job
            array, one job per cell, awaited).
        jobs: with the local launcher, train this many cells at once, each in its own
            process with ``torch.get_num_threads() // jobs`` threads. On a small CPU two
            single-threaded cells train faster in total than one two-threaded cell (see
            ``benchmarks/bench_parallel_cells.py``); each cell's result does not depend on it.
        progress: grid and training progress bars on stderr.
        slurm_cluster: submitit cluster (``None`` = auto-detect Slurm; ``"local"`` runs the
            array as local processes, used by the tests).
        slurm_parameters: extra ``executor.update_parameters`` values (partition, timeout...).

    Returns:
        A summary; cells that raised are listed in ``failures`` and the grid carried on.
    """
    if launcher not in ("local", "slurm"):
        raise NoisyboxError(f"Expected launcher local or slurm but got {launcher!r}")
    if jobs < 1 or (jobs > 1 and launcher != "local"):
        raise NoisyboxError(
            f"Expected jobs >= 1 (and > 1 only with the local launcher) but got {jobs}"
        )
    start = time.perf_counter()
    from noisybox.benchmark.preflight import preflight

    preflight(cfg, out_dir, shard)  # before anything is written: the data every cell needs
    folder, stored = open_results_folder(cfg, out_dir, extend=extend)
    cells = expand_grid(cfg)
    if shard is not None:
        cells = shard_cells(cells, *shard)
    ids = [c.cell_id for c in cells]
    skipped = [i for i in ids if folder.record_path(i).is_file()]
    todo = [c for c in cells if c.cell_id not in set(skipped)]
    failures: list[CellFailure] = []
    trained: list[str] = []
    corrupt_s = 0.0

    if todo:
        data = prepare_dataset(stored, folder)
        check_dataset(stored, folder, data)
        if launcher == "slurm" or jobs > 1:
            # corrupt up front: parallel cells must not race to write the same noisy file
            for key in dict.fromkeys((c.eta, c.seed) for c in todo):
                corrupt_s += noisy_annotations(stored, folder, data, *key)[2]
        if launcher == "slurm":
            trained, failures = _run_slurm(
                folder, todo, gpus, progress, slurm_cluster, slurm_parameters or {}
            )
        elif jobs > 1:
            trained, failures = _run_parallel(
                folder, todo, len(skipped), len(cells), gpus, jobs, progress
            )
        else:
            trained, failures = _run_local(
                folder, stored, data, todo, len(skipped), len(cells), gpus, progress
            )
            corrupt_s = sum(_record_timing(folder, i, "corrupt_s") for i in trained)
    elif stored.dataset.builtin and (folder.data_dir / stored.dataset.builtin).is_dir():
        # nothing to train: still pin (or check) the digest of the data already generated
        check_dataset(stored, folder, prepare_dataset(stored, folder))
    records = refresh_collapse_flags(folder, stored.collapse)
    return RunSummary(
        folder=folder,
        config=stored,
        cells=ids,
        trained=trained,
        skipped=skipped,
        failures=failures,
        records=records,
        wall_time_s=time.perf_counter() - start,
        corrupt_s=corrupt_s,
    )


def _record_timing(folder: ResultsFolder, cell_id: str, key: str) -> float:
    path = folder.record_path(cell_id)
    if not path.is_file():
        return 0.0
    return float(json.loads(path.read_text(encoding="utf-8")).get("timing", {}).get(key, 0.0))


def _run_local(
    folder: ResultsFolder,
    cfg: BenchmarkConfig,
    data: ResolvedDataset,
    todo: list[Cell],
    done: int,
    total: int,
    gpus: int,
    progress: bool,
) -> tuple[list[str], list[CellFailure]]:
    from tqdm.auto import tqdm

    trained: list[str] = []
    failures: list[CellFailure] = []
    bar = tqdm(
        total=total,
        initial=done,
        desc="grid",
        unit="cell",
        disable=not progress,
        file=sys.stderr,
        position=0,
        leave=True,
        dynamic_ncols=True,
    )
    try:
        for cell in todo:
            bar.set_postfix_str(cell.cell_id, refresh=True)
            try:
                rec = run_cell(folder.root, cell.cell_id, gpus=gpus, progress=progress)
            except (NoisyboxError, RuntimeError, ValueError, OSError) as exc:
                _cell_done(folder, cell.cell_id, exc, trained, failures, progress)
            else:
                _cell_done(folder, cell.cell_id, rec, trained, failures, progress)
            bar.update(1)
    finally:
        bar.close()
    return trained, failures


def _cell_done(
    folder: ResultsFolder,
    cell_id: str,
    outcome: dict[str, Any] | BaseException,
    trained: list[str],
    failures: list[CellFailure],
    progress: bool,
) -> None:
    """Book a finished cell: its record (saying so if it collapsed) or its error."""
    if isinstance(outcome, BaseException):
        failures.append(CellFailure(cell_id, f"{type(outcome).__name__}: {outcome}"))
        atomic_write_text(folder.cell_dir(cell_id) / "error.txt", f"{outcome}\n")
        return
    trained.append(cell_id)
    if outcome.get("collapsed") and progress:
        from tqdm.auto import tqdm

        reasons = "; ".join(outcome["collapse_reasons"])
        tqdm.write(f"collapsed: {cell_id}: {reasons}", file=sys.stderr)


def _init_cell_process(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _run_parallel(
    folder: ResultsFolder,
    todo: list[Cell],
    done: int,
    total: int,
    gpus: int,
    jobs: int,
    progress: bool,
) -> tuple[list[str], list[CellFailure]]:
    """Train ``jobs`` cells at once in spawned processes, sharing the CPU threads."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    import torch
    from tqdm.auto import tqdm

    threads = max(1, torch.get_num_threads() // jobs)
    trained: list[str] = []
    failures: list[CellFailure] = []
    bar = tqdm(
        total=total,
        initial=done,
        desc=f"grid ({jobs} jobs)",
        unit="cell",
        disable=not progress,
        file=sys.stderr,
        dynamic_ncols=True,
    )
    pool = ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_cell_process,
        initargs=(threads,),
    )
    try:
        futures = {
            pool.submit(run_cell, str(folder.root), c.cell_id, gpus, False): c.cell_id for c in todo
        }
        for future in as_completed(futures):
            cell_id = futures[future]
            try:
                rec = future.result()
            except Exception as exc:  # a cell's error, or its process died (BrokenProcessPool)
                _cell_done(folder, cell_id, exc, trained, failures, progress)
            else:
                _cell_done(folder, cell_id, rec, trained, failures, progress)
            bar.set_postfix_str(cell_id, refresh=False)
            bar.update(1)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    order = {c.cell_id: i for i, c in enumerate(todo)}
    return sorted(trained, key=order.__getitem__), failures


def _run_slurm(
    folder: ResultsFolder,
    todo: list[Cell],
    gpus: int,
    progress: bool,
    cluster: str | None,
    parameters: dict[str, Any],
) -> tuple[list[str], list[CellFailure]]:
    import submitit
    from tqdm.auto import tqdm

    executor = submitit.AutoExecutor(folder=folder.work_dir / "submitit", cluster=cluster)
    params: dict[str, Any] = {
        "name": "noisybox-benchmark",
        "timeout_min": 24 * 60,
        "nodes": 1,
        "tasks_per_node": 1,
    }
    if gpus >= 1:
        params["gpus_per_node"] = gpus
    params.update(parameters)
    executor.update_parameters(**params)
    ids = [c.cell_id for c in todo]
    jobs = executor.map_array(
        run_cell, [str(folder.root)] * len(ids), ids, [gpus] * len(ids), [False] * len(ids)
    )
    trained: list[str] = []
    failures: list[CellFailure] = []
    bar = tqdm(
        total=len(jobs), desc="grid (submitit)", unit="cell", disable=not progress, file=sys.stderr
    )
    try:
        for cell_id, job in zip(ids, jobs, strict=True):
            try:
                job.result()
            except Exception as exc:  # submitit re-raises the job's error as FailedJobError
                failures.append(
                    CellFailure(
                        cell_id,
                        f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}",
                    )
                )
            else:
                trained.append(cell_id)
            bar.update(1)
    finally:
        bar.close()
    return trained, failures
