"""The one write path: atomic, links followed, special files refused, umask kept, all or
nothing; and every command's files written through it."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from noisybox._fileio import (
    atomic_dir,
    atomic_write_text,
    check_outputs,
    read_json_object,
    resolve_output,
    staged,
)
from noisybox.cli import main
from noisybox.errors import NoisyboxError

PACKAGE = Path(__file__).parent.parent / "noisybox"
COCO_FILE = Path(__file__).parent / "data" / "coco" / "instances_tiny.json"
VOC_DIR = Path(__file__).parent / "data" / "voc" / "VOC2007"


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_one_home_for_atomic_writes() -> None:
    """issue 14: ``os.replace``/``mkstemp``/``NamedTemporaryFile`` live in _fileio only."""
    pattern = re.compile(r"os\.replace|mkstemp|NamedTemporaryFile|\.replace\(path\)")
    offenders = [
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name != "_fileio.py"
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_symlink_is_followed_and_kept(tmp_path: Path) -> None:
    target = tmp_path / "real" / "out.json"
    target.parent.mkdir()
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert atomic_write_text(link, "new") == target
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "created.json")
    atomic_write_text(dangling, "x")
    assert dangling.is_symlink() and (tmp_path / "created.json").read_text() == "x"


def test_special_files_and_kernel_paths_are_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(NoisyboxError, match=r"pipe, a FIFO \(named pipe\); noisybox never"):
        atomic_write_text(fifo, "x")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    for path in ("/dev/null", "/dev/stdout", "/dev/fd/1", "/proc/self/status", "/sys/x"):
        with pytest.raises(NoisyboxError, match="noisybox never writes to devices"):
            resolve_output(path, option="-o")
    (tmp_path / "null").symlink_to("/dev/null")
    with pytest.raises(NoisyboxError, match=r"leading to /dev/null"):
        atomic_write_text(tmp_path / "null", "x")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    with pytest.raises(NoisyboxError, match="got '-'"):
        resolve_output("-", option="-o")
    with pytest.raises(NoisyboxError, match=r"a folder$"):
        atomic_write_text(tmp_path, "x")
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(NoisyboxError, match="loop of links"):
        atomic_write_text(tmp_path / "a", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b", "null", "pipe"]


def test_new_files_follow_the_umask_and_replaced_files_keep_their_mode(
    tmp_path: Path, umask_022: None
) -> None:
    new = atomic_write_text(tmp_path / "sub" / "new.txt", "x")
    assert _mode(new) == 0o644 and _mode(new.parent) == 0o755
    os.umask(0o027)
    assert _mode(atomic_write_text(tmp_path / "other.txt", "x")) == 0o640
    private = tmp_path / "private.txt"
    private.write_text("old")
    private.chmod(0o600)
    atomic_write_text(private, "new")
    assert _mode(private) == 0o600 and private.read_text() == "new"
    with atomic_dir(tmp_path / "folder", manifest="m.json") as tmp:
        (tmp / "m.json").write_text("{}")
    assert _mode(tmp_path / "folder") == 0o750


def test_staged_writes_are_all_or_nothing(tmp_path: Path) -> None:
    kept = tmp_path / "kept.txt"
    kept.write_text("mine")
    with pytest.raises(RuntimeError, match="second output"), staged():
        atomic_write_text(tmp_path / "new" / "deep" / "a.txt", "a")
        atomic_write_text(kept, "replaced")
        with atomic_dir(tmp_path / "folder", manifest="m.json") as tmp:
            (tmp / "m.json").write_text("{}")
        raise RuntimeError("the second output failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
    assert kept.read_text() == "mine"
    with staged():
        atomic_write_text(tmp_path / "new" / "a.txt", "a")
        assert not (tmp_path / "new" / "a.txt").exists()  # not before the block ends
        atomic_write_text(kept, "replaced")
    assert (tmp_path / "new" / "a.txt").read_text() == "a" and kept.read_text() == "replaced"


def test_check_outputs_refuses_inputs_and_each_other(tmp_path: Path) -> None:
    src = tmp_path / "in.json"
    src.write_text("{}")
    os.link(src, tmp_path / "hard.json")
    (tmp_path / "soft.json").symlink_to(src)
    folder = tmp_path / "voc"
    (folder / "Annotations").mkdir(parents=True)
    for out, inputs, words in [
        (src, {"IN": src}, "same file as"),
        (tmp_path / "hard.json", {"IN": src}, "same file as"),
        (tmp_path / "soft.json", {"IN": src}, "same file as"),
        (folder / "noisy", {"IN": folder}, "a path inside"),
        (tmp_path, {"IN": folder / "Annotations"}, "a folder holding"),
    ]:
        with pytest.raises(NoisyboxError, match=words):
            check_outputs({"-o": out}, inputs, folders=("-o",))
    with pytest.raises(NoisyboxError, match="--plot to differ from -o"):
        check_outputs({"-o": tmp_path / "o.json", "--plot": tmp_path / "o.json"}, {})
    ok = check_outputs({"-o": tmp_path / "o.json", "--plot": None}, {"IN": src, "X": None})
    assert ok == {"-o": tmp_path / "o.json"}


def test_read_json_object_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    for content, words in [
        (b"{", "invalid JSON"),
        (b"[1]", "a JSON list"),
        (b"\xff", "not UTF-8"),
    ]:
        path.write_bytes(content)
        with pytest.raises(NoisyboxError, match=words) as info:
            read_json_object(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
    path.write_text('{"a": 1}')
    assert read_json_object(path) == {"a": 1}


def test_corrupt_writes_through_a_link_and_keeps_the_umask(tmp_path: Path, umask_022: None) -> None:
    target = tmp_path / "target.json"
    (tmp_path / "link.json").symlink_to(target)
    plot = tmp_path / "hist.png"
    result = CliRunner().invoke(
        main,
        ["corrupt", str(COCO_FILE), "-o", str(tmp_path / "link.json"), "--plot", str(plot), "-q"],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads(target.read_text())["info"]["noisybox"]["eta"] == 0.2
    assert _mode(target) == 0o644 and _mode(plot) == 0o644


@pytest.mark.parametrize(
    ("inputs", "output"),
    [([COCO_FILE], "out.json"), ([VOC_DIR, COCO_FILE], "out")],
    ids=["one input", "several inputs"],
)
def test_a_failing_plot_leaves_no_corrupt_output(
    inputs: list[Path], output: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after the first output was written removes what the run wrote (with
    several inputs: the output folder and every copy in it)."""
    import noisybox.viz

    def broken(*args: object, **kwargs: object) -> None:
        raise NoisyboxError("Expected a histogram but got a broken renderer")

    monkeypatch.setattr(noisybox.viz, "plot_iou_histogram", broken)
    out = tmp_path / "sub" / output
    result = CliRunner().invoke(
        main,
        ["corrupt", *map(str, inputs), "-o", str(out), "--plot", str(tmp_path / "h.png")],
    )
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert result.stderr == "Error: Expected a histogram but got a broken renderer\n"
    assert list(tmp_path.iterdir()) == []


