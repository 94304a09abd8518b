"""The benchmark runner: train one cell into its record, or run (and continue) a grid.

:func:`run_cell` trains and evaluates one cell of a results folder and writes its record;
:func:`run_benchmark` checks the data once, opens the folder, corrupts the training boxes
once per (eta, seed, and noise condition if several) and launches the cells without a
record. The rooms it calls:
:mod:`~noisybox.study.grid` (the cells), :mod:`~noisybox.study.results` (the
folder and its records), :mod:`~noisybox.study.datasets` (the data and the noisy-file
cache), :mod:`~noisybox.study.collapse_flags` (collapse flags and the alpha = 1 baseline)
and :mod:`~noisybox.study.launchers` (local, parallel, Slurm, torchrun).

A record holds the metrics on the clean test set, the per-epoch history, the measured noise
IoU of its training boxes, the full config, versions and timings, and the ``collapsed``
flag with its reasons. Re-running skips cells with a record and resumes an interrupted cell
from ``work/cells/<cell>/last.pt`` (the engine's own resume), so a killed run loses at most
the epoch in progress.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy

import noisybox
from noisybox._fileio import read_json_object
from noisybox.engine.curves import convergence
from noisybox.errors import NoisyboxError
from noisybox.study import launchers
from noisybox.study.collapse_flags import detect_collapse, find_twin, refresh_collapse_flags
from noisybox.study.datasets import (
    ResolvedDataset,
    check_dataset,
    noisy_annotations,
    prepare_dataset,
)
from noisybox.study.grid import Cell, expand_grid, select_cells, shard_cells
from noisybox.study.guard import check_launcher, locked_study
from noisybox.study.launchers import CellFailure
from noisybox.study.loading import load_config
from noisybox.study.preflight import preflight
from noisybox.study.protocol import stamp_protocol
from noisybox.study.provenance import (
    code_id,
    code_identity,
    code_versions,
    describe_code,
    package_root,
    provenance,
)
from noisybox.study.results import (
    RECORD_SCHEMA,
    ResultsFolder,
    atomic_write_json,
    now,
    open_results_folder,
    relative_paths,
)
from noisybox.study.spec import BenchmarkConfig, ConfigError
from noisybox.study.ultralytics_cell import is_ultralytics_detector, train_ultralytics_cell

__all__ = [
    "RunSummary",
    "build_train_config",
    "calibration_config",
    "check_code",
    "run_benchmark",
    "run_cell",
    "versions",
]


def versions() -> dict[str, str]:
    """Versions of noisybox, torch, torchvision, numpy and python."""
    import torch
    import torchvision

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
        **{k: v for k, v in cfg.schedule.items() if k != "val_format"},  # the runner's below
        **cell.detector.options,
        "train_annotations": str(train_annotations),
        "train_images": str(data.train_images),
        "test_annotations": str(data.test_annotations),
        "test_images": str(data.test_images),
        "train_format": data.format,
        "test_format": data.format,
        "out_dir": str(out_dir),
        "detector": cell.detector.name,
        "backbone": cell.detector.backbone,
        "weights": cell.detector.weights,
        **cell.loss.to_fields(),  # loss, alpha, and alpha_warmup where the cell sets it
        "seed": cell.seed,
        "device": cfg.device,
    }
    return TrainConfig.from_dict(values)


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
        out_dir: a results folder prepared by
            :func:`~noisybox.study.results.open_results_folder`.
        cell_id: the id of a cell of the stored grid.
        gpus: ``0`` trains in this process; ``N >= 1`` under torchrun with N processes.
        progress: show the engine's progress bar (stderr).

    Returns:
        The cell's result record.

    Raises:
        NoisyboxError: the folder has no such cell.
    """
    folder = ResultsFolder(Path(out_dir).resolve())
    if folder.record_path(cell_id).is_file():
        return folder.load_record(cell_id)
    cfg = folder.load_config()
    cells = {c.cell_id: c for c in expand_grid(cfg)}
    if cell_id not in cells:
        raise NoisyboxError(f"Expected a cell of the grid in {folder.root} but got {cell_id!r}")
    cell = cells[cell_id]
    total_start = time.perf_counter()
    data = prepare_dataset(cfg, folder)
    train_path, noise, corrupt_s = noisy_annotations(
        cfg, folder, data, cell.eta, cell.seed, cell.condition
    )
    cell_dir = folder.cell_dir(cell_id)
    cell_dir.mkdir(parents=True, exist_ok=True)
    _note_cell_code(cell_dir)
    start = time.perf_counter()
    trained, train_config = _train_cell(
        cfg, cell, data, train_path, folder, gpus=gpus, progress=progress
    )
    train_s = time.perf_counter() - start

    record: dict[str, Any] = {
        "schema": RECORD_SCHEMA,
        "cell_id": cell_id,
        "cell": cell.to_dict(),
        # no metrics when training stopped on non-finite weights (a collapsed cell)
        "metrics": {k: float(v) for k, v in (trained.metrics or {}).items()},
        "evaluated_on": data.evaluated_on,
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
        "train_config": relative_paths(train_config, folder.root),
        "benchmark": cfg.to_dict(),
        "fingerprint": cfg.fingerprint(),
        "versions": versions(),
        "provenance": provenance(
            train_config, ultralytics=is_ultralytics_detector(cell.detector.name)
        ),
        "launcher": {"gpus": gpus, "host": platform.node()},
        "finished_at": now(),
        "collapsed": False,
        "collapse_reasons": [],
    }
    if is_ultralytics_detector(cell.detector.name):
        import ultralytics

        record["versions"]["ultralytics"] = ultralytics.__version__
    started = _cell_codes(cell_dir)
    if any(c != code_id(code_identity()) for c in started):
        record["provenance"]["resumed_from_code"] = started
    reasons = detect_collapse(record, find_twin(record, folder.load_records()), cfg.collapse)
    record["collapsed"] = bool(reasons)
    record["collapse_reasons"] = reasons
    folder.write_record(record)
    return record


