"""The results folder of a benchmark and its records.

Layout (``OUT``)::

    OUT/benchmark.json       the validated config, its fingerprint and the builtin dataset's
                             digest (committed)
    OUT/benchmark.yaml       the same config, for humans
    OUT/records/<cell>.json  one result record per finished cell, written atomically
    OUT/report/              tables (Markdown, CSV, LaTeX) and plots
    OUT/work/                regenerable: dataset, noisy annotations, checkpoints (git-ignored)

A record is a plain JSON object (see :func:`noisybox.study.runner.run_cell`); the
records folder alone is enough to rebuild a report or continue a study in another session.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import os
from pathlib import Path
from typing import Any

import yaml

from noisybox._fileio import atomic_write_json, atomic_write_text, read_json_object
from noisybox.errors import NoisyboxError
from noisybox.study.grid import expand_grid
from noisybox.study.loading import load_config
from noisybox.study.spec import BenchmarkConfig, NoiseConfig, config_diff

__all__ = [
    "KEPT_KEYS",
    "RECORD_SCHEMA",
    "ResultsFolder",
    "label_noisy_cells",
    "now",
    "open_results_folder",
    "relative_paths",
]

RECORD_SCHEMA = 1
#: Keys of ``benchmark.json`` that a later run keeps as they are (stamped once).
KEPT_KEYS = ("dataset_digest", "protocol", "code_changes", "mode")
_GITIGNORE = (
    "# regenerable: dataset, noisy annotations, checkpoints\nwork/\n"
    "# the lock of a run in progress\n.noisybox-run.*\n"
)


def now() -> str:
    """The current UTC time, ISO 8601 to the second (``finished_at``, ``updated_at``)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


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
            etas, seeds, noise conditions) but the same dataset and schedule; the stored
            config becomes the union of both grids. A study of one noise condition that
            gains another becomes a study of several: its noisy cells' records, checkpoint
            folders and noisy files take the label of its condition (see
            :func:`label_noisy_cells`), as a study of several conditions names them.

    Returns:
        The folder and the config stored in it (the union of grids when extending).

    Raises:
        NoisyboxError: the folder holds a different benchmark (the keys are listed); the
            union of the grids is not a valid config (two noise conditions with one
            label); a noisy cell to be labelled was interrupted.
    """
    folder = ResultsFolder(Path(out_dir).resolve())
    folder.root.mkdir(parents=True, exist_ok=True)
    stored_cfg = cfg
    kept: dict[str, Any] = {}
    if folder.config_json.is_file():
        stored = folder.read_stored()
        # what later steps stamped into the file: the dataset digest, the protocol's stamp,
        # the code changes a user allowed
        kept = {k: stored[k] for k in KEPT_KEYS if k in stored}
        old = stored["config"]
        diff = config_diff(old, cfg.to_dict())
        if diff:
            axes = ("detectors", "losses", "etas", "seeds", "collapse", "noise")
            protocol = [line for line in diff if not line.startswith(axes)]
            if not extend:
                raise NoisyboxError(
                    f"Expected {folder.root} to hold results of the same config but got "
                    f"differences: {'; '.join(diff)}. Use --extend to add cells to it, or another --out"
                )
            if protocol:
                raise NoisyboxError(
                    f"Expected --extend to keep the dataset and schedule of {folder.root} "
                    f"but got differences: {'; '.join(protocol)}"
                )
            merged = dict(cfg.to_dict())
            for key in ("detectors", "losses"):
                merged[key] = _union(old[key], merged[key])
            merged["etas"] = sorted(set(old["etas"]) | set(merged["etas"]))
            merged["seeds"] = sorted(set(old["seeds"]) | set(merged["seeds"]))
            noise = _union(_as_list(old["noise"]), _as_list(merged["noise"]))
            merged["noise"] = noise if len(noise) > 1 else noise[0]
            try:
                stored_cfg = load_config(merged, base_dir=cfg.base_dir, check_paths=False)
            except NoisyboxError as exc:
                raise NoisyboxError(
                    f"Expected --extend to give a valid union of the grid of {folder.root} "
                    f"and this config's but got: {exc}"
                ) from None
            if stored_cfg.noise_conditions and not isinstance(old["noise"], list):
                before = load_config(old, base_dir=cfg.base_dir, check_paths=False)
                label_noisy_cells(folder, before, stored_cfg.noise)
    data = stored_cfg.to_dict()
    payload = {
        "fingerprint": stored_cfg.fingerprint(),
        "config": data,
        "base_dir": stored_cfg.base_dir,
        "source": stored_cfg.source,
        "updated_at": now(),
    }
    payload.update(kept)
    atomic_write_json(folder.config_json, payload)
    atomic_write_text(folder.root / "benchmark.yaml", yaml.safe_dump(data, sort_keys=False))
    gitignore = folder.root / ".gitignore"
    if not gitignore.exists():
        atomic_write_text(gitignore, _GITIGNORE)
    return folder, stored_cfg


def label_noisy_cells(folder: ResultsFolder, cfg: BenchmarkConfig, condition: NoiseConfig) -> int:
    """Give the noisy cells of a study of one noise condition the label of ``condition``.

    What a study of several conditions calls them: the record
    ``det__loss__eta0.3__s0.json`` becomes ``det__loss__<label>__eta0.3__s0.json`` with
    ``cell.condition`` and ``noise.condition`` set and its paths moved, its checkpoint
    folder ``work/cells/<id>`` and the noisy files ``work/noisy/eta0.3__s0`` move with it.
    The clean cells (eta = 0) keep their ids: every condition shares them. Each record is
    written under its new name before the old one is removed, so a run stopped half-way
    is finished by running it again.

    Args:
        folder: the results folder.
        cfg: the config of one noise condition the folder was made from.
        condition: that condition, as the study of several holds it.

    Returns:
        The number of records renamed.

    Raises:
        NoisyboxError: a noisy cell without a record has a checkpoint folder: an
            interrupted cell, which would not resume from a moved noisy file. Nothing
            is moved then.
    """
    label = condition.label
    moves = [
        (cell.cell_id, dataclasses.replace(cell, condition=condition).cell_id)
        for cell in expand_grid(cfg)
        if cell.eta != 0
    ]
    for old_id, new_id in moves:
        finished = folder.record_path(old_id).is_file() or folder.record_path(new_id).is_file()
        if folder.cell_dir(old_id).is_dir() and not finished:
            raise NoisyboxError(
                f"Expected every noisy cell of {folder.root} to be finished or not started "
                f"before --extend adds a noise condition, but {old_id} was interrupted "
                f"({folder.cell_dir(old_id)}). Finish it with the study's own command, or "
                "delete that folder to drop its progress"
            )
    renamed = 0
    for old_id, new_id in moves:
        if folder.record_path(old_id).is_file():
            record = folder.load_record(old_id)
            record["cell_id"] = new_id
            record["cell"]["condition"] = label
            record["noise"]["condition"] = label
            record["noise"]["file"] = _moved(record["noise"].get("file"), label, old_id, new_id)
            record["train_config"] = {
                k: _moved(v, label, old_id, new_id) for k, v in record["train_config"].items()
            }
            folder.write_record(record)
        if folder.cell_dir(old_id).is_dir() and not folder.cell_dir(new_id).exists():
            folder.cell_dir(old_id).rename(folder.cell_dir(new_id))
        if folder.record_path(old_id).is_file():
            folder.record_path(old_id).unlink()  # last: a stopped run is finished by a re-run
            renamed += 1
    for eta, seed in dict.fromkeys((e, s) for s in cfg.seeds for e in cfg.etas if e != 0):
        old_dir, new_dir = folder.noisy_dir(eta, seed), folder.noisy_dir(eta, seed, label)
        meta = old_dir / "noise.json"
        if meta.is_file() and not new_dir.exists():
            noise = read_json_object(meta)
            noise["condition"] = label
            noise["file"] = _moved(noise.get("file"), label)
            atomic_write_json(meta, noise)
            old_dir.rename(new_dir)
    return renamed


def _moved(value: Any, label: str, old_id: str = "", new_id: str = "") -> Any:
    """A record's relative path with its noisy folder and cell folder labelled.

    >>> _moved("work/noisy/eta0.3__s0/train.json", "uniform")
    'work/noisy/eta0.3__s0__uniform/train.json'
    >>> _moved("work/noisy/eta0.3__s0__uniform/train.json", "uniform")
    'work/noisy/eta0.3__s0__uniform/train.json'
    >>> _moved("work/cells/a__eta0.3__s0", "uniform", "a__eta0.3__s0", "a__uniform__eta0.3__s0")
    'work/cells/a__uniform__eta0.3__s0'
    """
    if not isinstance(value, str):
        return value
    parts = value.split("/")
    if len(parts) > 2 and parts[:2] == ["work", "noisy"] and not parts[2].endswith(f"__{label}"):
        parts[2] += f"__{label}"  # once: a re-run after a stop finds it labelled
    elif len(parts) > 2 and parts[:2] == ["work", "cells"] and parts[2] == old_id:
        parts[2] = new_id
    return "/".join(parts)


def _as_list(noise: Any) -> list[Any]:
    """A stored ``noise:`` as a list of conditions (one mapping is one condition)."""
    return list(noise) if isinstance(noise, list) else [noise]


def _union(old: list[Any], new: list[Any]) -> list[Any]:
    out = list(old)
    for item in new:
        if item not in out:
            out.append(item)
    return out
