"""MkDocs hook: a link to a folder that holds a README.md goes to that README, as on GitHub.

The study folders' Markdown (narratives, stamped protocols) links to folders such as
``calibration/``; GitHub shows a folder's README there, and this hook makes the site do the
same. A folder link without a README is left as it is, so ``mkdocs build --strict`` still
reports it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_LINK = re.compile(r"\]\((?P<target>(?!https?:|/|#)[^)\s#]+/)\)")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Rewrite ``](folder/)`` to ``](folder/README.md)`` where that README exists."""
    here = Path(page.file.abs_src_path).parent

    def fix(match: re.Match[str]) -> str:
        target = match.group("target")
        if (here / target / "README.md").is_file():
            return f"]({target}README.md)"
        return match.group(0)

    return _LINK.sub(fix, markdown)
