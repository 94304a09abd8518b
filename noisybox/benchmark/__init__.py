"""The benchmark's former home, kept as an import path.

A study (config, grid, runner, results folder) lives in :mod:`noisybox.study` and its
report in :mod:`noisybox.report`; the public names of both are re-exported here, so
``from noisybox.benchmark import run_benchmark, load_config, write_report`` keeps working.
"""

from __future__ import annotations

from noisybox.report import Report, build_report, write_report
from noisybox.study import (
    BenchmarkConfig,
    Cell,
    ConfigError,
    ResultsFolder,
    RunSummary,
    detect_collapse,
    expand_grid,
    list_presets,
    load_config,
    run_benchmark,
    run_cell,
)

__all__ = [
    "BenchmarkConfig",
    "Cell",
    "ConfigError",
    "Report",
    "ResultsFolder",
    "RunSummary",
    "build_report",
    "detect_collapse",
    "expand_grid",
    "list_presets",
    "load_config",
    "run_benchmark",
    "run_cell",
    "write_report",
]
