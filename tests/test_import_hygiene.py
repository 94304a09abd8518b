"""Imports live at the top of their module unless there is a reason, and the reasons hold.

:data:`ALLOWED` lists every import inside a function body of the package as a pair
``(module, imported module)`` (``from a.b import c`` imports ``a.b``), each with its reason.
A new function-level import fails :func:`test_function_level_imports_are_allowed` until it
moves to the top of its module or joins the list with a reason; an entry whose import has
gone fails :func:`test_allow_list_has_no_stale_entries`. :func:`test_light_modules_stay_light`
checks, in a fresh interpreter, that the modules the reasons keep light do not import what
they keep lazy.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "noisybox"

_TORCH = "torch: the module is imported by a torch-free room (report, study, formats, noise)"
_ULTRALYTICS = "ultralytics: an optional extra, imported only for an Ultralytics cell"
_MATPLOTLIB = "matplotlib (~0.3 s): loaded only when a figure is drawn"
_HELP = "torch-heavy: the CLI module imports fast for `noisybox <command> --help`"

#: (module, imported module) -> why the import is inside a function.
ALLOWED: dict[tuple[str, str], str] = {
    ("noisybox._progress", "tqdm.auto"): "tqdm.auto (~40 ms): only for a bar on a terminal",
    ("noisybox.boxes", "torch"): "boxes works on numpy arrays without torch",
    ("noisybox.boxes", "torchvision.ops"): "boxes works on numpy arrays without torch",
    ("noisybox.cli.benchmark", "noisybox.report.writer"): "pandas (~0.2 s): report, not --help",
    ("noisybox.cli.benchmark", "torch"): "torch: only for --jobs auto on a CUDA machine",
    ("noisybox.cli.calibration", "noisybox.report.writer"): "pandas (~0.2 s): report, not --help",
    ("noisybox.cli.engine", "noisybox.engine"): "the training loop (albumentations, data "
    "loaders, ~0.7 s) loads when training starts; tests replace noisybox.engine.train",
    ("noisybox.cli.losses", "noisybox.losses"): _HELP,
    ("noisybox.cli.losses", "noisybox.losses.plot"): _HELP,
    ("noisybox.data.dataset", "noisybox.data.transforms"): "albumentations (~0.5 s): only "
    "when the dataset has an augmentation pipeline (evaluation and preflight have none)",
    ("noisybox.detectors.ultralytics_offline", "ultralytics.utils"): "configure_offline sets "
    "Ultralytics' environment before its first import",
    ("noisybox.detectors.ultralytics_offline", "matplotlib"): "matplotlib: only for the path "
    "of its DejaVu font, on a fresh Ultralytics config folder",
    ("noisybox.engine.evaluation", "pycocotools.coco"): "the report and study rooms read "
    "evaluation's metric names; pycocotools loads when evaluating",
    ("noisybox.engine.evaluation", "pycocotools.cocoeval"): "as pycocotools.coco",
    ("noisybox.engine.evaluation", "torch"): _TORCH,
    ("noisybox.engine.evaluation", "noisybox.data"): _TORCH,
    ("noisybox.engine.evaluation", "noisybox.engine.checkpoint"): _TORCH,
    ("noisybox.engine.evaluation", "noisybox.engine.distributed"): _TORCH,
    ("noisybox.engine.evaluation", "noisybox.engine.model"): _TORCH,
    ("noisybox.formats.images", "cv2"): "cv2 (~80 ms): only to read an image",
    ("noisybox.losses.plot", "matplotlib.figure"): _MATPLOTLIB,
    ("noisybox.noise", "noisybox.noise.transform"): "BoxNoise needs albumentations and torch",
    ("noisybox.report.paired", "scipy"): "scipy.stats (~0.6 s): only for the paired tests",
    ("noisybox.report.writer", "noisybox.report.plots"): _MATPLOTLIB + " (plots=True)",
    ("noisybox.study.guard", "torch"): _TORCH,
    ("noisybox.study.launchers", "noisybox.engine"): _TORCH,
    ("noisybox.study.launchers", "torch"): _TORCH,
    ("noisybox.study.launchers", "submitit"): "submitit: an optional extra (slurm)",
    ("noisybox.study.name_checks", "noisybox.detectors"): _TORCH,
    ("noisybox.study.name_checks", "noisybox.engine"): _TORCH,
    ("noisybox.study.name_checks", "noisybox.losses"): _TORCH,
    ("noisybox.study.name_checks", "noisybox.losses.registry"): _TORCH,
    ("noisybox.study.preflight", "noisybox.data"): _TORCH,
    ("noisybox.study.provenance", "torch"): _TORCH,
    ("noisybox.study.provenance", "torchvision"): _TORCH,
    ("noisybox.study.provenance", "ultralytics"): _ULTRALYTICS,
    ("noisybox.study.runner", "torch"): _TORCH,
    ("noisybox.study.runner", "torchvision"): _TORCH,
    ("noisybox.study.runner", "noisybox.engine"): _TORCH,
    ("noisybox.study.runner", "ultralytics"): _ULTRALYTICS,
    ("noisybox.study.status", "noisybox.engine"): _TORCH,
    ("noisybox.study.ultralytics_cell", "noisybox.detectors.ultralytics_offline"): _TORCH,
    ("noisybox.study.ultralytics_cell", "noisybox.detectors.ultralytics"): _ULTRALYTICS,
    ("noisybox.study.ultralytics_cell", "ultralytics"): _ULTRALYTICS,
    ("noisybox.study.ultralytics_cell", "ultralytics.utils.torch_utils"): _ULTRALYTICS,
    ("noisybox.study.ultralytics_cell", "ultralytics.models.yolo.detect"): _ULTRALYTICS,
    ("noisybox.study.ultralytics_state", "torch"): _TORCH,
    ("noisybox.study.ultralytics_state", "noisybox.detectors.ultralytics"): _ULTRALYTICS,
    ("noisybox.sweep", "matplotlib.figure"): _MATPLOTLIB,
    ("noisybox.viz.histogram", "matplotlib.figure"): _MATPLOTLIB,
    ("noisybox.viz.histogram", "matplotlib.lines"): _MATPLOTLIB,
    ("noisybox.viz.preview", "matplotlib.figure"): _MATPLOTLIB,
    ("noisybox.viz.tiles", "matplotlib.patches"): _MATPLOTLIB,
    ("noisybox.viz.tiles", "matplotlib.lines"): _MATPLOTLIB,
}

#: module -> what it must not import (the reasons above), checked in a fresh interpreter.
LIGHT: dict[str, tuple[str, ...]] = {
    "noisybox.cli": ("torch", "pandas", "noisybox.study", "noisybox.formats"),
    "noisybox.cli.benchmark": ("torch", "pandas"),
    "noisybox.cli.engine": ("albumentations", "noisybox.engine.loop"),
    "noisybox.cli.losses": ("torch",),
    "noisybox.boxes": ("torch", "torchvision"),
    "noisybox.formats": ("torch", "cv2", "tqdm"),
    "noisybox.noise": ("torch", "albumentations"),
    "noisybox.viz": ("torch", "matplotlib"),
    "noisybox.sweep": ("matplotlib",),
    "noisybox.settings": ("torch",),
    "noisybox.engine.evaluation": ("torch", "pycocotools"),
    "noisybox.data.dataset": ("albumentations",),
    "noisybox.report": ("torch", "scipy", "matplotlib", "ultralytics"),
    "noisybox.study": ("torch", "ultralytics", "submitit"),
    "noisybox.detectors.ultralytics_offline": ("ultralytics", "matplotlib"),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_module(node: ast.Import | ast.ImportFrom, alias: ast.alias, module: str) -> str:
    if isinstance(node, ast.Import):
        return alias.name
    if node.level == 0:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join([*base, *([node.module] if node.module else [])])


def function_level_imports() -> dict[tuple[str, str], list[str]]:
    """Every import inside a function body of the package: pair -> ``file:line`` places."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        functions = [
            n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        ]
        nodes = {id(n): n for f in functions for n in ast.walk(f) if n is not f}
        for node in nodes.values():
            if isinstance(node, ast.Import | ast.ImportFrom):
                for alias in node.names:
                    pair = (module, _imported_module(node, alias, module))
                    place = f"{path.relative_to(ROOT)}:{node.lineno}"
                    if place not in found.setdefault(pair, []):
                        found[pair].append(place)
    return found


def test_the_scan_finds_function_level_imports() -> None:
    found = function_level_imports()
    assert ("noisybox.boxes", "torch") in found
    assert all(module.startswith("noisybox") for module, _ in found)


def test_function_level_imports_are_allowed() -> None:
    unexplained = {
        pair: places for pair, places in function_level_imports().items() if pair not in ALLOWED
    }
    assert not unexplained, (
        "imports inside functions without a reason (move them to the top of the module, "
        "or add them to ALLOWED with the reason): "
        + "; ".join(f"{', '.join(p)}: {m} imports {i}" for (m, i), p in sorted(unexplained.items()))
    )


def test_allow_list_has_no_stale_entries() -> None:
    stale = sorted(set(ALLOWED) - set(function_level_imports()))
    assert not stale, f"ALLOWED entries with no such import any more: {stale}"


@pytest.mark.parametrize("module", sorted(LIGHT))
def test_light_modules_stay_light(module: str) -> None:
    script = textwrap.dedent(
        f"""
        import importlib, sys
        importlib.import_module({module!r})
        banned = {LIGHT[module]!r}
        print(sorted(b for b in banned if any(m == b or m.startswith(b + ".") for m in sys.modules)))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]", f"importing {module} imported {done.stdout.strip()}"
