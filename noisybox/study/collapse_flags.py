"""Collapsed cells, and the one rule for "the alpha = 1 baseline of a cell".

An alpha variant (``alpha-iou@3``, ``giou@2``) is compared with the same IoU variant at
alpha = 1 (``iou``, ``giou``): its *baseline*. :func:`baseline_of` is the rule, used by the
collapse detector here (through :func:`find_twin`, the baseline's cell with the same seed),
by the report's relative improvements and paired comparisons, and by the plots' styles:

* only a cell with an alpha other than 1 has a baseline (the stock torchvision loss has no
  alpha; ``log-iou``, the alpha -> 0 limit, is compared with nothing);
* the baseline has the same detector, backbone, eta and noise condition (if any), alpha = 1
  and the same IoU variant (``alpha-iou`` and ``iou`` are both the variant ``iou``);
* among several, the plain name (``iou``) wins over ``alpha-iou@1``, then no alpha warm-up
  over one, then the first in record order.

A cell counts as collapsed when its box regression did not train (the engine's signals,
:func:`noisybox.engine.collapse.collapse_reasons`) or its AP50 is near zero while its
twin's is not; collapsed cells are named in the report and left out of its numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from noisybox.engine.collapse import collapse_reasons
from noisybox.study.results import ResultsFolder
from noisybox.study.spec import CollapseConfig

__all__ = [
    "apply_collapse_flags",
    "base_variant",
    "baseline_of",
    "detect_collapse",
    "find_twin",
    "has_baseline",
    "is_alpha_variant",
    "refresh_collapse_flags",
]

_C = TypeVar("_C", bound=Mapping[str, Any])

#: Losses compared with no baseline whatever their alpha (``log-iou`` is alpha -> 0).
_NO_BASELINE = ("log-iou",)


def base_variant(loss: str) -> str:
    """The IoU variant of a loss name: ``alpha-giou`` and ``giou`` are both ``giou``.

    >>> base_variant("alpha-giou"), base_variant("giou"), base_variant("inner-ciou")
    ('giou', 'giou', 'inner-ciou')
    """
    return loss[len("alpha-") :] if loss.startswith("alpha-") else loss


def is_alpha_variant(alpha: float | None) -> bool:
    """Whether a loss row is an alpha variant (an alpha other than 1; the stock loss has none).

    >>> is_alpha_variant(3.0), is_alpha_variant(1.0), is_alpha_variant(None)
    (True, False, False)
    """
    return alpha is not None and alpha != 1


def has_baseline(loss: str, alpha: float | None) -> bool:
    """Whether a loss row is compared with an alpha = 1 baseline.

    >>> has_baseline("alpha-iou", 3.0), has_baseline("iou", 1.0), has_baseline("log-iou", 0.0)
    (True, False, False)
    """
    return is_alpha_variant(alpha) and loss not in _NO_BASELINE


def _same_slot(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    return (
        a["detector"] == b["detector"]
        and a.get("backbone") == b.get("backbone")
        and float(a["eta"]) == float(b["eta"])
        and a.get("condition") == b.get("condition")
    )


def baseline_of(cell: Mapping[str, Any], cells: Iterable[_C]) -> _C | None:
    """The alpha = 1 baseline of ``cell`` among ``cells`` (see the module docstring).

    Args:
        cell: a loss row: ``detector``, ``backbone``, ``eta``, ``loss``, ``alpha`` and
            optionally ``alpha_warmup`` (``None`` for unset values).
        cells: the candidate rows, in record order.

    Returns:
        The baseline row (an element of ``cells``), or ``None``.

    >>> row = lambda loss, alpha, w=None: {"detector": "fcos", "backbone": "r18", "eta": 0.3,
    ...                                    "loss": loss, "alpha": alpha, "alpha_warmup": w}
    >>> rows = [row("alpha-iou", 1.0), row("iou", 1.0, 0.3), row("iou", 1.0), row("giou", 1.0)]
    >>> baseline_of(row("alpha-iou", 3.0), rows) is rows[2]
    True
    >>> baseline_of(row("iou", 1.0), rows) is None
    True
    """
    if not has_baseline(cell["loss"], cell.get("alpha")):
        return None
    base = base_variant(cell["loss"])
    candidates = [
        c
        for c in cells
        if _same_slot(c, cell) and c.get("alpha") == 1 and base_variant(c["loss"]) == base
    ]
    if not candidates:
        return None
    # min() keeps the first of equals: record order breaks the remaining ties
    return min(candidates, key=lambda c: (c["loss"] != base, c.get("alpha_warmup") is not None))


def _row(cell: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(
        cell.get(k)
        for k in ("detector", "backbone", "eta", "condition", "loss", "alpha", "alpha_warmup")
    )


def find_twin(record: dict[str, Any], records: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """The alpha = 1 twin of a cell: the cell of its baseline (:func:`baseline_of` over
    the loss rows of ``records``) with the same seed, or ``None``."""
    rows: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    for other in records:  # each loss row once, in record order
        rows.setdefault(_row(other["cell"]), other["cell"])
    base = baseline_of(record["cell"], rows.values())
    if base is None:
        return None
    seed = record["cell"]["seed"]
    for other in records:
        if _row(other["cell"]) == _row(base) and other["cell"]["seed"] == seed:
            return other
    return None


def detect_collapse(
    record: dict[str, Any], twin: dict[str, Any] | None, thresholds: CollapseConfig
) -> list[str]:
    """Why a cell counts as collapsed (empty list: it trained).

    The signals are the engine's (:func:`noisybox.engine.collapse.collapse_reasons`): the
    matched predicted boxes' mean IoU with their targets (``fg_iou``, alpha-free) ended
    below ``min_fg_iou``; or, where ``fg_iou`` is not recorded and alpha was constant, the
    box loss fell by less than ``min_box_loss_drop``; or AP50 is below ``ap50_near_zero``
    while the cell's alpha = 1 twin (see :func:`find_twin`) reached at least twice that.

    Args:
        record: a result record (``cell``, ``history``, ``metrics``).
        twin: the record of its alpha = 1 twin, if any.
        thresholds: the config's ``collapse`` section.

    >>> rec = {"history": [{"box_loss": 0.99, "alpha": 3.0}, {"box_loss": 0.99, "alpha": 3.0}],
    ...        "metrics": {"ap50": 0.0}}
    >>> [r.split(":")[0] for r in detect_collapse(rec, {"metrics": {"ap50": 0.7}}, CollapseConfig())]
    ['box loss did not fall', 'AP50 near zero']
    """
    ap50 = (record.get("metrics") or {}).get("ap50")
    twin_ap50 = None if twin is None else (twin.get("metrics") or {}).get("ap50")
    reasons = collapse_reasons(
        record.get("history") or [],
        ap50=ap50,
        reference_ap50=twin_ap50,
        min_box_loss_drop=thresholds.min_box_loss_drop,
        min_fg_iou=thresholds.min_fg_iou,
        ap50_near_zero=thresholds.ap50_near_zero,
    )
    if twin is not None:
        reasons = [
            f"{r} (twin {twin.get('cell_id')})" if r.startswith("AP50 near zero") else r
            for r in reasons
        ]
    losses = [h.get("box_loss") for h in record.get("history") or []]
    if any(v is not None and not math.isfinite(float(v)) for v in losses):
        reasons.append("box loss was non-finite in some epochs")
    return reasons


def apply_collapse_flags(
    records: list[dict[str, Any]], thresholds: CollapseConfig
) -> list[dict[str, Any]]:
    """Records with ``collapsed`` and ``collapse_reasons`` recomputed from all records (copies)."""
    out = []
    for rec in records:
        reasons = detect_collapse(rec, find_twin(rec, records), thresholds)
        out.append({**rec, "collapsed": bool(reasons), "collapse_reasons": reasons})
    return out


def refresh_collapse_flags(
    folder: ResultsFolder, thresholds: CollapseConfig
) -> list[dict[str, Any]]:
    """Recompute every record's collapse flag (a twin may finish after its alpha variant).

    Records whose flag or reasons changed are rewritten atomically.

    Returns:
        All records, flags up to date.
    """
    records = folder.load_records()
    updated = apply_collapse_flags(records, thresholds)
    for old, new in zip(records, updated, strict=True):
        if (
            old.get("collapsed") != new["collapsed"]
            or old.get("collapse_reasons") != new["collapse_reasons"]
        ):
            folder.write_record(new)
    return updated
