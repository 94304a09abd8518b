"""Mean IoU of noisy to clean boxes for every noise model at a list of levels.

Noise models put different numbers behind the word "level": ``uniform`` at ``eta = 0.2``
and ``gaussian-corner`` at ``gamma = 0.2`` are very different noises. :func:`noise_sweep`
measures each model's mean IoU on one annotation set at each level, so that two models can
be set to the same mean IoU and compared like with like (``noisybox noise-sweep``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from noisybox.corrupt import DEFAULT_SEED, corrupt_boxes
from noisybox.errors import NoisyboxError
from noisybox.formats import concat_annotations, read_annotations
from noisybox.formats.annotations import Annotations
from noisybox.noise import BOUNDARIES, list_noise_models, resolve_eta
from noisybox.stats import compare_annotations

__all__ = [
    "DEFAULT_LEVELS",
    "SOURCE_BOUNDARY",
    "SweepResult",
    "noise_sweep",
    "plot_sweep",
]

DEFAULT_LEVELS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.4)

SOURCE_BOUNDARY: dict[str, str] = {
    "uniform": "shift",
    "gaussian": "shift",
    "oamil": "truncate",
    "gaussian-corner": "truncate",
    "edge-jitter": "truncate",
}
"""The boundary each model's source uses (``shift`` for models not listed)."""


