"""The grid of a benchmark: its cells, their run order and shards.

A cell is one (detector, loss, alpha, eta, seed): one training run, and in a study with
several noise conditions (``noise:`` a list) also one condition, except at eta = 0: clean
boxes are the same under every condition, so that cell is trained once and is the clean
reference of every condition. :func:`expand_grid` lists a config's cells in run order and
:func:`shard_cells` deals them out over jobs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from noisybox.errors import NoisyboxError
from noisybox.study.spec import BenchmarkConfig, DetectorSpec, LossSpec, NoiseConfig

__all__ = ["Cell", "expand_grid", "parse_shard", "select_cells", "shard_cells"]


@dataclasses.dataclass(frozen=True)
class Cell:
    """One training run of the grid.

    ``condition`` is the cell's noise condition in a study with several (``None`` in a
    study with one, and for the clean cells, eta = 0, shared by every condition).
    """

    detector: DetectorSpec
    loss: LossSpec
    eta: float
    seed: int
    condition: NoiseConfig | None = None

    @property
    def cell_id(self) -> str:
        """A file-name-safe id, e.g. ``retinanet-resnet18__alpha-iou@3__eta0.3__s0``.

        >>> from noisybox.study.spec import DetectorSpec, LossSpec
        >>> Cell(DetectorSpec("fcos"), LossSpec("alpha-iou", 3.0, 0.3), 0.1, 2).cell_id
        'fcos-resnet18__alpha-iou@3~w0.3__eta0.1__s2'

        A cell of one of several noise conditions has the condition's label before eta:

        >>> from noisybox.study.spec import NoiseConfig
        >>> missing = NoiseConfig("none", corruptions=("missing",))
        >>> Cell(DetectorSpec("fcos"), LossSpec("iou", 1.0), 0.2, 0, missing).cell_id
        'fcos-resnet18__iou__missing__eta0.2__s0'
        """
        condition = "" if self.condition is None else f"__{self.condition.label}"
        loss = self.loss.id_label
        return f"{self.detector.label}__{loss}{condition}__eta{self.eta:g}__s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """The cell's axes as a record stores them (``record["cell"]``); ``condition``
        (the label) only for a cell of one of several noise conditions."""
        data: dict[str, Any] = {
            "detector": self.detector.name,
            "backbone": self.detector.backbone,
            # the loss spec's flat keys (as LossSpec.from_cell reads them back)
            "loss": self.loss.name,
            "alpha": self.loss.alpha,
            "alpha_warmup": self.loss.alpha_warmup,
            "eta": self.eta,
            "seed": self.seed,
        }
        if self.condition is not None:
            data["condition"] = self.condition.label
        return data


def expand_grid(cfg: BenchmarkConfig) -> list[Cell]:
    """Every cell of the grid in run order: seeds, then etas, noise conditions, detectors
    and losses.

    Seeds vary slowest so that an interrupted study holds complete tables for its first
    seeds; losses vary fastest so that the cells sharing one noisy file run together. With
    several noise conditions, eta = 0 (clean boxes) has one cell per detector, loss and
    seed, without a condition.
    """
    conditions: tuple[NoiseConfig | None, ...] = cfg.noise_conditions or (None,)
    return [
        Cell(det, loss, eta, seed, condition)
        for seed in cfg.seeds
        for eta in cfg.etas
        for condition in ((None,) if eta == 0 else conditions)
        for det in cfg.detectors
        for loss in cfg.losses
    ]


def select_cells(grid: BenchmarkConfig, cfg: BenchmarkConfig) -> list[Cell]:
    """The cells of ``grid`` that ``cfg`` asks for, in ``grid``'s run order.

    ``grid`` is a results folder's stored config, ``cfg`` the one being run: the same, or
    part of it after ``--extend``. A study of one noise condition extended with another
    names its noisy cells by condition, so a config of that one condition asks for them
    under their new ids.
    """
    conditions = cfg.conditions
    return [
        cell
        for cell in expand_grid(grid)
        if cell.detector in cfg.detectors
        and cell.loss in cfg.losses
        and cell.eta in cfg.etas
        and cell.seed in cfg.seeds
        and (cell.condition is None or cell.condition in conditions)
    ]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """Parse ``"i/n"`` (``0 <= i < n``) into ``(i, n)``.

    Raises:
        NoisyboxError: malformed text or ``i`` out of range.

    >>> parse_shard("1/4")
    (1, 4)
    """
    if text is None:
        return None
    parts = text.split("/")
    try:
        index, count = (int(p) for p in parts)
    except ValueError:
        raise NoisyboxError(f"Expected --shard as i/n (e.g. 0/4) but got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise NoisyboxError(f"Expected --shard i/n with 0 <= i < n but got {text!r}")
    return index, count


def shard_cells(cells: Sequence[Cell], index: int, count: int) -> list[Cell]:
    """Cells ``index, index + count, ...`` of the grid: deterministic, disjoint, covering."""
    return list(cells[index::count])
