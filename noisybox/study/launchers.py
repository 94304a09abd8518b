"""How cells train: in this process or under torchrun, and how a grid's cells are launched.

One cell trains in-process (:func:`train_in_process`) or with ``torchrun`` DDP on N
processes (:func:`train_with_torchrun`). A list of cells is run one after the other
(:func:`run_local`), N at once in spawned processes sharing the CPU threads
(:func:`run_parallel`), or as a submitit job array on Slurm (:func:`run_slurm`). Each
launcher calls the function that trains one cell and writes its record (the runner's
``run_cell``), books what finished and what failed, and carries on after a failure.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from noisybox._fileio import atomic_write_json, atomic_write_text, read_json_object
from noisybox._progress import progress_bar, progress_write
from noisybox.engine.collapse import stopped_nonfinite
from noisybox.errors import NoisyboxError
from noisybox.study.grid import Cell
from noisybox.study.guard import die_with_parent
from noisybox.study.results import ResultsFolder

__all__ = [
    "CellFailure",
    "Trained",
    "run_local",
    "run_parallel",
    "run_slurm",
    "train_in_process",
    "train_with_torchrun",
]

#: ``run_cell(out_dir, cell_id, gpus, progress) -> record``: trains a cell, writes its record.
RunCell = Callable[..., dict[str, Any]]


@dataclasses.dataclass
class CellFailure:
    """A cell that raised; the grid continues and the failures are reported at the end."""

    cell_id: str
    error: str


@dataclasses.dataclass
class Trained:
    """What training one cell gave: its history, clean-test metrics and wall time."""

    history: list[dict[str, Any]]
    metrics: dict[str, float]
    wall_time_s: float


def train_in_process(train_cfg: Any, progress: bool, label: str | None = None) -> Trained:
    """Train a ``TrainConfig`` in this process; each evaluation is one line on stderr,
    starting with ``label``, whether or not ``progress`` shows the training's own progress.

    Raises:
        NoisyboxError: training gave no test metrics.
    """
    from noisybox.engine import train

    result = train(train_cfg, progress=progress, eval_lines=True, label=label)
    if result.metrics is None and not stopped_nonfinite(result.history):
        raise NoisyboxError(f"Expected test metrics from training {train_cfg.out_dir} but got none")
    return Trained(list(result.history), dict(result.metrics or {}), float(result.wall_time_s))


def train_with_torchrun(train_cfg: Any, gpus: int, cell_dir: Path, progress: bool) -> Trained:
    """Train under torchrun with ``gpus`` processes (DDP); read back rank 0's result.json.

    Raises:
        NoisyboxError: torchrun failed or wrote no metrics.
    """
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
        "noisybox.engine",
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
    result = read_json_object(result_path, what="a training result")
    if not result.get("metrics") and not stopped_nonfinite(result.get("history") or []):
        raise NoisyboxError(f"Expected test metrics in {result_path} but got none")
    return Trained(
        list(result["history"]), dict(result["metrics"] or {}), float(result["wall_time_s"])
    )


def _grid_bar(total: int, done: int, desc: str, progress: bool, **kwargs: Any) -> Any:
    """The grid's bar: live on a terminal, one line per finished cell elsewhere."""
    return progress_bar(
        total, desc, enabled=progress, unit="cell", interval=0, initial=done, **kwargs
    )


def run_local(
    run_cell: RunCell,
    folder: ResultsFolder,
    todo: list[Cell],
    done: int,
    total: int,
    gpus: int,
    progress: bool,
) -> tuple[list[str], list[CellFailure]]:
    """Train the cells one after the other in this process."""
    trained: list[str] = []
    failures: list[CellFailure] = []
    bar = _grid_bar(total, done, "grid", progress, position=0, leave=True)
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
        reasons = "; ".join(outcome["collapse_reasons"])
        progress_write(f"collapsed: {cell_id}: {reasons}")


def _init_cell_process(threads: int) -> None:
    import torch

    die_with_parent()

    torch.set_num_threads(threads)


def run_parallel(
    run_cell: RunCell,
    folder: ResultsFolder,
    todo: list[Cell],
    done: int,
    total: int,
    gpus: int,
    jobs: int,
    progress: bool,
) -> tuple[list[str], list[CellFailure]]:
    """Train ``jobs`` cells at once in spawned processes, sharing the CPU threads.

    ``run_cell`` must be a module-level function (it is pickled into the workers).
    """
    import torch

    threads = max(1, torch.get_num_threads() // jobs)
    trained: list[str] = []
    failures: list[CellFailure] = []
    bar = _grid_bar(total, done, f"grid ({jobs} jobs)", progress)
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


def run_slurm(
    run_cell: RunCell,
    folder: ResultsFolder,
    todo: list[Cell],
    gpus: int,
    progress: bool,
    cluster: str | None,
    parameters: dict[str, Any],
) -> tuple[list[str], list[CellFailure]]:
    """Submit one submitit job per cell (an array) and wait for them.

    ``run_cell`` must be a module-level function (submitit pickles it into the jobs).
    """
    import submitit

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
    bar = _grid_bar(len(jobs), 0, "grid (submitit)", progress)
    try:
        for cell_id, job in zip(ids, jobs, strict=True):
            try:
                job.result()
            except Exception as exc:  # submitit re-raises the job's error as FailedJobError
                text = str(exc).strip()
                last = text.splitlines()[-1] if text else ""
                failures.append(CellFailure(cell_id, f"{type(exc).__name__}: {last}"))
            else:
                trained.append(cell_id)
            bar.update(1)
    finally:
        bar.close()
    return trained, failures
