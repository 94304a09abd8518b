"""Every command on a table of bad inputs: refused with one line, nothing written or changed.

For each case: the exit code is not 0 (1 for a refused input, 2 for a bad option value),
standard error holds exactly one ``Error:`` line (click's usage lines may precede it for
code 2) that contains the expected words, no exception escapes (``CliRunner`` would record
it: a traceback for the user), no file appears, disappears or changes in the case's
folder (hidden temporary files included), and ``/dev/null`` is still a character device.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from noisybox.cli import main
from noisybox.data import make_shapes_dataset
from noisybox.study.loading import load_config

DATA = Path(__file__).parent / "data"
COCO_FILE = DATA / "coco" / "instances_tiny.json"

Setup = Callable[[Path], None]


@dataclasses.dataclass
class Case:
    """One bad invocation: ``args`` are formatted with ``{w}``, the case's folder."""

    name: str
    args: list[str]
    expect: str
    code: int = 1
    setup: Setup | None = None


_KERNEL = ("/dev/", "/proc/", "/sys/")


@pytest.fixture(autouse=True)
def _never_rename_onto_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """CI runs as root: even a regressed write path must not turn ``/dev/null`` into a file.

    A rename onto a kernel path raises instead (the test then fails on the uncaught error).
    """
    for name in ("replace", "rename"):
        real = getattr(os, name)

        def guarded(src: object, dst: object, *args: object, _real: Callable = real) -> object:
            if os.path.abspath(os.fspath(dst)).startswith(_KERNEL):  # type: ignore[arg-type]
                raise AssertionError(f"refusing to rename onto {dst} in a test")
            return _real(src, dst, *args)

        monkeypatch.setattr(os, name, guarded)


@pytest.fixture(scope="module")
def shapes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes") / "ds"
    make_shapes_dataset(root, num_train=2, num_val=2, image_size=64)
    return root


