"""The results folder of a benchmark and its records.

Layout (``OUT``)::

    OUT/benchmark.json       the validated config, its fingerprint and the builtin dataset's
                             digest (committed)
    OUT/benchmark.yaml       the same config, for humans
    OUT/records/<cell>.json  one result record per finished cell, written atomically
    OUT/report/              tables (Markdown, CSV, LaTeX) and plots
    OUT/work/                regenerable: dataset, noisy annotations, checkpoints (git-ignored)

A record is a plain JSON object (see :func:`noisybox.benchmark.runner.run_cell`); the
records folder alone is enough to rebuild a report or continue a study in another session.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

import yaml

from noisybox._fileio import atomic_write_text, read_json_object
from noisybox.benchmark.config import BenchmarkConfig, config_diff, load_config
from noisybox.errors import NoisyboxError

__all__ = [
    "RECORD_SCHEMA",
    "ResultsFolder",
    "atomic_write_json",
    "now",
    "open_results_folder",
    "relative_paths",
]

RECORD_SCHEMA = 1
_GITIGNORE = "# regenerable: dataset, noisy annotations, checkpoints\nwork/\n"


def now() -> str:
    """The current UTC time, ISO 8601 to the second (``finished_at``, ``updated_at``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON (numpy scalars and paths converted), atomically."""
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


def relative_paths(data: dict[str, Any], root: Path) -> dict[str, Any]:
    """``data`` with string values under ``root`` made relative to it (a movable record).

    >>> relative_paths({"out_dir": "/r/work/cells/a", "seed": 0}, Path("/r"))
    {'out_dir': 'work/cells/a', 'seed': 0}
    """
    out = {}
    root_s = str(root.resolve())
    for key, value in data.items():
        if isinstance(value, str) and value.startswith(root_s):
            value = os.path.relpath(value, root_s)
        out[key] = value
    return out


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

    def noisy_dir(self, eta: float, seed: int, condition: str | None = None) -> Path:
        """The noisy training set of ``(eta, seed)`` (and noise condition, if several)."""
        suffix = "" if condition is None else f"__{condition}"
        return self.work_dir / "noisy" / f"eta{eta:g}__s{seed}{suffix}"

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

    def load_record(self, cell_id: str) -> dict[str, Any]:
        """The record of one finished cell.

        Raises:
            NoisyboxError: it is not valid JSON (named).
        """
        return read_json_object(self.record_path(cell_id), what="a JSON result record")

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

    def write_record(self, record: dict[str, Any]) -> None:
        """Write (or replace) a cell's record atomically."""
        atomic_write_json(self.record_path(record["cell_id"]), record)


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
        "updated_at": now(),
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
