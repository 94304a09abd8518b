"""A griffe extension for the API pages: docstrings written for doctest and Sphinx, read as Markdown.

The package's docstrings are Google style with two habits from reStructuredText: cross
references as roles (``:func:`perturb_boxes```) and doctest examples in the description
rather than under an ``Examples:`` header. Markdown would render the first literally and
read the second as a block quote whose output lines (``[0.9, 0.925]``) look like links.
This extension, loaded by mkdocstrings (``extensions:`` in ``mkdocs.yml``), rewrites each
docstring as it is loaded: a role becomes inline code, and a doctest block outside an
``Examples:`` section (which griffe already renders as code) becomes a fenced ``pycon``
block. The source is not touched.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

__all__ = ["RstDocstrings", "markdown_docstring"]

_ROLE = re.compile(r":(?:py:)?(?:func|class|mod|meth|attr|data|exc|obj|const):`~?([^`]+)`")
_EXAMPLES = re.compile(r"^(\s*)Examples:\s*$")  # "Example:" is an admonition in griffe


def markdown_docstring(text: str) -> str:
    """``text`` with its roles as inline code and its loose doctest blocks fenced.

    >>> markdown_docstring("See :func:`~a.b`.\\n\\n>>> f()\\n[1, 2]\\n\\nDone.")
    'See `a.b`.\\n\\n```pycon\\n>>> f()\\n[1, 2]\\n```\\n\\nDone.'
    """
    text = _ROLE.sub(r"`\1`", text)
    out: list[str] = []
    lines = text.split("\n")
    examples_indent: int | None = None  # inside an Examples: section: its header's indent
    i = 0
    while i < len(lines):
        line = lines[i]
        indent = len(line) - len(line.lstrip())
        if line.strip() and examples_indent is not None and indent <= examples_indent:
            examples_indent = None
        match = _EXAMPLES.match(line)
        if match:
            examples_indent = len(match.group(1))
        if examples_indent is None and line.lstrip().startswith(">>>"):
            block = []
            while i < len(lines) and lines[i].strip():
                block.append(lines[i])
                i += 1
            pad = " " * indent
            out += [f"{pad}```pycon", *block, f"{pad}```"]
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


class RstDocstrings(griffe.Extension):
    """Rewrite every loaded docstring with :func:`markdown_docstring`."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown_docstring(obj.docstring.value)