def _train_cell(
    cfg: BenchmarkConfig,
    cell: Cell,
    data: ResolvedDataset,
    train_path: Path,
    folder: ResultsFolder,
    *,
    gpus: int,
    progress: bool,
) -> tuple[launchers.Trained, dict[str, Any]]:
    """``(trained, train_config)`` of one cell: an Ultralytics detector by Ultralytics'
    trainer, any other by the engine (in this process, or under torchrun with ``gpus >= 1``);
    the training config is written to the cell's ``cell.json`` before training starts."""
    cell_dir = folder.cell_dir(cell.cell_id)
    if is_ultralytics_detector(cell.detector.name):
        config_dir = folder.work_dir / "ultralytics"
        trained, train_config = train_ultralytics_cell(
            cfg, cell, data, train_path, cell_dir, config_dir, gpus=gpus, progress=progress
        )
        atomic_write_json(cell_dir / "cell.json", train_config)
        return trained, train_config
    train_cfg = build_train_config(cfg, cell, data, train_path, cell_dir)
    train_config = train_cfg.to_dict()
    atomic_write_json(cell_dir / "cell.json", train_config)
    if gpus >= 1:
        return launchers.train_with_torchrun(train_cfg, gpus, cell_dir, progress), train_config
    return launchers.train_in_process(train_cfg, progress, cell.cell_id), train_config


