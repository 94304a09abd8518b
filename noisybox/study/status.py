"""How far a study has got: cells done, cells in training (and their epoch), cells not
started, and the time left at the pace of the cells already finished.

:func:`study_status` reads a results folder without changing it: the stored config (its
grid), ``records/`` and, for cells without a record, the checkpoint of an interrupted or
running cell (``work/cells/<cell>/last.pt``, or ``ultralytics_state.json`` for an
Ultralytics cell). ``noisybox status OUT`` prints it.

The time left is the median time a finished cell took (its epochs and evaluations, summed
over every session it ran in, as it ran: two at a time with ``--jobs 2`` takes longer per
cell than alone) times the cells left (an interrupted cell counts for the share of epochs
it still has to train), divided by the cells trained at once.
"""

from __future__ import annotations

import dataclasses
import statistics
from pathlib import Path
from typing import Any

from noisybox._fileio import read_json_object
from noisybox.errors import NoisyboxError
from noisybox.study.grid import expand_grid
from noisybox.study.provenance import code_versions, describe_code
from noisybox.study.results import ResultsFolder
from noisybox.study.ultralytics_state import STATE_FILE
from noisybox.study.validate import load_checked_records

__all__ = ["CellProgress", "StudyStatus", "study_status"]


@dataclasses.dataclass(frozen=True)
class CellProgress:
    """A cell with a checkpoint and no record: ``epochs_done`` of ``epochs`` trained."""

    cell_id: str
    epochs_done: int
    epochs: int


@dataclasses.dataclass
class StudyStatus:
    """What :func:`study_status` found.

    Attributes:
        root: the results folder.
        name: the study's name.
        total: cells in the grid.
        done: cells with a record.
        collapsed: records flagged collapsed.
        in_progress: cells with a checkpoint and no record.
        not_started: cells with neither.
        cell_times: seconds each finished cell took (epochs and evaluations).
        codes: the code versions that trained the finished cells (see
            :func:`noisybox.study.provenance.code_versions`): one line describing each
            -> the number of cells it trained.
    """

    root: Path
    name: str
    total: int
    done: int
    collapsed: int
    in_progress: list[CellProgress]
    not_started: int
    cell_times: list[float]
    codes: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def cells_left(self) -> float:
        """Cells still to train, an interrupted one counting for its untrained share."""
        partial = sum(1 - p.epochs_done / p.epochs for p in self.in_progress if p.epochs > 0)
        return self.not_started + partial

    @property
    def median_cell_s(self) -> float | None:
        """The median of :attr:`cell_times` (``None`` before the first record)."""
        return statistics.median(self.cell_times) if self.cell_times else None

    def time_left_s(self, jobs: int) -> float | None:
        """Seconds left with ``jobs`` cells at once, at the finished cells' median pace.

        >>> s = StudyStatus(Path("."), "x", 4, 2, 0, [CellProgress("c", 1, 4)], 1, [60, 80])
        >>> s.cells_left, s.median_cell_s, s.time_left_s(2)
        (1.75, 70.0, 61.25)
        """
        if self.cells_left == 0:
            return 0.0
        median = self.median_cell_s
        return None if median is None else median * self.cells_left / max(1, jobs)

    def to_dict(self, jobs: int) -> dict[str, Any]:
        """The status as JSON-ready data (what ``status --json`` prints)."""
        return {
            "out": str(self.root),
            "name": self.name,
            "cells": self.total,
            "done": self.done,
            "collapsed": self.collapsed,
            "in_progress": [dataclasses.asdict(p) for p in self.in_progress],
            "not_started": self.not_started,
            "median_cell_s": self.median_cell_s,
            "jobs": jobs,
            "time_left_s": self.time_left_s(jobs),
            "codes": dict(self.codes),
        }


def _cell_seconds(record: dict[str, Any]) -> float | None:
    timing = record.get("timing") or {}
    if "epochs_s" in timing:
        return float(timing["epochs_s"]) + float(timing.get("eval_s", 0.0))
    wall = record.get("wall_time_s")
    return None if wall is None else float(wall)


def _progress(cell_dir: Path, epochs: int) -> int | None:
    """Epochs trained by the cell in ``cell_dir`` (``None``: nothing saved yet)."""
    state = cell_dir / STATE_FILE
    if state.is_file():
        try:
            history = read_json_object(state).get("history")
        except NoisyboxError:
            return 0
        return len(history) if isinstance(history, list) else 0
    checkpoint = cell_dir / "last.pt"
    if not checkpoint.is_file():
        return None
    from noisybox.engine import load_checkpoint

    try:
        epoch = load_checkpoint(checkpoint).get("epoch")
    except NoisyboxError:  # being written, or torn: it counts as started
        return 0
    return min(int(epoch), epochs) if isinstance(epoch, int) else 0


def study_status(out_dir: str | Path) -> StudyStatus:
    """The progress of the study in ``out_dir``.

    Raises:
        NoisyboxError: ``out_dir`` is not a results folder, or its config or a record is
            unreadable (one line naming the file).
    """
    folder = ResultsFolder(Path(out_dir))
    cfg = folder.load_config()
    cells = expand_grid(cfg)
    records = {r["cell_id"]: r for r in load_checked_records(folder, cfg)}
    epochs = int(cfg.schedule.get("epochs", 0))
    in_progress: list[CellProgress] = []
    not_started = 0
    for cell in cells:
        if cell.cell_id in records:
            continue
        done = _progress(folder.cell_dir(cell.cell_id), epochs)
        if done is None:
            not_started += 1
        else:
            in_progress.append(CellProgress(cell.cell_id, done, epochs))
    mine = [records[c.cell_id] for c in cells if c.cell_id in records]
    times = [t for t in (_cell_seconds(r) for r in mine) if t is not None]
    return StudyStatus(
        root=folder.root,
        name=cfg.name,
        total=len(cells),
        done=len(mine),
        collapsed=sum(bool(r.get("collapsed")) for r in mine),
        in_progress=in_progress,
        not_started=not_started,
        cell_times=times,
        codes={describe_code(v["code"]): len(v["cells"]) for v in code_versions(mine).values()},
    )
