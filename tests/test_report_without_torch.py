"""The report reads a results folder and nothing else: it imports and runs without torch.

A subprocess makes ``torch`` (and torchvision, Ultralytics) unimportable with a
``sys.meta_path`` finder, imports :mod:`noisybox.report` and rebuilds the report of a
committed study from its records; the regenerated files must equal the committed ones.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "benchmarks" / "results" / "paper-mini"

SCRIPT = textwrap.dedent(
    """
    import shutil, sys
    from pathlib import Path

    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision", "ultralytics"):
                raise ImportError(f"{name} is made unimportable by this test")
            return None

    sys.meta_path.insert(0, NoTorch())
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the finder did not block torch")

    from noisybox.report import write_report

    study, out = Path(sys.argv[1]), Path(sys.argv[2])
    shutil.copytree(study, out, ignore=shutil.ignore_patterns("report"), dirs_exist_ok=True)
    write_report(out, plots=False)
    for name in ("report.md", "table3.tex", "summary.csv", "paired_differences.csv"):
        if (out / "report" / name).read_bytes() != (study / "report" / name).read_bytes():
            raise SystemExit(f"{name} differs from the committed report")
    print("torch modules:", sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
    """
)


def test_report_builds_without_torch(tmp_path: Path) -> None:
    if not (STUDY / "benchmark.json").is_file():
        pytest.skip("the committed paper-mini study is not in this checkout")
    out = tmp_path / "study"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(STUDY), str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "torch modules: []" in done.stdout
