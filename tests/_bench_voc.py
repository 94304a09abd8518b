"""``benchmarks/bench_noise_voc.py`` loaded as a module, for the tests that read real VOC.

The benchmark script owns where the real annotations are looked for (``../shared/realdata``
beside the repository, or ``NOISYBOX_REALDATA``) and how the VOC2007 year folder is unpacked;
the tests share that code instead of copying it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_noise_voc", REPO / "benchmarks" / "bench_noise_voc.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()
REALDATA: Path | None = bench.find_realdata()
