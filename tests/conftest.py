"""Shared test settings."""

from __future__ import annotations

import os

from hypothesis import settings

# CI runs the property tests derandomised, so a red CI always reproduces locally with
# HYPOTHESIS_PROFILE=ci; developers get fresh examples on every run.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))

# ``run-benchmark --jobs auto`` trains cells in parallel processes on a multi-core CPU; the
# tests run benchmarks in-process (one cell at a time) unless a test asks for --jobs.
os.environ.setdefault("NOISYBOX_JOBS", "1")
