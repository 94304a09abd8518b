"""Provenance: which code, libraries and machine trained a cell.

Every record a study writes carries :func:`provenance`: the code that ran (the git commit
and whether the package's files differed from it, when the package runs from a checkout,
and always the version and a SHA-256 of the package's own source files), the versions of
torch, torchvision, numpy and Ultralytics, the device, the autocast dtype, the thread count
and a hash of the cell's resolved training config. :func:`code_id` reduces it to the one
identity a study compares: two cells trained by the same source files have the same id,
whatever checkout or installation they ran from.

Records written before provenance existed carry none; :func:`code_versions` groups them
under :data:`UNKNOWN_CODE` rather than guessing.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy

import noisybox

__all__ = [
    "UNKNOWN_CODE",
    "code_id",
    "code_identity",
    "code_versions",
    "config_hash",
    "describe_code",
    "package_root",
    "provenance",
    "source_sha256",
]

#: The code id of a record written before records carried their provenance.
UNKNOWN_CODE = "unknown"

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def package_root() -> Path:
    """The folder of the ``noisybox`` package this process imported.

    ``python -m`` puts the current folder first on ``sys.path``: run from a checkout, it
    imports that checkout's package whatever ``PYTHONPATH`` says, so a study meant to run
    from a worktree at its own commit must be started from that worktree.
    """
    return _PACKAGE_ROOT


def source_sha256(root: Path = _PACKAGE_ROOT) -> str:
    """SHA-256 of the package's source files (``*.py`` and packaged ``*.yaml``/``*.json``).

    Paths relative to ``root`` and contents, in sorted order: the same files give the same
    hash wherever the package is installed; ``__pycache__`` is left out.
    """
    h = hashlib.sha256()
    files = sorted(
        p
        for pattern in ("*.py", "*.yaml", "*.json")
        for p in root.rglob(pattern)
        if "__pycache__" not in p.parts
    )
    for path in files:
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def _git(root: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(root), *args],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


@functools.lru_cache(maxsize=1)
def code_identity() -> dict[str, Any]:
    """The code that runs: version, source hash and, from a git checkout, commit and dirty.

    ``git_dirty`` is true when the package's files (``noisybox/``) or ``pyproject.toml``
    differ from the commit, so a study's own records written into the checkout do not count.
    Cached: the code of a process does not change while it runs.
    """
    info: dict[str, Any] = {
        "version": noisybox.__version__,
        "source_sha256": source_sha256(),
    }
    checkout = _PACKAGE_ROOT.parent
    top = _git(checkout, "rev-parse", "--show-toplevel")
    if top is not None and Path(top).resolve() == checkout:
        commit = _git(checkout, "rev-parse", "HEAD")
        status = _git(checkout, "status", "--porcelain", "--", "noisybox", "pyproject.toml")
        if commit:
            info["git_commit"] = commit
            info["git_dirty"] = bool(status)
    return info


def code_id(code: Mapping[str, Any] | None) -> str:
    """The short identity of a record's code: 12 hex digits of its source hash.

    >>> code_id({"source_sha256": "ab" * 32}), code_id(None)
    ('abababababab', 'unknown')
    """
    if not code or not isinstance(code.get("source_sha256"), str):
        return UNKNOWN_CODE
    return str(code["source_sha256"])[:12]


def describe_code(code: Mapping[str, Any] | None) -> str:
    """One line naming a record's code: commit (``+dirty``) or version, and source hash.

    >>> describe_code({"version": "0.1.0", "source_sha256": "f" * 64, "git_commit": "a" * 40,
    ...                "git_dirty": True})
    'commit aaaaaaaaaaaa+dirty (noisybox 0.1.0, source ffffffffffff)'
    >>> describe_code(None)
    'unknown (written before records carried their code)'
    """
    if not code or code_id(code) == UNKNOWN_CODE:
        return "unknown (written before records carried their code)"
    where = f"noisybox {code.get('version', '?')}, source {code_id(code)}"
    commit = code.get("git_commit")
    if commit:
        dirty = "+dirty" if code.get("git_dirty") else ""
        return f"commit {str(commit)[:12]}{dirty} ({where})"
    return f"installed package ({where})"


def config_hash(train_config: Mapping[str, Any]) -> str:
    """SHA-256 of a cell's resolved training config (keys sorted; paths as written).

    >>> config_hash({"b": 1, "a": [1, 2]}) == config_hash({"a": [1, 2], "b": 1})
    True
    """
    blob = json.dumps(train_config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()


def provenance(train_config: Mapping[str, Any], *, ultralytics: bool = False) -> dict[str, Any]:
    """Everything a record keeps about what trained it.

    Args:
        train_config: the cell's resolved training config (hashed into ``config_sha256``;
            ``device`` and ``amp`` are resolved here the way the engine resolves them).
        ultralytics: add the Ultralytics version.

    Returns:
        ``{"code", "libraries", "device", "dtype", "threads", "host", "config_sha256"}``.
    """
    import torch
    import torchvision

    libraries = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
    }
    if ultralytics:
        import ultralytics as ul

        libraries["ultralytics"] = ul.__version__
    device = str(train_config.get("device", "auto"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    amp = str(train_config.get("amp", "auto"))
    dtype = {"fp16": "float16", "bf16": "bfloat16", "off": "float32"}.get(
        amp, "float16" if device.startswith("cuda") else "float32"
    )
    if device.startswith("cuda") and torch.cuda.is_available():
        device = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    return {
        "code": code_identity(),
        "libraries": libraries,
        "device": device,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "host": platform.node(),
        "config_sha256": config_hash(train_config),
    }


def code_versions(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The code versions that trained ``records``: id -> ``{"code", "cells"}``.

    ``cells`` lists the cell ids each version trained, in record order; records without
    provenance are grouped under :data:`UNKNOWN_CODE`.

    >>> recs = [{"cell_id": "a", "provenance": {"code": {"source_sha256": "1" * 64}}},
    ...         {"cell_id": "b"}]
    >>> {k: v["cells"] for k, v in code_versions(recs).items()}
    {'111111111111': ['a'], 'unknown': ['b']}
    """
    out: dict[str, dict[str, Any]] = {}
    for rec in records:
        prov = rec.get("provenance")
        code = prov.get("code") if isinstance(prov, Mapping) else None
        key = code_id(code)
        entry = out.setdefault(key, {"code": code if key != UNKNOWN_CODE else None, "cells": []})
        entry["cells"].append(str(rec.get("cell_id")))
    return out
