"""The benchmark: config schema and presets, the grid runner and launchers, the report.

The runner imports torch and the engine only when a cell trains, so that reading a config
or rebuilding a report from records stays light.
"""

from __future__ import annotations

from noisybox.benchmark.config import (
    BenchmarkConfig,
    ConfigError,
    list_presets,
    load_config,
)
from noisybox.benchmark.runner import (
    Cell,
    RunSummary,
    detect_collapse,
    expand_grid,
    run_benchmark,
    run_cell,
)

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
