"""The one progress reporter (noisybox._progress) behind every loop that shows progress."""

from __future__ import annotations

import io

import pytest

from noisybox import _progress
from noisybox.formats._io import progress_enumerate


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_iter_off_a_terminal_prints_one_line_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = io.StringIO()
    monkeypatch.setattr(_progress.sys, "stderr", err)
    pairs = list(progress_enumerate(["a", "b", "c"], progress=True, desc="reading VOC"))
    assert pairs == [(0, "a"), (1, "b"), (2, "c")]
    assert err.getvalue().startswith("reading VOC: 3/3 file (")
    assert "\r" not in err.getvalue()  # no bar redraws in a log


def test_progress_iter_disabled_prints_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    err = _Terminal()
    monkeypatch.setattr(_progress.sys, "stderr", err)
    assert list(_progress.progress_iter(iter(range(3)), "x", enabled=False)) == [0, 1, 2]
    assert list(progress_enumerate(["a"], progress=False, desc="x")) == [(0, "a")]
    assert err.getvalue() == ""


def test_progress_iter_on_a_terminal_is_a_tqdm_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    err = _Terminal()
    monkeypatch.setattr(_progress.sys, "stderr", err)
    assert list(_progress.progress_iter(["a", "b"], "writing YOLO", unit="file")) == ["a", "b"]
    assert "writing YOLO" in err.getvalue() and "2/2" in err.getvalue()


def test_progress_write_goes_to_stderr_on_and_off_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for err in (io.StringIO(), _Terminal()):
        monkeypatch.setattr(_progress.sys, "stderr", err)
        _progress.progress_write("collapsed: c1: loss is NaN")
        assert err.getvalue().splitlines()[-1] == "collapsed: c1: loss is NaN"