def test_make_dataset_failing_midway_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from noisybox.data import synthetic

    real = synthetic.draw_shapes_image
    calls: list[int] = []

    def fails_on_the_third(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(synthetic, "draw_shapes_image", fails_on_the_third)
    out = tmp_path / "ds"
    result = CliRunner().invoke(
        main,
        ["make-dataset", "shapes", str(out), "--num-train", "2", "--num-val", "2",
         "--image-size", "32"],
    )  # fmt: skip
    assert result.exit_code == 1 and "No space left" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_written_files_follow_the_umask(tmp_path: Path, umask_022: None) -> None:
    """make-dataset, plot-loss and report wrote 0600 whatever the umask (item 5)."""
    ds = tmp_path / "ds"
    assert CliRunner().invoke(main, ["make-dataset", "shapes", str(ds), "--num-train", "1",
                                     "--num-val", "1", "--num-calib", "0",
                                     "--image-size", "32"]).exit_code == 0  # fmt: skip
    files = [ds / "instances_train.json", ds / "instances_val.json", *ds.rglob("*.png")]
    plot = tmp_path / "loss.png"
    assert CliRunner().invoke(main, ["plot-loss", "-o", str(plot)]).exit_code == 0
    files.append(plot)
    from noisybox.report.writer import write_report
    from noisybox.study.loading import load_config
    from noisybox.study.results import open_results_folder

    cfg = load_config(
        {
            "dataset": {"builtin": "shapes"},
            "detectors": ["fcos"],
            "losses": ["iou"],
            "etas": [0.0],
            "seeds": [0],
            "schedule": {"epochs": 1},
        }
    )
    folder, _ = open_results_folder(cfg, tmp_path / "res")
    report = write_report(folder.root)
    files += [folder.config_json, folder.root / "benchmark.yaml", *report.files]
    assert len(files) == 8
    assert {str(p.relative_to(tmp_path)): _mode(p) for p in files} == {
        str(p.relative_to(tmp_path)): 0o644 for p in files
    }


def test_remove_stale_temporaries_keeps_the_target_and_other_files(tmp_path) -> None:
    from noisybox._fileio import remove_stale_temporaries

    target = tmp_path / "last.pt"
    target.write_bytes(b"weights")
    stale = [tmp_path / ".last.pt.abc123.tmp", tmp_path / ".last.pt.x.tmp"]
    for p in stale:
        p.write_bytes(b"half")
    other = tmp_path / ".result.json.abc.tmp"
    other.write_bytes(b"{")
    assert sorted(remove_stale_temporaries(target)) == sorted(stale)
    assert target.read_bytes() == b"weights" and other.exists()
    assert not any(p.exists() for p in stale)
    assert remove_stale_temporaries(tmp_path / "missing" / "last.pt") == []
