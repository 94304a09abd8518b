"""The report of a study: tables, paired statistics, plots and learning curves.

Reads a results folder (``benchmark.json`` and ``records/``) and nothing else: it imports
no torch, so a report can be rebuilt on any machine from a committed study folder.

Rooms: ``summary`` (the frame of records and the numbers of Table 3, robustness and
retention), ``paired`` (paired statistics over seeds), ``learning_curves`` (per-epoch
curves and convergence), ``tables`` (Markdown, LaTeX and CSV), ``plots`` (figures),
``sections`` (the report's prose sections) and ``writer`` (the report put together and
written).
"""

from __future__ import annotations

from noisybox.report.summary import records_frame, summarize
from noisybox.report.writer import Report, build_report, write_report

__all__ = ["Report", "build_report", "records_frame", "summarize", "write_report"]
