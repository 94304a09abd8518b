"""One run per study folder and no orphans (issue 31, class 6).

* A second ``run-benchmark`` on a folder another run holds is refused with one line
  naming the holder's pid; nothing of the other run is touched.
* ``kill -9`` of a ``--jobs 2`` parent leaves no process behind: its workers die with it.
* The temporary files a killed run left are removed at the next start (user files kept).
* ``--launcher slurm`` without Slurm and ``--gpus 1`` without a GPU are refused up front.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.errors import NoisyboxError
from noisybox.study.guard import PID_NAME, remove_leftover_temporaries, study_lock

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from noisybox.cli import main; main()"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}

PAIR = {
    "name": "pair",
    "dataset": {"builtin": "shapes", "num_train": 8, "num_val": 4, "image_size": 64, "seed": 0},
    "detectors": [
        {
            "name": "fcos",
            "backbone": "resnet18_025",
            "options": {"fpn_channels": 32, "detector_kwargs": {"num_convs": 1}},
        }
    ],
    "losses": ["iou", {"name": "alpha-iou", "alpha": 3}],
    "etas": [0.3],
    "seeds": [0],
    "schedule": {"epochs": 40, "batch_size": 4, "image_size": 64, "workers": 0},
    "device": "cpu",
}
TINY = {
    **PAIR,
    "name": "tiny",
    "dataset": {"builtin": "shapes", "num_train": 4, "num_val": 2, "image_size": 64},
    "losses": ["iou"],
    "schedule": {"epochs": 1, "batch_size": 2, "image_size": 64, "workers": 0},
}


def _config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _start(config: Path, out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*CLI, "run-benchmark", str(config), "--out", str(out), "--quiet", *extra],
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _wait(condition: Callable[[], bool], proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 180
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"{what} not reached within 180 s"
        time.sleep(0.05)


def _descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (read from /proc: children of children included)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; it only waits for its parent to reap it


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.slow
def test_second_run_on_a_busy_folder_is_refused_naming_the_holder(tmp_path: Path) -> None:
    config, out = _config(tmp_path, PAIR), tmp_path / "out"
    first = _start(config, out)
    try:
        _wait(
            lambda: (out / PID_NAME).is_file() and (out / "work" / "cells").is_dir(),
            first,
            "training",
        )
        result = CliRunner().invoke(main, ["run-benchmark", str(config), "--out", str(out), "-q"])
        error = _one_error_line(result)
        assert f"pid {first.pid}" in error and "run-benchmark" in error, error
        assert first.poll() is None  # the first run carries on
    finally:
        first.kill()
        first.wait()


def test_study_lock_is_exclusive_and_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "new"
    with (
        study_lock(out),
        pytest.raises(NoisyboxError, match=f"pid {os.getpid()}"),
        study_lock(out),
    ):
        pass
    assert not out.exists()  # created for the lock only: removed again
    (tmp_path / "kept").mkdir()
    with study_lock(tmp_path / "kept"):
        pass
    assert list((tmp_path / "kept").iterdir()) == []
    with study_lock(tmp_path / "kept"):  # released: a later run takes it
        pass


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_kill_9_of_a_jobs_2_parent_leaves_no_process_behind(tmp_path: Path) -> None:
    config, out = _config(tmp_path, PAIR), tmp_path / "out"
    parent = _start(config, out, "--jobs", "2")
    try:
        cells = out / "work" / "cells"
        _wait(lambda: len(list(cells.glob("*/cell.json"))) >= 2, parent, "two cells training")
        below = _descendants(parent.pid)
        assert len(below) >= 2, below  # the two workers (and multiprocessing's tracker)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 20
    while any(_alive(p) for p in below) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = sorted(p for p in below if _alive(p))
    for pid in left:  # never leave them running, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert left == [], f"processes left running after kill -9 of the parent: {left}"


@pytest.mark.slow
def test_leftover_temporaries_are_removed_at_the_next_start(tmp_path: Path) -> None:
    config, out = _config(tmp_path, TINY), tmp_path / "out"
    leftovers = [
        out / "work" / "data" / "images" / "train" / ".000001.png.k2j4_x9a.tmp",
        out / "records" / ".cell.json.abcd1234.tmp",
    ]
    folder = out / "work" / ".data.q1w2e3r4.tmp"
    mine = [out / "notes.tmp", out / "work" / ".my.draft.tmp"]
    for path in [*leftovers, *mine]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    folder.mkdir()
    (folder / "instances_train.json").write_text("{}")
    result = CliRunner().invoke(main, ["run-benchmark", str(config), "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert not any(p.exists() for p in [*leftovers, folder])
    assert all(p.read_text() == "x" for p in mine)
    assert len(list((out / "records").glob("*.json"))) == 1


def test_remove_leftover_temporaries_matches_only_atomic_write_names(tmp_path: Path) -> None:
    from noisybox._fileio import atomic_write_text

    atomic_write_text(tmp_path / "a.json", "{}")
    made = tmp_path / ".a.json.zz_9yy8x.tmp"
    made.write_text("half")
    (tmp_path / "b.tmp").write_text("user")
    assert remove_leftover_temporaries(tmp_path) == [made]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.tmp"]


def test_launcher_slurm_without_slurm_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, out = _config(tmp_path, TINY), tmp_path / "out"
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = CliRunner().invoke(
        main, ["run-benchmark", str(config), "--out", str(out), "--launcher", "slurm", "-q"]
    )
    assert "Expected Slurm (sbatch on the PATH)" in _one_error_line(result)
    assert not out.exists()


def test_gpus_beyond_the_host_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    config, out = _config(tmp_path, TINY), tmp_path / "out"
    result = CliRunner().invoke(
        main, ["run-benchmark", str(config), "--out", str(out), "--gpus", "1", "-q"]
    )
    assert "Expected --gpus at most the 0 CUDA device(s)" in _one_error_line(result)
    assert not out.exists()
