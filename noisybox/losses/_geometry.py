"""Private pairwise box geometry shared by every IoU-based loss.

:class:`Geometry` holds the intersection, union, IoU and the smallest enclosing box of
matched box pairs (computed by :mod:`noisybox.boxes`), so that the variants only add their
penalty terms; the rest is what only losses need (the saturating upcast, ``safe_pow``,
Inner-IoU).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from noisybox.boxes import elementwise_box_overlap, interval_hull, interval_overlap, union_and_iou

__all__: list[str] = []


class Geometry:
    """Element-wise geometry of matched ``xyxy`` pairs, every attribute ``Tensor[...]``.

    ``x1 .. y2`` and ``w, h`` belong to the prediction, ``gx1 .. gy2`` and ``gw, gh`` to the
    target; ``cw, ch`` are the width and height of the smallest enclosing box. ``inter``,
    ``union`` and ``iou`` are computed on first use, so a loss that does not use them (NWD,
    an Inner-IoU term) keeps nothing for them in the autograd graph; a value first computed
    with gradients off (a detached weight) is computed again when asked for with them on.
    """

    __slots__ = (
        "x1", "y1", "x2", "y2", "gx1", "gy1", "gx2", "gy2",
        "w", "h", "gw", "gh", "cw", "ch", "eps", "_overlaps",
    )  # fmt: skip

    def __init__(self, pred: Tensor, target: Tensor, eps: float) -> None:
        self.x1, self.y1, self.x2, self.y2 = pred.unbind(-1)
        self.gx1, self.gy1, self.gx2, self.gy2 = target.unbind(-1)
        self.w = self.x2 - self.x1
        self.h = self.y2 - self.y1
        self.gw = self.gx2 - self.gx1
        self.gh = self.gy2 - self.gy1
        self.cw = interval_hull(self.x1, self.x2, self.gx1, self.gx2)
        self.ch = interval_hull(self.y1, self.y2, self.gy1, self.gy2)
        self.eps = eps
        self._overlaps: dict[bool, tuple[Tensor, Tensor, Tensor]] = {}

    @property
    def inter(self) -> Tensor:
        """Intersection area."""
        return self._overlap()[0]

    @property
    def union(self) -> Tensor:
        """Union area."""
        return self._overlap()[1]

    @property
    def iou(self) -> Tensor:
        """``inter / max(union, eps)``."""
        return self._overlap()[2]

    def _overlap(self) -> tuple[Tensor, Tensor, Tensor]:
        grad = torch.is_grad_enabled()
        found = self._overlaps.get(True) or (None if grad else self._overlaps.get(False))
        if found is None:
            iw = interval_overlap(self.x1, self.x2, self.gx1, self.gx2)
            ih = interval_overlap(self.y1, self.y2, self.gy1, self.gy2)
            inter = iw * ih
            union, iou = union_and_iou(inter, self.w * self.h, self.gw * self.gh, self.eps)
            found = (inter, union, iou)
            self._overlaps[grad] = found
        return found


class _SaturatingUpcast(torch.autograd.Function):
    """``t.float()`` whose backward casts the gradient back to ``t``'s dtype saturating.

    A plain ``.float()`` casts the float32 gradient back with overflow to ``inf``: a ratio
    of two lengths that both vanish (a zero-height box's enclosing-box area, ``w / (h +
    eps)`` at a point box) has a slope of order ``1 / eps = 1e7`` that float32 holds and
    float16 (largest finite 65504) does not.
    """

    @staticmethod
    def forward(ctx: Any, t: Tensor) -> Tensor:
        ctx.dtype = t.dtype
        return t.float()

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        limit = torch.finfo(ctx.dtype).max
        return grad.clamp(-limit, limit).to(ctx.dtype)


def upcast(t: Tensor) -> Tensor:
    """Float16/bfloat16/integer -> float32; float32/float64 unchanged (torchvision's rule).

    The gradient flowing back into a float16/bfloat16 input is computed in float32 and cast
    back saturating: a component beyond the dtype's range (float16: ``|g| > 65504``)
    becomes the largest finite value of that sign, not ``inf``.
    """
    if t.dtype in (torch.float32, torch.float64):
        return t
    if t.requires_grad and t.dtype in (torch.float16, torch.bfloat16):
        out: Tensor = _SaturatingUpcast.apply(t)
        return out
    return t.float()


def box_geometry(pred: Tensor, target: Tensor, eps: float) -> Geometry:
    """Intersection, union, IoU and enclosing box of matched ``xyxy`` pairs.

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes, ``xyxy``.
        target: ``Tensor[..., 4]`` target boxes, ``xyxy``, same shape.
        eps: lower bound of the union in the IoU's denominator.

    Returns:
        A :class:`Geometry` of ``Tensor[...]`` attributes.
    """
    return Geometry(pred, target, eps)


def safe_pow(x: Tensor, a: float, eps: float) -> Tensor:
    """``x ** a`` for ``x >= 0`` with a finite value and gradient everywhere.

    ``a == 1`` returns ``x`` untouched (so ``alpha = 1`` reproduces the classic losses
    bit for bit); negative rounding noise is clamped to 0 before non-integer powers. For
    ``0 < a < 1`` the slope of ``x ** a`` is infinite at 0, so below ``eps`` the curve is
    replaced by the chord
    ``x * eps ** (a - 1)`` (continuous at ``eps``, exactly 0 at 0, bounded slope).
    """
    a = float(a)
    if a == 1.0:
        return x
    if a > 1.0 and a.is_integer():
        # integer powers of tiny negative rounding noise stay tiny (no NaN), and ATen's
        # integer-exponent kernels are ~4x faster than the generic float one
        return x.pow(int(a))
    x = x.clamp(min=0)
    if a > 1.0:
        return x.pow(a)
    return torch.where(x > eps, x.clamp(min=eps).pow(a), x * eps ** (a - 1.0))


def inner_iou(g: Geometry, ratio: float, eps: float) -> Tensor:
    """IoU of the auxiliary boxes of Inner-IoU: both boxes scaled by ``ratio`` about their centres.

    ``inter`` is the overlap of the scaled boxes and the union ``ratio^2 (w h + wgt hgt) -
    inter``; ``ratio = 1`` gives the plain IoU (up to rounding).

    Reference: Zhang, Xu and Zhang, Inner-IoU: More Effective Intersection over Union Loss
    with Auxiliary Bounding Box, 2023, https://arxiv.org/abs/2311.02877.
    """
    half = ratio / 2
    cx, cy = (g.x1 + g.x2) / 2, (g.y1 + g.y2) / 2
    gcx, gcy = (g.gx1 + g.gx2) / 2, (g.gy1 + g.gy2) / 2
    x1, x2, y1, y2 = cx - half * g.w, cx + half * g.w, cy - half * g.h, cy + half * g.h
    gx1, gx2 = gcx - half * g.gw, gcx + half * g.gw
    gy1, gy2 = gcy - half * g.gh, gcy + half * g.gh
    # the auxiliary boxes' areas from their own corners, as the intersection's: identical
    # boxes then give exactly 1 (ratio^2 w h would differ from it by rounding)
    aux = torch.stack((x1, y1, x2, y2), dim=-1)
    target_aux = torch.stack((gx1, gy1, gx2, gy2), dim=-1)
    return elementwise_box_overlap(aux, target_aux, eps)[2]
