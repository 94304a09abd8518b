"""Shared test settings."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

# CI runs the property tests derandomised, so a red CI always reproduces locally with
# HYPOTHESIS_PROFILE=ci; developers get fresh examples on every run.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# ``run-benchmark --jobs auto`` trains cells in parallel processes on a multi-core CPU; the
# tests run benchmarks in-process (one cell at a time) unless a test asks for --jobs.
os.environ.setdefault("NOISYBOX_JOBS", "1")


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """Torch on one thread for a module (``pytestmark = pytest.mark.usefixtures(...)``):
    tiny tensors only pay threading overhead, and threads thrash on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
