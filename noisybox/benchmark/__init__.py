"""The benchmark: config schema and presets, the grid runner and launchers, the report.

Rooms: ``config`` (schema, presets), ``grid`` (cells, shards), ``results`` (the results
folder and its records), ``datasets`` (the data, its digest, the noisy-file cache),
``collapse`` (collapse flags and the one alpha = 1 baseline rule), ``launchers`` (local,
parallel, Slurm, torchrun), ``runner`` (one cell, the grid), ``summary`` (the numbers of a
report), ``report`` and ``plots``.
"""

from __future__ import annotations

from noisybox.benchmark.collapse import detect_collapse
from noisybox.benchmark.config import (
    BenchmarkConfig,
    ConfigError,
    list_presets,
    load_config,
)
from noisybox.benchmark.grid import Cell, expand_grid
from noisybox.benchmark.runner import RunSummary, run_benchmark, run_cell

__all__ = [
    "BenchmarkConfig",
    "Cell",
    "ConfigError",
    "RunSummary",
    "detect_collapse",
    "expand_grid",
    "list_presets",
    "load_config",
    "run_benchmark",
    "run_cell",
]
