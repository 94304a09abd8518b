"""A results folder read back for ``report`` and ``status``: its config through the same
schema as ``run-benchmark``, and every record checked against its file name and the grid.

A record copied inside ``records/``, one whose ``cell`` was edited, or one of a cell the
grid does not hold would otherwise be averaged in as another seed or replace another
cell's row; a metric that is not a number would surface as a pandas error. Each is named
in one line and refused instead.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from noisybox._fileio import read_json_object
from noisybox.errors import NoisyboxError
from noisybox.study.grid import expand_grid
from noisybox.study.loading import load_config
from noisybox.study.name_checks import stored_registries
from noisybox.study.results import ResultsFolder
from noisybox.study.spec import BenchmarkConfig

__all__ = ["check_record", "load_checked_records", "load_stored_config"]


def load_stored_config(folder: ResultsFolder) -> BenchmarkConfig:
    """The folder's ``benchmark.json`` config, validated by the schema ``run-benchmark``
    uses (dataset paths are not required to exist: a report reads records only). Names and
    the schedule are checked against the installed registries where torch imports, and
    taken as stored where it does not (``run-benchmark`` checked them when it wrote the
    file), so that reading a study needs no torch
    (:func:`~noisybox.study.name_checks.stored_registries`).

    Raises:
        NoisyboxError: no ``benchmark.json``, or a config the schema refuses (every
            problem named, as ``run-benchmark`` names them).
    """
    stored = folder.read_stored()
    try:
        return load_config(
            stored["config"],
            base_dir=stored.get("base_dir") or ".",
            check_paths=False,
            registries=stored_registries(),
        )
    except NoisyboxError as exc:
        message = " ".join(str(exc).split())
        raise NoisyboxError(
            f"Expected a valid benchmark config in {folder.config_json} but got: {message}"
        ) from None


def check_record(record: dict[str, Any], path: Path, cells: dict[str, dict[str, Any]]) -> None:
    """Refuse a record that does not belong where it is.

    Args:
        record: the record read from ``path``.
        path: its file, ``records/<cell_id>.json``.
        cells: cell id -> ``Cell.to_dict()`` of the stored grid.

    Raises:
        NoisyboxError: its ``cell_id`` is not its file name (a copy), names no cell of the
            grid (a stray), its ``cell`` differs from the grid's cell of that id (an
            edit), or a metric is not a finite number or ``null``.
    """
    cell_id = record.get("cell_id")
    if cell_id != path.stem:
        raise NoisyboxError(
            f"Expected cell_id {path.stem!r} (the file's name) in {path} but got "
            f"{cell_id!r}; a copied or renamed record is not averaged in"
        )
    if cell_id not in cells:
        raise NoisyboxError(
            f"Expected a record of a cell of the grid in benchmark.json but got {path} "
            f"(cell {cell_id!r} is not in the grid)"
        )
    expected = cells[cell_id]
    cell = record.get("cell")
    got = {k: cell.get(k) for k in (*expected, "condition")} if isinstance(cell, dict) else cell
    want = {**expected, "condition": expected.get("condition")}
    if got != want:
        changed = (
            ", ".join(
                f"{k} {got.get(k)!r} (grid: {want[k]!r})" for k in want if got.get(k) != want[k]
            )
            if isinstance(got, dict)
            else repr(cell)
        )
        raise NoisyboxError(
            f"Expected the cell of {cell_id} as the grid defines it in {path} but got {changed}"
        )
    metrics = record.get("metrics")
    if not isinstance(metrics, dict):
        raise NoisyboxError(
            f"Expected a 'metrics' object in {path} but got {type(metrics).__name__}"
        )
    for name, value in metrics.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if value is not None and not (number and math.isfinite(value)):
            raise NoisyboxError(
                f"Expected metric {name} a finite number in {path} but got {value!r}"
            )


def load_checked_records(
    folder: ResultsFolder, cfg: BenchmarkConfig | None = None
) -> list[dict[str, Any]]:
    """Every record of the folder, sorted by cell id, each checked by :func:`check_record`.

    Args:
        folder: the results folder.
        cfg: its validated config (default: :func:`load_stored_config`).

    Raises:
        NoisyboxError: as :func:`load_stored_config` and :func:`check_record`, or a record
            that is not a JSON object.
    """
    cfg = cfg if cfg is not None else load_stored_config(folder)
    cells = {c.cell_id: c.to_dict() for c in expand_grid(cfg)}
    records: list[dict[str, Any]] = []
    if not folder.records_dir.is_dir():
        return records
    for path in sorted(folder.records_dir.glob("*.json")):
        record = read_json_object(path, what="a JSON result record")
        check_record(record, path, cells)
        records.append(record)
    return records
