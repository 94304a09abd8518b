"""One run per study folder, no orphans, no leftovers.

* :func:`locked_study` holds a lock (``filelock``) on the ``--out`` folder for a whole
  :func:`~noisybox.study.runner.run_benchmark` call: a second run on the same folder is
  refused with one line naming the holder's process id instead of training the same
  cells and tripping over the other's temporary files. The lock is the kernel's (``flock``):
  a run killed with ``SIGKILL`` releases it with its last file descriptor.
* Once the lock is held, the temporary files and folders an interrupted run left behind
  (``.<name>.<random>.tmp`` of :mod:`noisybox._fileio`'s atomic writes) are removed: no
  other process may be writing them.
* :func:`die_with_parent` makes a worker process (the ``--jobs N`` pool) end when the
  process that started it dies, ``kill -9`` included: Linux's parent-death signal, and a
  watchdog thread where that is not available.
* :func:`check_launcher` refuses ``--launcher slurm`` without Slurm and ``--gpus N`` beyond
  the GPUs present, before anything is written.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from noisybox._outputs import resolve_output
from noisybox.errors import NoisyboxError

__all__ = [
    "LOCK_NAME",
    "PID_NAME",
    "check_launcher",
    "die_with_parent",
    "locked_study",
    "remove_leftover_temporaries",
    "study_lock",
]

#: The lock file and the file naming its holder's pid, in the results folder.
LOCK_NAME = ".noisybox-run.lock"
PID_NAME = ".noisybox-run.pid"

# the temporary names of noisybox._fileio: ".<target>.<8 random chars>.tmp",
# and ".<target>.<8 random chars>.old" for the folder an atomic_dir swap moves aside.
_TEMPORARY = re.compile(r"^\..+\.[a-z0-9_]{8}\.(tmp|old)$")

_F = TypeVar("_F", bound=Callable[..., Any])


def _holder(root: Path) -> str:
    for _ in range(20):  # the holder writes its pid just after taking the lock
        try:
            pid = (root / PID_NAME).read_text().strip()
        except OSError:
            pid = ""
        if pid:
            return f"pid {pid}"
        time.sleep(0.05)
    return "pid unknown"


@contextlib.contextmanager
def study_lock(out_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold the lock of the results folder ``out_dir`` for the block.

    The lock file is removed when the block ends, and a folder this call created is
    removed again if it is then empty: a run refused before writing anything leaves
    nothing behind.

    Yields:
        The folder, resolved.

    Raises:
        NoisyboxError: another process holds the lock (its pid named), or ``out_dir`` is
            a file or a device.
        OSError: the folder cannot be created.
    """
    root = Path(out_dir).resolve()
    created = not root.exists()
    if not created:  # a device or a file is named as such, never made a folder
        root = resolve_output(out_dir, option="--out", folder=True)
    root.mkdir(parents=True, exist_ok=True)  # an OSError is the CLI's one line (or --debug's)
    path = root / LOCK_NAME
    for _ in range(10):
        lock = FileLock(path, thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise NoisyboxError(
                f"Expected no other run-benchmark on {out_dir} but got one running "
                f"({_holder(root)}); wait for it to end or stop it"
            ) from None
        if _current(lock, path):
            break
        lock.release()  # the file was removed by a run that ended meanwhile: retry
    else:
        raise NoisyboxError(f"Expected to lock {path} but it kept being replaced")
    try:
        (root / PID_NAME).write_text(f"{os.getpid()}\n")
        yield root
    finally:
        # removed while still held (a refused or finished run leaves no file behind); a
        # process that opened the old file meanwhile sees it is gone and retries
        for name in (PID_NAME, LOCK_NAME):
            with contextlib.suppress(OSError):
                (root / name).unlink()
        lock.release()
        if created:
            with contextlib.suppress(OSError):
                root.rmdir()  # only if empty


def _current(lock: Any, path: Path) -> bool:
    """Whether the file ``lock`` holds is still the one at ``path``."""
    fd = getattr(getattr(lock, "_context", None), "lock_file_fd", None)
    try:
        return fd is None or os.path.samestat(os.fstat(fd), os.stat(path))
    except OSError:
        return False


def remove_leftover_temporaries(root: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files and folders interrupted atomic writes left under ``root``.

    Only names of the form ``.<name>.<8 random characters>.tmp`` (or ``.old``) that
    :mod:`noisybox._fileio` makes are touched. The caller must hold :func:`study_lock`.

    Returns:
        The paths removed.
    """
    removed = []
    for folder, dirs, files in os.walk(root):
        for name in [*files, *dirs]:
            if not _TEMPORARY.match(name):
                continue
            path = Path(folder) / name
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                dirs.remove(name)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()
            removed.append(path)
    return removed


def locked_study(fn: _F) -> _F:
    """Decorate ``run_benchmark(cfg, out_dir, ...)``: the call holds :func:`study_lock` on
    ``out_dir`` and starts by removing :func:`remove_leftover_temporaries`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out_dir = kwargs["out_dir"] if "out_dir" in kwargs else args[1]
        with study_lock(out_dir) as root:
            remove_leftover_temporaries(root)
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def die_with_parent() -> None:
    """End this process when its parent dies (call it first thing in a worker).

    On Linux the kernel sends ``SIGKILL`` when the parent exits (``PR_SET_PDEATHSIG``);
    elsewhere, or if that call fails, a daemon thread checks every second whether the
    parent changed (an orphan is adopted by another process) and kills this process.
    A worker killed this way leaves its cell's checkpoint for the next run to resume.
    (The kernel sends the signal when the *thread* that started the worker ends; the
    runner submits from the thread that then waits for the workers, so the two coincide.)
    """
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGKILL)
            time.sleep(1.0)

    if os.getppid() != parent:  # the parent died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=watch, name="noisybox-parent-watchdog", daemon=True).start()


def check_launcher(launcher: str, gpus: int, slurm_cluster: str | None = None) -> None:
    """Refuse a launcher or GPU count this host cannot honour.

    Raises:
        NoisyboxError: ``launcher="slurm"`` without Slurm's ``sbatch`` on the ``PATH``
            (submitit would silently run the cells on this machine), unless
            ``slurm_cluster`` names another submitit cluster; ``gpus`` above the number of
            CUDA devices (the records would say ``gpus: N`` for a run on the CPU).
    """
    if launcher == "slurm" and slurm_cluster is None and shutil.which("sbatch") is None:
        raise NoisyboxError(
            "Expected Slurm (sbatch on the PATH) for --launcher slurm but found none; "
            "use --launcher local on this machine"
        )
    if gpus > 0:
        import torch

        found = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus > found:
            raise NoisyboxError(
                f"Expected --gpus at most the {found} CUDA device(s) of this host but got {gpus}"
            )