def calibration_config(
    cfg: BenchmarkConfig,
    *,
    losses: list[str] | None = None,
    seeds: list[int] | None = None,
    schedule: dict[str, Any] | None = None,
) -> BenchmarkConfig:
    """The calibration of a study config: clean boxes, evaluated on the validation split.

    Every cell trains on the calibration training split (the training set without the
    validation images) with clean boxes and is evaluated on the validation split; the test
    split is never resolved. Its records belong in a folder of their own.

    Args:
        cfg: the study's validated config.
        losses: loss names or labels to keep (default: every loss of the study, so that a
            schedule is not chosen on the reference loss alone).
        seeds: the seeds (default: the study's first seed).
        schedule: schedule values replacing the study's (a candidate to compare).

    Raises:
        ConfigError: the result is not a valid config (a bad schedule value, an unknown loss).
    """
    data = cfg.to_dict()
    if losses:
        kept = [
            lo
            for spec, lo in zip(cfg.losses, data["losses"], strict=True)
            if spec.name in losses or spec.label in losses
        ]
        if not kept:
            labels = ", ".join(s.label for s in cfg.losses)
            raise ConfigError([f"losses: Expected one of {labels} but got {losses}"], cfg.source)
        data["losses"] = kept
        kept_labels = [sp.label for sp in cfg.losses if sp.name in losses or sp.label in losses]
        if (data.get("report") or {}).get("reference") not in kept_labels:
            data.pop("report", None)
    data.update(etas=[0.0], seeds=list(seeds or cfg.seeds[:1]), mode="calibration")
    data["schedule"] = {**data["schedule"], **(schedule or {})}
    data.pop("protocol", None)
    data["name"] = f"{cfg.name}-calibration"
    return load_config(data, base_dir=cfg.base_dir, check_paths=False)


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


@locked_study
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
    allow_code_change: bool = False,
) -> RunSummary:
    """Run (or continue) a benchmark grid into ``out_dir``.

    Its length is the docstring (every launcher option); the cells are trained by
    :func:`_launch`.

    Args:
        cfg: a validated config.
        out_dir: the results folder (created, or checked against ``cfg``).
        extend: add the grid of ``cfg`` to a folder made from another grid (see
            :func:`~noisybox.study.results.open_results_folder`).
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
        allow_code_change: train cells of a study whose other cells were trained by other
            code (see :func:`check_code`); refused otherwise.

    Returns:
        A summary; cells that raised are listed in ``failures`` and the grid carried on.
    """
    if launcher not in ("local", "slurm"):
        raise NoisyboxError(f"Expected launcher local or slurm but got {launcher!r}")
    if jobs < 1 or (jobs > 1 and launcher != "local"):
        raise NoisyboxError(
            f"Expected jobs >= 1 (and > 1 only with the local launcher) but got {jobs}"
        )
    check_launcher(launcher, gpus, slurm_cluster)
    start = time.perf_counter()

    preflight(cfg, out_dir, shard)  # before anything is written: the data every cell needs
    existing = ResultsFolder(Path(out_dir).resolve())
    if existing.config_json.is_file():  # before the folder is touched: same code, or allowed
        cells = expand_grid(cfg)
        if shard is not None:
            cells = shard_cells(cells, *shard)
        pending = [c.cell_id for c in cells if not existing.record_path(c.cell_id).is_file()]
        check_code(existing, pending, allow_code_change)
    folder, stored = open_results_folder(cfg, out_dir, extend=extend)
    cells = select_cells(stored, cfg)
    if shard is not None:
        cells = shard_cells(cells, *shard)
    ids = [c.cell_id for c in cells]
    skipped = [i for i in ids if folder.record_path(i).is_file()]
    todo = [c for c in cells if c.cell_id not in set(skipped)]
    failures: list[CellFailure] = []
    trained: list[str] = []
    corrupt_s = 0.0

    if todo:
        stamp_protocol(folder, now())  # before the first cell: refused if the file is missing
        if progress:  # which checkout trains: `python -m` imports the current folder's first
            print(f"code: {describe_code(code_identity())} in {package_root()}", file=sys.stderr)
        data = prepare_dataset(stored, folder)
        check_dataset(stored, folder, data)
        if launcher == "slurm" or jobs > 1:
            # corrupt up front: parallel cells must not race to write the same noisy file
            for key in dict.fromkeys((c.eta, c.seed, c.condition) for c in todo):
                corrupt_s += noisy_annotations(stored, folder, data, *key)[2]
        trained, failures = _launch(
            folder,
            todo,
            (len(skipped), len(cells)),
            gpus=gpus,
            launcher=launcher,
            jobs=jobs,
            progress=progress,
            slurm=(slurm_cluster, slurm_parameters or {}),
        )
        if launcher == "local" and jobs == 1:
            corrupt_s = sum(_corrupt_seconds(folder, i) for i in trained)
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


