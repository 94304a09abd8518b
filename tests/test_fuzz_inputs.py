"""Property test (issue 31, item 7): mutated COCO, VOC and YOLO files never crash a command.

Hypothesis mutates the valid fixtures (a value's type, a number's size or sign, nesting,
a deleted key or element, a truncated file, other encodings, a label file that is a
folder) and runs ``corrupt`` and ``iou`` on the result. Each run must either succeed with
an output that reads back, or exit 1 with exactly one ``Error:`` line; never a traceback,
and the input is never changed. The examples are bounded so the test runs in well under a
minute (CI runs it derandomised, see ``tests/conftest.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noisybox.cli import main
from noisybox.formats import read_annotations

DATA = Path(__file__).parent / "data"
COCO = json.loads((DATA / "coco" / "instances_tiny.json").read_text())

# values a hostile or careless file may hold where a number, id, list or name belongs
ODD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 2**70, -(2**70), 10**400]),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308, -0.0, 0.5, 1e-320]),
    st.text(max_size=8),
    st.sampled_from(["10", "1e3", "", "\u00e9\u4e2d", "\ufeff"]),
    st.lists(st.integers(-5, 500), max_size=5),
    st.dictionaries(st.sampled_from(["id", "bbox", "x"]), st.integers(0, 3), max_size=2),
    st.integers(2, 1500).map(lambda depth: json.loads("[" * depth + "]" * depth)),
)
ODD_TEXT = st.one_of(
    st.sampled_from(
        ["", "-5", "1e999", "nan", "inf", "99999999999999999999999", "0x10", "1,5", " 7 ", "abc"]
    ),
    st.text(max_size=6),
)


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            data = b"dir" if path.is_dir() else path.read_bytes()
            out[str(path.relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


@contextmanager
def _workspace() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        yield Path(tmp)


def _check(args: list[str], work: Path, output: Path | None, boxes: int | None = None) -> None:
    """Run one command on the mutated input: success with a readable output (holding
    ``boxes`` boxes when given), or one ``Error:`` line and no output."""
    inputs = work / "in"
    before = _tree(inputs)
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, SystemExit) or result.exception is None, (
        f"{args}: uncaught {type(result.exception).__name__}: {result.exception}"
    )
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        if output is not None:
            written = read_annotations(output)  # what was written reads back
            assert boxes is None or written.num_boxes == boxes, "boxes vanished"
    else:
        assert result.exit_code == 1, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert output is None or not output.exists()
    assert _tree(inputs) == before, "the input was changed"


def _set_path(doc: Any, path: list[Any], value: Any, delete: bool) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    if delete and isinstance(node, dict):
        del node[path[-1]]
    else:
        node[path[-1]] = value


def _paths(doc: Any, prefix: tuple = ()) -> list[list[Any]]:
    """Every key path into a JSON document."""
    found = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for key, value in items:
        found.append([*prefix, key])
        found.extend(_paths(value, (*prefix, key)))
    return found


COCO_PATHS = _paths(COCO)


@st.composite
def coco_bytes(draw: st.DrawFn) -> bytes:
    doc = json.loads(json.dumps(COCO))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(COCO_PATHS))
        try:
            _set_path(doc, path, draw(ODD_VALUES), draw(st.booleans()))
        except (KeyError, IndexError, TypeError):
            continue  # the path went away with an earlier mutation
    raw = json.dumps(doc).encode()
    how = draw(st.sampled_from(["json", "json", "json", "truncate", "latin1", "utf16", "bom"]))
    if how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "latin1":
        raw = raw.replace(b'"cat"', b'"caf\xe9"')
    elif how == "utf16":
        raw = raw.decode().encode("utf-16")
    elif how == "bom":
        raw = b"\xef\xbb\xbf" + raw
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=coco_bytes())
def test_mutated_coco_never_crashes(raw: bytes) -> None:
    with _workspace() as work:
        (work / "in").mkdir()
        (work / "in" / "a.json").write_bytes(raw)
        out = work / "out.json"
        _check(["corrupt", str(work / "in" / "a.json"), "-o", str(out), "--eta", "0.2"], work, out)
        _check(
            ["iou", str(work / "in" / "a.json"), str(DATA / "coco" / "instances_tiny.json")],
            work,
            None,
        )


VOC_XML = (DATA / "voc" / "VOC2007" / "Annotations" / "000001.xml").read_text()
VOC_TAGS = [
    "filename",
    "width",
    "height",
    "depth",
    "name",
    "difficult",
    "xmin",
    "ymin",
    "xmax",
    "ymax",
]


@st.composite
def voc_bytes(draw: st.DrawFn) -> bytes:
    text = VOC_XML
    for _ in range(draw(st.integers(1, 3))):
        tag = draw(st.sampled_from(VOC_TAGS))
        start, end = text.find(f"<{tag}>"), text.find(f"</{tag}>")
        if start < 0 or end < 0:
            continue
        how = draw(st.sampled_from(["value", "value", "drop", "nest"]))
        if how == "value":
            text = text[: start + len(tag) + 2] + draw(ODD_TEXT).replace("<", "") + text[end:]
        elif how == "drop":
            text = text[:start] + text[end + len(tag) + 3 :]
        else:
            depth = draw(st.integers(1, 3000))
            text = text[: start + len(tag) + 2] + "<a>" * depth + "</a>" * depth + text[end:]
    raw = text.encode()
    how = draw(st.sampled_from(["xml", "xml", "truncate", "latin1", "entities", "utf16"]))
    if how == "truncate":
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif how == "latin1":
        raw = raw.replace(b"<name>dog", b"<name>caf\xe9")
    elif how == "entities":
        raw = (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx">'
            b'<!ENTITY y "&x;&x;&x;&x;&x;&x;&x;&x;">]>' + raw.replace(b"dog", b"&y;")
        )
    elif how == "utf16":
        raw = b'<?xml version="1.0" encoding="UTF-16"?>'.decode().encode("utf-16") + raw
    return raw


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=voc_bytes())
def test_mutated_voc_never_crashes(raw: bytes) -> None:
    with _workspace() as work:
        shutil.copytree(DATA / "voc", work / "in")
        (work / "in" / "VOC2007" / "Annotations" / "000001.xml").write_bytes(raw)
        out = work / "out"
        _check(["corrupt", str(work / "in" / "VOC2007"), "-o", str(out), "--eta", "0.2"], work, out)


YOLO_LINE = st.lists(
    st.one_of(ODD_TEXT, st.sampled_from(["0", "1", "0.5", "0.25", "1.5", "-0.1", "1e-9"])),
    min_size=0,
    max_size=7,
).map(" ".join)


@st.composite
def yolo_label(draw: st.DrawFn) -> bytes | None:
    """A label file's bytes; ``None``: the label file is a folder."""
    if draw(st.integers(0, 19)) == 0:
        return None
    lines = ["0 0.500000 0.500000 0.250000 0.500000", "1 0.1 0.2 0.2 0.3"]
    for _ in range(draw(st.integers(1, 3))):
        k = draw(st.integers(0, len(lines)))
        lines.insert(k, draw(YOLO_LINE))
    raw = "\n".join(lines).encode()
    how = draw(st.sampled_from(["text", "text", "crlf", "latin1", "nul"]))
    if how == "crlf":
        raw = raw.replace(b"\n", b"\r\n")
    elif how == "latin1":
        raw += b"\n0 0.5 0.5 0.2 0.2 \xe9"
    elif how == "nul":
        raw = raw.replace(b" ", b"\x00", 1)
    return raw


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=yolo_label())
def test_mutated_yolo_never_crashes(raw: bytes | None) -> None:
    with _workspace() as work:
        shutil.copytree(DATA / "yolo", work / "in")
        label = work / "in" / "labels" / "train" / "a.txt"
        if raw is None:
            label.unlink()
            label.mkdir()
        else:
            label.write_bytes(raw)
        out = work / "out"
        lines = [
            line
            for name in ("a.txt", "b.txt")
            if (label.parent / name).is_file()
            for line in (label.parent / name).read_bytes().splitlines()
            if line.split()
        ]
        # a label file that is a folder must be refused: no output can hold its boxes
        expected = -1 if raw is None else len(lines)
        _check(["corrupt", str(work / "in"), "-o", str(out), "--eta", "0.2"], work, out, expected)


@pytest.mark.parametrize("depth", [1100, 100_000])
def test_deep_nesting_is_one_line_in_every_reader(tmp_path: Path, depth: int) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * depth + "]" * depth)
    for args in (
        ["corrupt", str(deep), "-o", str(tmp_path / "o.json")],
        ["iou", str(deep), str(DATA / "coco" / "instances_tiny.json")],
        ["noise-sweep", str(deep), "-q"],
        ["preview", str(deep), "-o", str(tmp_path / "p.png")],
    ):
        result = CliRunner().invoke(main, args)
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code == 1 and "nested deeper than 1024 levels" in result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