@pytest.fixture
def workspace(tmp_path: Path, shapes: Path) -> Path:
    """``a.json`` (the COCO fixture), ``ds/`` (shapes with images), ``voc/``, ``yolo/``."""
    shutil.copyfile(COCO_FILE, tmp_path / "a.json")
    shutil.copytree(shapes, tmp_path / "ds")
    shutil.copytree(DATA / "voc", tmp_path / "voc")
    shutil.copytree(DATA / "yolo", tmp_path / "yolo")
    return tmp_path


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (hidden ones too): its type and content, mode or target."""
    out: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            key = str(path.relative_to(root))
            if stat.S_ISLNK(st.st_mode):
                out[key] = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[key] = ("file", digest, stat.S_IMODE(st.st_mode))
            else:  # folders, FIFOs: never opened (a FIFO would block)
                out[key] = (stat.S_IFMT(st.st_mode),)
    return out


def _edit_json(name: str, change: Callable[[dict], object]) -> Setup:
    def setup(w: Path) -> None:
        doc = json.loads((w / "a.json").read_text())
        change(doc)
        (w / name).write_text(json.dumps(doc))

    return setup


def _write(name: str, data: bytes) -> Setup:
    def setup(w: Path) -> None:
        (w / name).parent.mkdir(parents=True, exist_ok=True)
        (w / name).write_bytes(data)

    return setup


def _link(name: str, target: str) -> Setup:
    def setup(w: Path) -> None:
        os.symlink(target.format(w=w), w / name)

    return setup


def _fifo(name: str) -> Setup:
    def setup(w: Path) -> None:
        os.mkfifo(w / name)

    return setup


def _hardlink(w: Path) -> None:
    os.link(w / "a.json", w / "hard.json")


def _loop(w: Path) -> None:
    os.symlink(w / "loop2.json", w / "loop1.json")
    os.symlink(w / "loop1.json", w / "loop2.json")


def _set(doc: dict, path: str, value: object) -> None:
    *keys, last = path.split(".")
    node: object = doc
    for key in keys:
        node = node[int(key)] if isinstance(node, list) else node[key]  # type: ignore[index]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value  # type: ignore[index]


def _benchmark_folder(content: bytes | None, record: bytes | None = None) -> Setup:
    """``res/``: a results folder of the tiny grid with ``benchmark.json`` replaced."""

    def setup(w: Path) -> None:
        (w / "res" / "records").mkdir(parents=True)
        (w / "tiny.yaml").write_text(yaml.safe_dump(TINY))
        stored = {"config": load_config(TINY).to_dict()}
        (w / "res" / "benchmark.json").write_bytes(
            content if content is not None else json.dumps(stored).encode()
        )
        if record is not None:
            (w / "res" / "records" / "cell.json").write_bytes(record)

    return setup


def _config(name: str, **changes: object) -> Setup:
    def setup(w: Path) -> None:
        data = json.loads(json.dumps(TINY))
        for key, value in changes.items():
            _set(data, key.replace("__", "."), value)
        text = yaml.safe_dump(data).replace("{w}", str(w))
        (w / name).write_text(text)

    return setup


def _no_images(w: Path) -> None:
    shutil.rmtree(w / "ds" / "images")


TINY = {
    "name": "tiny",
    "dataset": {"builtin": "shapes", "num_train": 4, "num_val": 2, "image_size": 64},
    "detectors": [{"name": "fcos", "backbone": "resnet18", "options": {"fpn_channels": 32}}],
    "losses": ["iou"],
    "etas": [0.3],
    "seeds": [0],
    "schedule": {"epochs": 1, "batch_size": 2, "image_size": 64, "workers": 0},
    "device": "cpu",
}
REAL_DATA = {
    "train_annotations": "{w}/ds/instances_train.json",
    "train_images": "{w}/ds",
    "test_annotations": "{w}/ds/instances_val.json",
    "test_images": "{w}/ds",
}

A = "{w}/a.json"
CORRUPT = ["corrupt", A, "--eta", "0.2"]

CASES = [
    # -- special files and links at the output path (item 1)
    Case("corrupt -o /dev/null", [*CORRUPT, "-o", "/dev/null"], "under /dev"),
    Case("corrupt -o /dev/stdout", [*CORRUPT, "-o", "/dev/stdout"], "under /dev"),
    Case("corrupt -o /dev/full", [*CORRUPT, "-o", "/dev/full"], "under /dev"),
    Case("corrupt -o -", [*CORRUPT, "-o", "-"], "got '-'"),
    Case("corrupt -o FIFO", [*CORRUPT, "-o", "{w}/out.fifo"], "a FIFO", setup=_fifo("out.fifo")),
    Case(
        "corrupt -o link to /dev/null",
        [*CORRUPT, "-o", "{w}/null.json"],
        "under /dev",
        setup=_link("null.json", "/dev/null"),
    ),
    Case("corrupt -o link loop", [*CORRUPT, "-o", "{w}/loop1.json"], "loop of links", setup=_loop),
    Case(
        "preview -o /dev/null",
        ["preview", "{w}/ds/instances_val.json", "--eta", "0.2", "-o", "/dev/null"],
        "under /dev",
    ),
    Case("iou-hist -o /dev/null", ["iou-hist", A, A, "-o", "/dev/null"], "under /dev"),
    Case("plot-loss -o /dev/null", ["plot-loss", "-o", "/dev/null"], "suffix", code=2),
    Case("plot-loss -o /dev/new.png", ["plot-loss", "-o", "/dev/new.png"], "under /dev"),
    Case("plot-loss -o FIFO", ["plot-loss", "-o", "{w}/p.png"], "a FIFO", setup=_fifo("p.png")),
    Case("make-dataset /dev/null", ["make-dataset", "shapes", "/dev/null"], "under /dev"),
    Case(
        "train --out /dev/null",
        ["train", "--data", "{w}/ds", "--out", "/dev/null", "--workers", "0"],
        "under /dev",
    ),
    # -- outputs that are inputs (item 2)
    Case("corrupt -o INPUT", [*CORRUPT, "-o", A], "same file as"),
    Case(
        "corrupt -o link to INPUT",
        [*CORRUPT, "-o", "{w}/link.json"],
        "same file as",
        setup=_link("link.json", "{w}/a.json"),
    ),
    Case("corrupt -o hard link", [*CORRUPT, "-o", "{w}/hard.json"], "same file", setup=_hardlink),
    Case("corrupt --plot INPUT", [*CORRUPT, "-o", "{w}/o.json", "--plot", A], "--plot"),
    Case(
        "corrupt --plot -o",
        [*CORRUPT, "-o", "{w}/o.json", "--plot", "{w}/o.json"],
        "--plot to differ from -o",
    ),
    Case(
        "corrupt -o inside VOC input",
        ["corrupt", "{w}/voc/VOC2007", "-o", "{w}/voc/VOC2007/noisy"],
        "a path inside",
    ),
    Case(
        "corrupt several -o INPUT",
        ["corrupt", "{w}/voc/VOC2007", A, "-o", "{w}/voc/VOC2007"],
        "same file as",
    ),
    Case(
        "corrupt several -o folder holding an input",
        ["corrupt", "{w}/voc/VOC2007", "{w}/yolo", "-o", "{w}/voc"],
        "a folder holding",
    ),
    Case(
        "corrupt several -o inside an input",
        ["corrupt", "{w}/voc/VOC2007", A, "-o", "{w}/voc/VOC2007/noisy"],
        "a path inside",
    ),
    Case(
        "corrupt several --plot INPUT",
        ["corrupt", "{w}/voc/VOC2007", A, "-o", "{w}/o", "--plot", A],
        "--plot",
    ),
    Case(
        "corrupt several --plot under a file",
        ["corrupt", "{w}/voc/VOC2007", A, "-o", "{w}/o", "--plot", "{w}/a.json/x.png"],
        "Not a directory",
    ),
    Case(
        "corrupt several -o /dev/null",
        ["corrupt", "{w}/voc/VOC2007", A, "-o", "/dev/null"],
        "under /dev",
    ),
    Case(
        "preview -o CLEAN",
        ["preview", "{w}/ds/instances_val.json", "--eta", "0.2", "-o", "{w}/ds/instances_val.json"],
        "same file as",
    ),
    Case(
        "preview -o --class-names",
        ["preview", "{w}/ds/instances_val.json", "--class-names", "{w}/n.txt", "-o", "{w}/n.txt"],
        "--class-names",
        setup=_write("n.txt", b"a\nb\n"),
    ),
    Case(
        "iou-hist -o CLEAN",
        ["iou-hist", A, "{w}/b.json", "-o", A],
        "CLEAN",
        setup=_write("b.json", COCO_FILE.read_bytes()),
    ),
    Case(
        "iou-hist -o NOISY",
        ["iou-hist", A, "{w}/b.json", "-o", "{w}/b.json"],
        "NOISY",
        setup=_write("b.json", COCO_FILE.read_bytes()),
    ),
    Case(
        "train --weights in --out",
        ["train", "--data", "{w}/ds", "--out", "{w}/run", "--weights", "{w}/run/last.pt"],
        "--weights",
        setup=_write("run/last.pt", b"not a checkpoint"),
    ),
    # -- one line instead of a traceback (item 3)
    Case("corrupt --seed -1", [*CORRUPT, "-o", "{w}/o.json", "--seed", "-1"], "--seed", code=2),
    Case(
        "corrupt --plot /proc",
        [*CORRUPT, "-o", "{w}/o.json", "--plot", "/proc/x.png"],
        "under /proc",
    ),
    Case(
        "corrupt --plot under a file",
        [*CORRUPT, "-o", "{w}/o.json", "--plot", "{w}/a.json/x.png"],
        "Not a directory",
    ),
    Case(
        "preview --sample-seed -1",
        ["preview", "{w}/ds/instances_val.json", "--sample-seed", "-1", "-o", "{w}/p.png"],
        "--sample-seed",
        code=2,
    ),
    Case(
        "iou-hist --seed -1",
        ["iou-hist", A, "--eta", "0.1", "--seed", "-1", "-o", "{w}/h.png"],
        "--seed",
        code=2,
    ),
    Case(
        "make-dataset --seed -5",
        ["make-dataset", "shapes", "{w}/new", "--seed", "-5", "--num-train", "1", "--num-val", "1"],
        "--seed",
        code=2,
    ),
    Case(
        "YOLO label not UTF-8",
        ["corrupt", "{w}/yolo", "-o", "{w}/y"],
        "UTF-8",
        setup=_write("yolo/labels/train/a.txt", b"0 0.5 0.5 0.2 0.2 \xff\xfe\n"),
    ),
    Case(
        "VOC XML not UTF-8",
        ["corrupt", "{w}/voc/VOC2007", "-o", "{w}/v"],
        "UTF-8",
        setup=_write(
            "voc/VOC2007/Annotations/000001.xml",
            b'<?xml version="1.0" encoding="ISO-8859-1"?><annotation><filename>caf\xe9.jpg'
            b"</filename><size><width>10</width><height>10</height></size></annotation>",
        ),
    ),
    Case(
        "report: truncated benchmark.json",
        ["report", "{w}/res"],
        "invalid JSON",
        setup=_benchmark_folder(b'{"config": {'),
    ),
    Case(
        "report: benchmark.json a list",
        ["report", "{w}/res"],
        "a JSON list",
        setup=_benchmark_folder(b"[1, 2]"),
    ),
    Case(
        "report: no config",
        ["report", "{w}/res"],
        "'config' object",
        setup=_benchmark_folder(b"{}"),
    ),
    Case(
        "report: record not an object",
        ["report", "{w}/res"],
        "cell.json but got a JSON list",
        setup=_benchmark_folder(None, record=b"[]"),
    ),
    Case(
        "run-benchmark: truncated benchmark.json",
        ["run-benchmark", "{w}/tiny.yaml", "--out", "{w}/res", "--quiet"],
        "invalid JSON",
        setup=_benchmark_folder(b"{"),
    ),
    # -- truncated files, wrong types, NaN
    Case(
        "truncated COCO",
        ["corrupt", "{w}/t.json", "-o", "{w}/o.json"],
        "valid JSON",
        setup=_write("t.json", COCO_FILE.read_bytes()[:300]),
    ),
    Case(
        "COCO not an object",
        ["corrupt", "{w}/t.json", "-o", "{w}/o.json"],
        "JSON object",
        setup=_write("t.json", b"[1]"),
    ),
    Case(
        "COCO bbox a string",
        ["corrupt", "{w}/t.json", "-o", "{w}/o.json"],
        "annotation id 101",
        setup=_edit_json("t.json", lambda d: _set(d, "annotations.0.bbox", "10 20 30 40")),
    ),
    Case(
        "COCO width a string",
        ["corrupt", "{w}/t.json", "-o", "{w}/o.json"],
        "image id 1",
        setup=_edit_json("t.json", lambda d: _set(d, "images.0.width", "640")),
    ),
    Case(
        "COCO NaN box",
        ["corrupt", "{w}/t.json", "-o", "{w}/o.json"],
        "non-finite",
        setup=_edit_json(
            "t.json", lambda d: _set(d, "annotations.0.bbox", [float("nan"), 1, 2, 3])
        ),
    ),
    Case(
        "truncated VOC XML",
        ["corrupt", "{w}/voc/VOC2007", "-o", "{w}/v"],
        "well-formed XML",
        setup=_write("voc/VOC2007/Annotations/000002.xml", b"<annotation><size>"),
    ),
    Case(
        "truncated PNG",
        ["preview", "{w}/ds/instances_val.json", "-o", "{w}/p.png"],
        "readable image",
        setup=_write("ds/images/val/000001.png", b"\x89PNG\r\n\x1a\n\x00\x00"),
    ),
    Case(
        "garbage checkpoint",
        ["evaluate", "{w}/g.pt", "--annotations", "{w}/ds/instances_val.json"],
        "unreadable",
        setup=_write("g.pt", b"garbage"),
    ),
    # -- validation gaps (item 7)
    Case(
        "corrupt --min-size inf",
        [*CORRUPT, "-o", "{w}/o.json", "--min-size", "inf"],
        "--min-size",
        code=2,
    ),
    Case(
        "corrupt --min-size nan",
        [*CORRUPT, "-o", "{w}/o.json", "--min-size", "nan"],
        "--min-size",
        code=2,
    ),
    Case("corrupt --eta nan", [*CORRUPT, "-o", "{w}/o.json", "--eta", "nan"], "--eta", code=2),
    Case(
        "corrupt --min-size > image",
        [*CORRUPT, "-o", "{w}/o.json", "--min-size", "500"],
        "record 101",
    ),
    Case(
        "YOLO class -1",
        ["corrupt", "{w}/yolo", "-o", "{w}/y"],
        "class id >= 0",
        setup=_write("yolo/labels/train/a.txt", b"-1 0.5 0.5 0.2 0.2\n"),
    ),
    Case(
        "YOLO class not in classes.txt",
        ["corrupt", "{w}/yolo", "-o", "{w}/y"],
        "classes.txt",
        setup=_write("yolo/labels/train/a.txt", b"0 0.5 0.5 0.2 0.2\n7 0.5 0.5 0.1 0.1\n"),
    ),
    Case(
        "run-benchmark backbone resnet999",
        ["run-benchmark", "{w}/c.yaml", "--out", "{w}/res", "--quiet"],
        "detectors[0].backbone",
        setup=_config("c.yaml", detectors__0__backbone="resnet999"),
    ),
    # -- a study that cannot run writes nothing (item 9)
    Case(
        "run-benchmark without images",
        ["run-benchmark", "{w}/c.yaml", "--out", "{w}/res", "--quiet"],
        "2 of 2 are missing",
        setup=lambda w: (_no_images(w), _config("c.yaml", dataset=REAL_DATA)(w)),
    ),
    # -- renamed options and their deprecated aliases, --json on a refused input (#14)
    Case(
        "corrupt --noise-model nope",
        [*CORRUPT, "-o", "{w}/o.json", "--noise-model", "nope"],
        "--noise-model",
        code=2,
    ),  # fmt: skip
    Case(
        "corrupt --model nope", [*CORRUPT, "-o", "{w}/o.json", "--model", "nope"], "--model", code=2
    ),  # fmt: skip
    Case(
        "corrupt --model and --noise-model",
        [*CORRUPT, "-o", "{w}/o.json", "--model", "uniform", "--noise-model", "gaussian"],
        "--noise-model or its deprecated alias --model, not both",
        code=2,
    ),
    Case(
        "preview --model and --noise-model",
        [
            "preview",
            "{w}/ds/instances_val.json",
            "--eta",
            "0.2",
            "-o",
            "{w}/p.png",
            "--noise-model",
            "uniform",
            "--model",
            "uniform",
        ],
        "not both",
        code=2,
    ),  # fmt: skip
    Case(
        "train --test-annotations missing",
        ["train", "--data", "{w}/ds", "--test-annotations", "{w}/nope.json"],
        "--test-annotations",
        code=2,
    ),
    Case(
        "train --val-annotations missing",
        ["train", "--data", "{w}/ds", "--val-annotations", "{w}/nope.json"],
        "--val-annotations",
        code=2,
    ),
    Case(
        "train --val-images and --test-images",
        ["train", "--data", "{w}/ds", "--val-images", "{w}/ds", "--test-images", "{w}/ds"],
        "--test-images or its deprecated alias --val-images, not both",
        code=2,
    ),
    Case(
        "train --test-annotations is --out",
        [
            "train",
            "--data",
            "{w}/ds",
            "--test-annotations",
            "{w}/run/result.json",
            "--out",
            "{w}/run",
            "--json",
        ],
        "--test-annotations",
        setup=_write("run/result.json", b"{}"),
    ),  # fmt: skip
    Case("corrupt --json -o /dev/null", [*CORRUPT, "-o", "/dev/null", "--json"], "under /dev"),
    Case(
        "plot-loss --json -o FIFO",
        ["plot-loss", "-o", "{w}/p.png", "--json"],
        "a FIFO",
        setup=_fifo("p.png"),
    ),  # fmt: skip
    Case(
        "preview --json -o /dev/null",
        ["preview", "{w}/ds/instances_val.json", "--eta", "0.2", "-o", "/dev/null", "--json"],
        "under /dev",
    ),
    Case(
        "make-dataset --json /dev/null",
        ["make-dataset", "shapes", "/dev/null", "--json", "-q"],
        "under /dev",
    ),  # fmt: skip
    Case(
        "report --json: truncated benchmark.json",
        ["report", "{w}/res", "--json", "-q"],
        "invalid JSON",
        setup=_benchmark_folder(b'{"config": {'),
    ),
    Case(
        "run-benchmark --json: backbone resnet999",
        ["run-benchmark", "{w}/c.yaml", "--out", "{w}/res", "--json", "-q"],
        "detectors[0].backbone",
        setup=_config("c.yaml", detectors__0__backbone="resnet999"),
    ),
    Case(
        "evaluate --json: garbage checkpoint",
        ["evaluate", "{w}/g.pt", "--annotations", "{w}/ds/instances_val.json", "--json"],
        "unreadable",
        setup=_write("g.pt", b"garbage"),
    ),
    Case(
        "iou --json: other image sizes",
        ["iou", A, "{w}/b.json", "--json", "-q"],
        "image 2 300x200",
        setup=_edit_json("b.json", lambda d: _set(d, "images.1.width", 301)),
    ),
    # -- iou: two files that do not describe the same boxes (item 6)
    Case(
        "iou: other image sizes",
        ["iou", A, "{w}/b.json"],
        "image 2 300x200",
        setup=_edit_json("b.json", lambda d: _set(d, "images.1.width", 301)),
    ),
    Case(
        "iou: duplicate ids",
        ["iou", "{w}/b.json", "{w}/b.json"],
        "201 2 times",
        setup=_edit_json("b.json", lambda d: _set(d, "annotations.4.id", 201)),
    ),
    Case(
        "iou: another category",
        ["iou", A, "{w}/b.json"],
        "record 101",
        setup=_edit_json("b.json", lambda d: _set(d, "annotations.0.category_id", 3)),
    ),
    Case(
        "iou: another image",
        ["iou", A, "{w}/b.json"],
        "record 201",
        setup=_edit_json("b.json", lambda d: _set(d, "annotations.3.image_id", 1)),
    ),
    # -- reproducing a published generator (#17)
    Case(
        "corrupt --reproduce oamil YOLO",
        ["corrupt", "{w}/yolo", "--reproduce", "oamil", "-o", "{w}/y"],
        "Expected a VOC folder or COCO file for --reproduce oamil but got format 'yolo'",
    ),  # fmt: skip
    Case(
        "corrupt --reproduce unknown",
        [*CORRUPT, "--reproduce", "disco", "-o", "{w}/o.json"],
        "Invalid value for '--reproduce'",
        code=2,
    ),  # fmt: skip
    Case(
        "corrupt --reproduce two inputs",
        ["corrupt", "{w}/voc/VOC2007", A, "--reproduce", "oamil", "-o", "{w}/o"],
        "Expected one VOC folder or COCO file with --reproduce oamil but got 2 inputs",
    ),
    Case(
        "corrupt --reproduce --seed",
        ["corrupt", "{w}/voc/VOC2007", "--reproduce", "oamil", "--seed", "3", "-o", "{w}/o"],
        "the source seeds numpy with 45",
    ),
    Case(
        "corrupt --reproduce --eta-w",
        ["corrupt", "{w}/voc/VOC2007", "--reproduce", "oamil", "--eta-w", "0.1", "-o", "{w}/o"],
        "Expected one --eta",
    ),
    Case(
        "corrupt --missing 1",
        [*CORRUPT, "--missing", "1", "-o", "{w}/o.json"],
        "Invalid value for '--missing'",
        code=2,
    ),  # fmt: skip
    Case(
        "corrupt --extra -0.1",
        [*CORRUPT, "--extra", "-0.1", "-o", "{w}/o.json"],
        "Invalid value for '--extra'",
        code=2,
    ),  # fmt: skip
    Case(
        "corrupt --class-flip nan",
        [*CORRUPT, "--class-flip", "nan", "-o", "{w}/o.json"],
        "Invalid value for '--class-flip'",
        code=2,
    ),  # fmt: skip
    Case(
        "corrupt --missing with two inputs",
        ["corrupt", "{w}/voc/VOC2007", A, "--missing", "0.1", "-o", "{w}/o"],
        "Expected one input with --missing but got 2 inputs",
    ),
    Case(
        "corrupt --relocate 1",
        [*CORRUPT, "--relocate", "1", "-o", "{w}/o.json"],
        "Invalid value for '--relocate'",
        code=2,
    ),  # fmt: skip
    Case(
        "corrupt --relocate with two inputs",
        ["corrupt", "{w}/voc/VOC2007", A, "--relocate", "0.1", "-o", "{w}/o"],
        "Expected one input with --relocate but got 2 inputs",
    ),
    Case(
        "noise-sweep --levels 1",
        ["noise-sweep", A, "--levels", "0.1,1"],
        "Expected levels in [0, 1)",
        code=2,
    ),  # fmt: skip
    Case(
        "noise-sweep --levels x",
        ["noise-sweep", A, "--levels", "a,b"],
        "Expected numbers separated by commas",
        code=2,
    ),  # fmt: skip
    Case("noise-sweep --plot INPUT", ["noise-sweep", A, "--plot", A], "--plot"),
    Case(
        "corrupt --reproduce without trainval.txt",
        ["corrupt", "{w}/voc/VOC2007", "--reproduce", "oamil", "-o", "{w}/o"],
        "trainval.txt",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_refused_with_one_line_and_nothing_written(
    case: Case, workspace: Path
) -> None:
    if case.setup is not None:
        case.setup(workspace)
    before = _snapshot(workspace)
    args = [a.format(w=workspace) for a in case.args]
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, SystemExit), (
        f"uncaught {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code == case.code, result.output
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    if case.code == 1:  # a refused input: nothing but the one line
        assert lines == errors and result.stdout == "", result.output
    assert case.expect in errors[0], errors[0]
    assert "Traceback" not in result.output
    assert _snapshot(workspace) == before
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
