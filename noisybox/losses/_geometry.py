"""Private pairwise box geometry shared by every IoU-based loss.

One place computes intersection, union, IoU and the smallest enclosing box of matched
box pairs, so that the variants only add their penalty terms.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

__all__: list[str] = []

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


class Geometry(NamedTuple):
    """Element-wise geometry of matched pairs, every field ``Tensor[...]``.

    ``x1 .. y2`` and ``w, h`` belong to the prediction, ``gx1 .. gy2`` and ``gw, gh`` to the
    target; ``cw, ch`` are the width and height of the smallest enclosing box.
    """

    x1: Tensor
    y1: Tensor
    x2: Tensor
    y2: Tensor
    gx1: Tensor
    gy1: Tensor
    gx2: Tensor
    gy2: Tensor
    w: Tensor
    h: Tensor
    gw: Tensor
    gh: Tensor
    inter: Tensor
    union: Tensor
    iou: Tensor
    cw: Tensor
    ch: Tensor


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


def to_xyxy(boxes: Tensor, box_format: str) -> Tensor:
    """Convert ``Tensor[..., 4]`` boxes from ``box_format`` to ``xyxy``."""
    if box_format == "xyxy":
        return boxes
    a, b, c, d = boxes.unbind(-1)
    if box_format == "xywh":
        return torch.stack((a, b, a + c, b + d), dim=-1)
    if box_format == "cxcywh":
        half_w, half_h = c / 2, d / 2
        return torch.stack((a - half_w, b - half_h, a + half_w, b + half_h), dim=-1)
    raise ValueError(f"Expected box_format to be one of {BOX_FORMATS} but got {box_format!r}")


def box_geometry(pred: Tensor, target: Tensor, eps: float) -> Geometry:
    """Intersection, union, IoU and enclosing box of matched ``xyxy`` pairs.

    Args:
        pred: ``Tensor[..., 4]`` predicted boxes, ``xyxy``.
        target: ``Tensor[..., 4]`` target boxes, ``xyxy``, same shape.
        eps: lower bound of the union in the IoU's denominator.

    Returns:
        A :class:`Geometry` of ``Tensor[...]`` fields.
    """
    x1, y1, x2, y2 = pred.unbind(-1)
    gx1, gy1, gx2, gy2 = target.unbind(-1)
    w = x2 - x1
    h = y2 - y1
    gw = gx2 - gx1
    gh = gy2 - gy1
    # clamp instead of torchvision's boolean-mask scatter: same values, fewer kernels
    iw = (torch.minimum(x2, gx2) - torch.maximum(x1, gx1)).clamp(min=0)
    ih = (torch.minimum(y2, gy2) - torch.maximum(y1, gy1)).clamp(min=0)
    inter = iw * ih
    union = w * h + gw * gh - inter
    # max(union, eps) rather than union + eps: identical boxes give IoU == 1 exactly, even
    # tiny ones; for union >> eps both agree with torchvision to ~eps / union
    iou = inter / union.clamp(min=eps)
    cw = torch.maximum(x2, gx2) - torch.minimum(x1, gx1)
    ch = torch.maximum(y2, gy2) - torch.minimum(y1, gy1)
    return Geometry(x1, y1, x2, y2, gx1, gy1, gx2, gy2, w, h, gw, gh, inter, union, iou, cw, ch)


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
