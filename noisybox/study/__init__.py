"""A study: its config and presets, the grid of cells, the runner and the results folder.

Rooms: ``spec`` (the YAML's dataclasses), ``loading`` (presets, loading; formerly
``config``) and ``schema`` (its validation: pydantic models), ``grid`` (cells, shards),
``datasets`` (the data, its digest, the noisy-file cache), ``results`` (the results folder
and its records), ``validate`` (a results folder read back), ``collapse_flags`` (collapse
flags and the one alpha = 1 baseline rule), ``launchers`` (local, parallel, Slurm,
torchrun), ``runner`` (one cell, the grid), ``ultralytics_cell`` (one Ultralytics cell),
``preflight``, ``status``, ``guard`` (the lock of a study folder), ``provenance`` and
``protocol``. The report of a study lives in :mod:`noisybox.report`, which reads the
results folder only.
"""

from __future__ import annotations

from noisybox.study.collapse_flags import detect_collapse
from noisybox.study.grid import Cell, expand_grid
from noisybox.study.loading import list_presets, load_config
from noisybox.study.results import ResultsFolder
from noisybox.study.runner import RunSummary, run_benchmark, run_cell
from noisybox.study.spec import BenchmarkConfig, ConfigError

__all__ = [
    "BenchmarkConfig",
    "Cell",
    "ConfigError",
    "ResultsFolder",
    "RunSummary",
    "detect_collapse",
    "expand_grid",
    "list_presets",
    "load_config",
    "run_benchmark",
    "run_cell",
]
