"""The published studies' READMEs say what their records give (issue 28).

Each study's tables are generated from its records between marker comments, and every
decimal figure its prose quotes must be one of its records' figures; the main README's
findings table is held to the studies it links to. See ``benchmarks/study_readme.py``.
"""

from __future__ import annotations

import doctest
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
STUDIES = sorted(p.parent.name for p in RESULTS.glob("*/benchmark.json"))


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "study_readme", ROOT / "benchmarks" / "study_readme.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


study_readme = _load()
pytestmark = pytest.mark.usefixtures("one_thread")


def test_every_published_study_has_a_readme() -> None:
    assert len(STUDIES) >= 7
    assert [p.name for p in study_readme.study_dirs()] == STUDIES


@pytest.mark.parametrize("study", STUDIES)
def test_study_readme_quotes_only_its_records(study: str) -> None:
    assert study_readme.check_study(RESULTS / study) == []


def test_main_readme_findings_quote_only_the_studies_they_link() -> None:
    assert study_readme.check_findings(ROOT / "README.md") == []
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = study_readme.FINDINGS.search(text).group("body")
    linked = set(study_readme.re.findall(r"benchmarks/results/([\w-]+)/README\.md", body))
    assert linked == set(STUDIES)  # one row per study


def test_a_table_that_no_longer_matches_its_records_fails() -> None:
    study = RESULTS / "loss-zoo-followup"
    text = (study / "README.md").read_text(encoding="utf-8")
    assert "**+0.84 [+0.05, +1.63] 5/6**" in text
    stale = text.replace("**+0.84 [+0.05, +1.63] 5/6**", "**+0.94 [+0.05, +1.63] 5/6**", 1)
    problems = study_readme.check_study(study, stale)
    assert any("a generated table is not what the records give" in p for p in problems)


def test_a_prose_figure_not_in_the_records_fails() -> None:
    study = RESULTS / "paper-cpu"
    text = (study / "README.md").read_text(encoding="utf-8")
    # issue 28: the median cell time was quoted as 8.6 minutes; the records give 8.74
    assert "| 8.74 |" in text
    wrong = text.replace("## What this shows", "## What this shows\n\nA median of 8.6 minutes.")
    problems = study_readme.check_study(study, wrong)
    assert problems == [f"{study / 'README.md'}: the figure 8.6 is in no table of the records"]
    # a figure listed as not from the records is allowed
    listed = wrong.replace(
        "<!-- figures not from the records: ", "<!-- figures not from the records: 8.6 "
    )
    assert study_readme.check_study(study, listed) == []


def test_a_findings_row_with_a_wrong_figure_fails() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert "(+0.84 [+0.05, +1.63])" in text
    wrong = text.replace("(+0.84 [+0.05, +1.63])", "(+0.84 [+0.05, +1.69])")
    problems = study_readme.check_findings(readme, wrong)
    # 1.69 alone is some other figure of the records; the interval as a whole is not
    assert problems == [
        f"{readme}: the figure +0.84 [+0.05, +1.69] of loss-zoo-followup's row is in none "
        "of its tables"
    ]


def test_an_interval_with_a_wrong_sign_fails() -> None:
    study = RESULTS / "loss-zoo"
    text = (study / "README.md").read_text(encoding="utf-8")
    assert "-1.85 [-3.45, -0.26]" in study_readme.prose(text)
    wrong = text.replace("(-1.85 [-3.45, -0.26], 0 of 3", "(-1.85 [-3.45, +0.26], 0 of 3")
    assert study_readme.check_study(study, wrong) == [
        f"{study / 'README.md'}: the figure -1.85 [-3.45, +0.26] is in no table of the records"
    ]


def test_figures_skip_code_links_and_section_numbers() -> None:
    assert doctest.testmod(study_readme).failed == 0
    text = "§4.3 `eta0.3 1.5` [plot](a_0.5.png) <!-- 9.9 --> 2.25 %, v8.4.190, 0.5-0.7"
    assert study_readme.figures(text) == ["2.25", "0.5", "0.7"]


def test_pointwise_reads_a_finding_by_the_protocol_classes_and_waits_for_all_pairs() -> None:
    study = study_readme.Study(RESULTS / "paper-cpu")
    spec = (
        "pointwise vs=iou pairs=6 tests=1:map:alpha-iou:0.1,0.2:-/2:retention_map:alpha-iou:0.1:+"
        "/3:map_75_95:alpha-iou:0:-"
    )
    rows = [line for line in study_readme.render(study, spec).splitlines()[2:]]
    assert rows[0].endswith("| **-1.66 [-2.19, -1.13] 0/6** | holds |")
    assert rows[1].endswith("| -1.21 [-2.49, +0.08] 1/6 | holds in sign only |")
    assert rows[2].endswith("| **-0.031 [-0.048, -0.014] 0/6** | does not hold |")
    assert rows[3].endswith("| **+1.86 [+1.00, +2.72] 6/6** | does not hold |")
    waiting = study_readme.render(study, spec.replace("pairs=6", "pairs=7"))
    assert "pending (6 of 7 pairs)" in waiting and "-1.66" not in waiting