@dataclasses.dataclass
class SweepResult:
    """What :func:`noise_sweep` measured.

    Attributes:
        levels: the noise levels (``eta``).
        rows: one dict per ``(model, level)``: ``model``, ``boundary``, ``level``,
            ``mean_image_iou`` (the Alpha-IoU paper's statistic), ``mean_iou`` (per box),
            ``num_boxes``.
        source: what was measured.
        num_boxes: boxes in the set (crowd boxes included).
        seed: seed of every draw.
    """

    levels: list[float]
    rows: list[dict[str, Any]]
    source: str
    num_boxes: int
    seed: int

    def table(self, statistic: str = "mean_image_iou") -> dict[str, list[float]]:
        """``{model: [figure at each level]}`` for ``statistic`` (``mean_image_iou`` or
        ``mean_iou``)."""
        out: dict[str, list[float]] = {}
        for row in self.rows:
            out.setdefault(row["model"], []).append(row[statistic])
        return out

    def format_text(self, statistic: str = "mean_image_iou") -> str:
        """A Markdown table: one row per model, one column per level.

        >>> r = SweepResult([0.1], [{"model": "uniform", "boundary": "shift", "level": 0.1,
        ...     "mean_image_iou": 0.83, "mean_iou": 0.82, "num_boxes": 4}], "x", 4, 0)
        >>> print(r.format_text())
        | model | boundary | 0.1 |
        |---|---|---|
        | uniform | shift | 0.8300 |
        """
        boundary = {row["model"]: row["boundary"] for row in self.rows}
        head = "| model | boundary | " + " | ".join(f"{x:g}" for x in self.levels) + " |"
        lines = [head, "|---|---|" + "---|" * len(self.levels)]
        for model, values in self.table(statistic).items():
            cells = " | ".join("n/a" if not math.isfinite(v) else f"{v:.4f}" for v in values)
            lines.append(f"| {model} | {boundary[model]} | {cells} |")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (undefined figures as ``None``)."""

        def clean(v: Any) -> Any:
            return None if isinstance(v, float) and not math.isfinite(v) else v

        return {
            "source": self.source,
            "num_boxes": self.num_boxes,
            "seed": self.seed,
            "levels": self.levels,
            "rows": [{k: clean(v) for k, v in row.items()} for row in self.rows],
        }


def _check_levels(levels: Sequence[float]) -> list[float]:
    if not levels:
        raise NoisyboxError("Expected at least one level but got none")
    out = []
    for level in levels:
        try:
            resolve_eta(float(level), None, None)
        except (TypeError, ValueError):
            raise NoisyboxError(f"Expected a level in [0, 1) but got {level!r}") from None
        out.append(float(level))
    return out


def noise_sweep(
    inputs: Annotations | str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    levels: Sequence[float] = DEFAULT_LEVELS,
    *,
    models: Sequence[str] | None = None,
    boundary: str | None = None,
    seed: int = DEFAULT_SEED,
    on_invalid: str = "error",
    format: str | None = None,
    image_set: str | None = None,
) -> SweepResult:
    """Mean IoU of noisy to clean boxes for each model at each level, on one set.

    Its length is the docstring (every option and each model's own noise level).

    The boxes are those ``noisybox corrupt`` would write (rounded as the format stores
    them), from ``seed``; several inputs (VOC2007 + VOC2012) are measured together, each
    drawn with ``seed``. Nothing is written.

    Args:
        inputs: :class:`Annotations`, or one or more annotation files or folders.
        levels: noise levels ``eta`` in ``[0, 1)`` (each model's own level, see its
            docstring: ``r`` for ``oamil``, ``gamma`` for ``gaussian-corner``,
            ``p / 100`` for ``edge-jitter``).
        models: registered noise models (default all).
        boundary: ``shift`` or ``truncate`` for every model; ``None`` (default) uses each
            model's source (:data:`SOURCE_BOUNDARY`).
        seed: seed of every draw.
        on_invalid: see :func:`noisybox.corrupt.corrupt_boxes`.
        format: input format (detected by default).
        image_set: VOC image set (``trainval``).

    Returns:
        :class:`SweepResult`.

    Raises:
        NoisyboxError: a level outside ``[0, 1)``, an unknown model or boundary, or bad
            input.
    """
    grid = _check_levels(levels)
    names = list(models) if models else list_noise_models()
    for name in names:
        if name not in list_noise_models():
            raise NoisyboxError(f"Expected a noise model in {list_noise_models()} but got {name!r}")
    if boundary is not None and boundary not in BOUNDARIES:
        raise NoisyboxError(f"Expected boundary in {list(BOUNDARIES)} but got {boundary!r}")
    if isinstance(inputs, Annotations):
        parts = [inputs]
    else:
        paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
        kwargs: dict[str, Any] = {"image_set": image_set} if image_set else {}
        parts = [read_annotations(p, format, **kwargs) for p in paths]
    clean = parts[0] if len(parts) == 1 else concat_annotations(parts)
    rows = []
    for name in names:
        model_boundary = boundary or SOURCE_BOUNDARY.get(name, "shift")
        for level in grid:
            noisy, eligible = [], []
            for part in parts:
                out = corrupt_boxes(
                    part,
                    eta=level,
                    noise_model=name,
                    boundary=model_boundary,
                    seed=seed,
                    on_invalid=on_invalid,
                )
                noisy.append(out.annotations.boxes)
                eligible.append(out.eligible)
            stats = compare_annotations(
                clean,
                clean.with_boxes(np.concatenate(noisy).reshape(-1, 4)),
                include=np.concatenate(eligible),
            )
            rows.append(
                {
                    "model": name,
                    "boundary": model_boundary,
                    "level": level,
                    "mean_image_iou": stats.mean_image_iou,
                    "mean_iou": stats.mean_iou,
                    "num_boxes": stats.num_boxes,
                }
            )
    return SweepResult(
        levels=grid,
        rows=rows,
        source=" + ".join(str(p.source) for p in parts),
        num_boxes=clean.num_boxes,
        seed=int(seed),
    )


def plot_sweep(result: SweepResult, statistic: str = "mean_image_iou", title: str = "") -> Any:
    """A matplotlib figure: mean IoU against level, one line per model."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    boundary = {row["model"]: row["boundary"] for row in result.rows}
    for model, values in result.table(statistic).items():
        ax.plot(result.levels, values, marker="o", label=f"{model} ({boundary[model]})")
    ax.set_xlabel("noise level (each model's own: eta, r, gamma, p/100)")
    label = "mean IoU per image" if statistic == "mean_image_iou" else "mean IoU per box"
    ax.set_ylabel(f"{label}, noisy vs clean")
    ax.set_ylim(0.0, 1.0)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or f"Noise sweep: {result.num_boxes} boxes, seed {result.seed}", fontsize=9)
    fig.tight_layout()
    return fig