def _launch(
    folder: ResultsFolder,
    todo: list[Cell],
    counts: tuple[int, int],
    *,
    gpus: int,
    launcher: str,
    jobs: int,
    progress: bool,
    slurm: tuple[str | None, dict[str, Any]],
) -> tuple[list[str], list[CellFailure]]:
    """Train the cells ``todo`` with the chosen launcher; ``counts`` is ``(skipped, total)``.

    Returns:
        The ids trained and the failures.
    """
    if launcher == "slurm":
        return launchers.run_slurm(run_cell, folder, todo, gpus, progress, *slurm)
    if jobs > 1:
        return launchers.run_parallel(run_cell, folder, todo, *counts, gpus, jobs, progress)
    return launchers.run_local(run_cell, folder, todo, *counts, gpus, progress)


def _corrupt_seconds(folder: ResultsFolder, cell_id: str) -> float:
    """The time a trained cell spent corrupting its training boxes (0 if it wrote no record)."""
    if not folder.record_path(cell_id).is_file():
        return 0.0
    return float(folder.load_record(cell_id).get("timing", {}).get("corrupt_s", 0.0))


_CELL_CODE_FILE = "code.json"


def _cell_codes(cell_dir: Path) -> list[str]:
    """The code ids of every session that trained the cell in ``cell_dir``, in order."""
    path = cell_dir / _CELL_CODE_FILE
    if not path.is_file():
        return []
    codes = read_json_object(path).get("codes", [])
    return [str(c) for c in codes] if isinstance(codes, list) else []


def _note_cell_code(cell_dir: Path) -> None:
    """Add this process's code id to the cell's list (a resumed cell names every code)."""
    codes = _cell_codes(cell_dir)
    current = code_id(code_identity())
    if not codes or codes[-1] != current:
        atomic_write_json(cell_dir / _CELL_CODE_FILE, {"codes": [*codes, current]})


def check_code(folder: ResultsFolder, todo: list[str], allow_code_change: bool) -> None:
    """Refuse to train ``todo`` in a study whose cells other code trained, unless allowed.

    The code of a study is the code of its records and of its interrupted cells (their
    ``work/cells/<cell>/code.json``); records written before provenance count as
    unknown code. With ``allow_code_change`` the change is recorded in ``benchmark.json``
    (``code_changes``: when, from which code ids, to which), and the report lists it.

    Raises:
        NoisyboxError: other code trained cells of the folder and the change is not allowed.
    """
    if not todo or not folder.config_json.is_file():
        return
    current = code_id(code_identity())
    seen = {k: v["cells"] for k, v in code_versions(folder.load_records()).items()}
    for cell_id in todo:
        for c in _cell_codes(folder.cell_dir(cell_id)):
            seen.setdefault(c, []).append(f"{cell_id} (interrupted)")
    other = {k: v for k, v in seen.items() if k != current}
    if not other:
        return
    if not allow_code_change:
        names = "; ".join(f"{k}: {len(v)} cell(s), e.g. {v[0]}" for k, v in sorted(other.items()))
        raise NoisyboxError(
            f"Expected the code that trained the cells of {folder.root} but this is "
            f"{describe_code(code_identity())} and other code trained {names}. Run the study "
            "from its own checkout (git worktree at its commit), or pass --allow-code-change "
            "to continue with this code (recorded in benchmark.json and the report)"
        )
    stored = folder.read_stored()
    changes = list(stored.get("code_changes", []))
    changes.append({"at": now(), "from": sorted(other), "to": current, "code": code_identity()})
    atomic_write_json(folder.config_json, {**stored, "code_changes": changes})
