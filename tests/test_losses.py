"""Tests of noisybox.losses against torchvision, hand-computed values and the paper's laws."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from torchvision.ops import (
    box_convert,
    box_iou,
    complete_box_iou_loss,
    distance_box_iou_loss,
    generalized_box_iou_loss,
)

from noisybox.losses import (
    AlphaIoULoss,
    alpha_iou_loss,
    get_loss,
    list_losses,
    list_variants,
    plot_alpha_iou_curves,
    plot_loss_curves,
    register_loss,
)

VARIANTS = ["iou", "giou", "diou", "ciou", "eiou", "siou"]
TORCHVISION = {
    "giou": generalized_box_iou_loss,
    "diou": distance_box_iou_loss,
    "ciou": complete_box_iou_loss,
}
FORMATS = ["xyxy", "xywh", "cxcywh"]


def random_boxes(n: int, seed: int, *, disjoint: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float64 xyxy pairs; overlapping (most pairs) or all disjoint."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 100
    wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 40 + 1
    target = torch.cat([xy, xy + wh], dim=1)
    if disjoint:
        shift = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 50
        shift[:, 0] += 81  # x gap > any width (<= 41 + 40)
        pred_xy = xy + shift
    else:
        pred_xy = xy + (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5) * wh
    pred_wh = wh * (0.5 + torch.rand(n, 2, generator=gen, dtype=torch.float64))
    return torch.cat([pred_xy, pred_xy + pred_wh], dim=1), target


def diag_iou(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Reference IoU of matched pairs from torchvision's pairwise ``box_iou``."""
    return box_iou(pred, target).diagonal()


# ---------------------------------------------------------------- golden values


E = math.exp
# (pred xyxy, target xyxy, variant, alpha, expected), each derived by hand in the comment
GOLDEN = [
    # identical boxes: every variant is exactly 0
    *[([1, 2, 5, 7], [1, 2, 5, 7], v, a, 0.0) for v in VARIANTS for a in (0.0, 0.5, 1.0, 3.0)],
    # disjoint, C = 3 x 1, union 2: IoU 0, GIoU penalty 1/3
    ([0, 0, 1, 1], [2, 0, 3, 1], "iou", 3.0, 1.0),
    ([0, 0, 1, 1], [2, 0, 3, 1], "giou", 1.0, 1 + 1 / 3),
    ([0, 0, 1, 1], [2, 0, 3, 1], "giou", 3.0, 1 + 1 / 27),
    # centres 2 apart, c^2 = 9 + 1: rho^2 / c^2 = 4 / 10
    ([0, 0, 1, 1], [2, 0, 3, 1], "diou", 2.0, 1 + 0.4**2),
    # nested 2x2 in 4x4: IoU 1/4, no GIoU/DIoU penalty, same aspect -> v = 0
    *[([0, 0, 4, 4], [1, 1, 3, 3], v, 2.0, 1 - 1 / 16) for v in ("iou", "giou", "diou", "ciou")],
    # EIoU nested: (w - wgt)^2 / cw^2 = 4 / 16 in x and y
    ([0, 0, 4, 4], [1, 1, 3, 3], "eiou", 2.0, 1 - 1 / 16 + 2 * 0.25**2),
    # SIoU nested: no distance cost, omega_w = omega_h = 1/2 -> P = (1 - e^-0.5)^4
    ([0, 0, 4, 4], [1, 1, 3, 3], "siou", 2.0, 1 - 1 / 16 + (1 - E(-0.5)) ** 8),
    # 2x2 vs 4x2 sharing a corner: IoU 1/2, rho^2 = 1, c^2 = 20, width term 4/16
    ([0, 0, 2, 2], [0, 0, 4, 2], "eiou", 1.0, 0.5 + 1 / 20 + 0.25),
    ([0, 0, 2, 2], [0, 0, 4, 2], "eiou", 3.0, 1 - 0.125 + (1 / 20) ** 3 + 0.25**3),
    # CIoU, 2x2 vs 4x2: v = 4/pi^2 (atan 2 - atan 1)^2, beta = v / (1/2 + v)
    (
        [0, 0, 2, 2],
        [0, 0, 4, 2],
        "ciou",
        1.0,
        0.5
        + 1 / 20
        + (4 / math.pi**2 * (math.atan(2) - math.pi / 4) ** 2) ** 2
        / (0.5 + 4 / math.pi**2 * (math.atan(2) - math.pi / 4) ** 2),
    ),
    # SIoU: centre line along x (angle cost 0, gamma 2), cw = 4, ch = 2, dx = 1,
    # omega_w = 2/4 -> P = (1 - e^(-2/16) + (1 - e^-0.5)^4) / 2
    ([0, 0, 2, 2], [0, 0, 4, 2], "siou", 1.0, 0.5 + (1 - E(-1 / 8) + (1 - E(-0.5)) ** 4) / 2),
    # SIoU: centres on the diagonal (angle cost 1, gamma 1), cw = ch = 3, IoU 1/7
    ([-1, -1, 1, 1], [0, 0, 2, 2], "siou", 1.0, 1 - 1 / 7 + 1 - E(-1 / 9)),
    # SIoU: touching along x, gamma 2, cw = 4: P = (1 - e^(-2 * (2/4)^2)) / 2
    ([-1, -1, 1, 1], [1, -1, 3, 1], "siou", 1.0, 1 + (1 - E(-0.5)) / 2),
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("box_format", FORMATS)
def test_golden_values(dtype: torch.dtype, box_format: str) -> None:
    pred = torch.tensor([g[0] for g in GOLDEN], dtype=dtype)
    target = torch.tensor([g[1] for g in GOLDEN], dtype=dtype)
    pred_f = box_convert(pred, "xyxy", box_format)
    target_f = box_convert(target, "xyxy", box_format)
    # eps shifts these unit-sized cases by ~1e-8; make it negligible in float64
    eps, tol = (1e-7, 1e-5) if dtype == torch.float32 else (1e-13, 1e-9)
    for i, (_, _, variant, alpha, expected) in enumerate(GOLDEN):
        got = alpha_iou_loss(
            pred_f[i : i + 1],
            target_f[i : i + 1],
            variant=variant,
            alpha=alpha,
            box_format=box_format,
            eps=eps,
        )
        assert got.dtype == dtype
        assert got.item() == pytest.approx(expected, abs=tol), (i, variant, alpha)


# ---------------------------------------------------------------- torchvision references


@pytest.mark.parametrize("variant", ["giou", "diou", "ciou"])
@pytest.mark.parametrize("disjoint", [False, True])
def test_alpha_one_equals_torchvision(variant: str, disjoint: bool) -> None:
    pred, target = random_boxes(500, seed=1 + disjoint, disjoint=disjoint)
    if disjoint:
        assert (diag_iou(pred, target) == 0).all()
    else:
        assert (diag_iou(pred, target) > 0).float().mean() > 0.9
    pred.requires_grad_(True)
    reference = TORCHVISION[variant](pred, target)
    ours = alpha_iou_loss(pred, target, variant=variant, alpha=1.0)
    torch.testing.assert_close(ours, reference, atol=1e-6, rtol=0)
    (grad_ref,) = torch.autograd.grad(reference.sum(), pred)
    (grad,) = torch.autograd.grad(ours.sum(), pred)
    torch.testing.assert_close(grad, grad_ref, atol=1e-6, rtol=0)
    for reduction in ("mean", "sum"):
        torch.testing.assert_close(
            alpha_iou_loss(pred, target, variant=variant, alpha=1.0, reduction=reduction),
            TORCHVISION[variant](pred, target, reduction=reduction),
            atol=1e-6 * (500 if reduction == "sum" else 1),
            rtol=0,
        )


def test_alpha_three_powers_torchvision_terms() -> None:
    """Eq. 4 at alpha = 3 rebuilt from torchvision's alpha = 1 losses term by term."""
    pred, target = random_boxes(300, seed=3)
    iou = diag_iou(pred, target)
    giou_pen = generalized_box_iou_loss(pred, target) - (1 - iou)
    diou_pen = distance_box_iou_loss(pred, target) - (1 - iou)
    ciou_pen = complete_box_iou_loss(pred, target) - distance_box_iou_loss(pred, target)
    expected = {
        "iou": 1 - iou**3,
        "giou": 1 - iou**3 + giou_pen**3,
        "diou": 1 - iou**3 + diou_pen**3,
        "ciou": 1 - iou**3 + diou_pen**3 + ciou_pen**3,
    }
    for variant, reference in expected.items():
        got = alpha_iou_loss(pred, target, variant=variant, alpha=3.0)
        torch.testing.assert_close(got, reference, atol=1e-6, rtol=0)
    # separate penalty power (eq. 3): alpha_1 = 3, alpha_2 = 1
    got = alpha_iou_loss(pred, target, variant="giou", alpha=3.0, alpha_penalty=1.0)
    torch.testing.assert_close(got, 1 - iou**3 + giou_pen, atol=1e-6, rtol=0)


def test_alpha_two_and_the_log_limit() -> None:
    pred, target = random_boxes(300, seed=4)
    iou = diag_iou(pred, target)
    positive = iou > 1e-3
    torch.testing.assert_close(
        alpha_iou_loss(pred, target, alpha=2.0), 1 - iou**2, atol=1e-9, rtol=0
    )
    log_iou = -torch.log(iou[positive])
    ours_log = alpha_iou_loss(pred, target, alpha=0.0)[positive]
    torch.testing.assert_close(ours_log, log_iou, atol=1e-9, rtol=0)
    torch.testing.assert_close(get_loss("log-iou")(pred, target)[positive], log_iou)
    # eq. 1: the Box-Cox form (1 - IoU^a) / a -> -log(IoU) as a -> 0
    errors = [
        (alpha_iou_loss(pred, target, alpha=a, box_cox=True)[positive] - log_iou).abs().max()
        for a in (1e-1, 1e-2, 1e-4)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 1e-2
    box_cox = alpha_iou_loss(pred, target, alpha=3.0, box_cox=True)
    torch.testing.assert_close(box_cox, (1 - iou**3) / 3, atol=1e-9, rtol=0)


@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
def test_box_formats_match_xyxy(box_format: str) -> None:
    pred, target = random_boxes(100, seed=5)
    for variant in VARIANTS:
        expected = alpha_iou_loss(pred, target, variant=variant)
        got = alpha_iou_loss(
            box_convert(pred, "xyxy", box_format),
            box_convert(target, "xyxy", box_format),
            variant=variant,
            box_format=box_format,
        )
        torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)


# ---------------------------------------------------------------- the paper's properties


coordinate = st.floats(0, 100, allow_nan=False, width=64)
extent = st.floats(0, 50, allow_nan=False, width=64)
box = st.tuples(coordinate, coordinate, extent, extent)
# a target whose area is far above eps, so that max(union, eps) is the exact union
sized_box = st.tuples(coordinate, coordinate, st.floats(1e-2, 50), st.floats(1e-2, 50))


def xyxy(b: tuple[float, float, float, float]) -> list[float]:
    return [b[0], b[1], b[0] + b[2], b[1] + b[3]]


@settings(max_examples=60, deadline=None)
@given(p=box, t=box, alpha=st.floats(0, 5), alpha_penalty=st.floats(0.1, 5))
def test_nonnegative_and_zero_on_identical(
    p: tuple[float, ...], t: tuple[float, ...], alpha: float, alpha_penalty: float
) -> None:
    pred = torch.tensor([xyxy(p), xyxy(t)], dtype=torch.float64)  # type: ignore[arg-type]
    target = torch.tensor([xyxy(t), xyxy(t)], dtype=torch.float64)  # type: ignore[arg-type]
    for variant in VARIANTS:
        for a_pen in (None, alpha_penalty):
            loss = alpha_iou_loss(pred, target, variant=variant, alpha=alpha, alpha_penalty=a_pen)
            assert torch.isfinite(loss).all()
            assert loss[0] >= -1e-12, (variant, loss)
            if t[2] > 1e-3 and t[3] > 1e-3:  # a box with area: identity of indiscernibles
                assert abs(loss[1].item()) <= 1e-12, (variant, loss)


@settings(max_examples=60, deadline=None)
@given(p1=box, p2=box, t=sized_box, alpha=st.floats(0.05, 5))
def test_property1_order_preserving(
    p1: tuple[float, ...], p2: tuple[float, ...], t: tuple[float, ...], alpha: float
) -> None:
    pred = torch.tensor([xyxy(p1), xyxy(p2)], dtype=torch.float64)  # type: ignore[arg-type]
    target = torch.tensor([xyxy(t)] * 2, dtype=torch.float64)  # type: ignore[arg-type]
    iou = diag_iou(pred, target).nan_to_num(0.0)
    loss = alpha_iou_loss(pred, target, alpha=alpha)
    loss_1 = alpha_iou_loss(pred, target, alpha=1.0)
    # strict where IoU^alpha still resolves the gap in float64, never inverted anywhere
    for lo, hi in ((0, 1), (1, 0)):
        if iou[lo] < iou[hi] - 1e-6:
            assert loss_1[lo] > loss_1[hi]
            assert loss[lo] >= loss[hi]
            if iou[hi] ** alpha - iou[lo] ** alpha > 1e-12:
                assert loss[lo] > loss[hi]


def shifted_pairs(ious: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Unit boxes shifted along x by ``d`` so that IoU = (1 - d) / (1 + d) equals ``ious``."""
    shift = ((1 - ious) / (1 + ious)).requires_grad_(True)
    zeros = torch.zeros_like(shift)
    pred = torch.stack([shift, zeros, shift + 1, zeros + 1], dim=1)
    target = torch.tensor([[0.0, 0.0, 1.0, 1.0]], dtype=ious.dtype).expand_as(pred)
    return pred, target, shift


@pytest.mark.parametrize("alpha", [0.5, 2.0, 3.0])
def test_property2_relative_loss_weight(alpha: float) -> None:
    ious = torch.tensor([0.05, 0.3, 0.5, 0.9, 1 - 1e-6], dtype=torch.float64)
    pred, target, _ = shifted_pairs(ious)
    torch.testing.assert_close(diag_iou(pred.detach(), target), ious)
    ratio = alpha_iou_loss(pred, target, alpha=alpha) / alpha_iou_loss(pred, target, alpha=1.0)
    expected = 1 + (ious - ious**alpha) / (1 - ious)  # w_Lr of Property 2
    torch.testing.assert_close(ratio.detach(), expected, atol=1e-6, rtol=0)
    assert ratio[-1].item() == pytest.approx(alpha, abs=1e-5)  # -> alpha as IoU -> 1
    ratio_0 = alpha_iou_loss(*random_boxes(10, seed=9, disjoint=True), alpha=alpha)
    assert torch.equal(ratio_0, torch.ones_like(ratio_0))  # w_Lr(IoU = 0) = 1


@pytest.mark.parametrize("alpha", [0.5, 2.0, 3.0])
def test_property3_relative_gradient_weight_by_autograd(alpha: float) -> None:
    ious = torch.tensor([0.05, 0.3, 0.5, 0.9, 0.999], dtype=torch.float64)
    grads = []
    for a in (alpha, 1.0):
        pred, target, shift = shifted_pairs(ious)
        (grad,) = torch.autograd.grad(alpha_iou_loss(pred, target, alpha=a).sum(), shift)
        grads.append(grad.abs())
    expected = alpha * ious ** (alpha - 1)  # w_grad_r of Property 3
    torch.testing.assert_close(grads[0] / grads[1], expected, atol=1e-6, rtol=1e-6)
    # the turning point IoU = alpha^(1 / (1 - alpha)) where w = 1, measured by autograd:
    # alpha > 1 down-weights the gradient of boxes below it and up-weights those above it
    turning = alpha ** (1 / (1 - alpha))
    near = torch.tensor(
        [0.9 * turning, turning, turning + 0.1 * (1 - turning)], dtype=torch.float64
    )
    measured = []
    for a in (alpha, 1.0):
        pred, target, shift = shifted_pairs(near)
        (grad,) = torch.autograd.grad(alpha_iou_loss(pred, target, alpha=a).sum(), shift)
        measured.append(grad.abs())
    w = measured[0] / measured[1]
    assert w[1].item() == pytest.approx(1.0, abs=1e-9)
    assert (w[0] < 1 < w[2]) if alpha > 1 else (w[0] > 1 > w[2])


@pytest.mark.parametrize("variant", ["iou", "giou", "diou", "eiou", "siou"])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 3.0])
def test_gradcheck(variant: str, alpha: float) -> None:
    pred, target = random_boxes(4, seed=11)
    far, far_target = random_boxes(2, seed=12, disjoint=True)
    pred = torch.cat([pred, far]).requires_grad_(True)
    target = torch.cat([target, far_target]).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p, t: alpha_iou_loss(p, t, variant=variant, alpha=alpha), (pred, target)
    )


def test_ciou_beta_is_constant_in_the_gradient() -> None:
    """CIoU is not gradcheck-able by design: beta is detached; check that explicitly."""
    pred, target = random_boxes(50, seed=13)
    pred.requires_grad_(True)
    loss = alpha_iou_loss(pred, target, variant="ciou", alpha=1.0)
    (grad,) = torch.autograd.grad(loss.sum(), pred)
    (grad_tv,) = torch.autograd.grad(complete_box_iou_loss(pred, target).sum(), pred)
    torch.testing.assert_close(grad, grad_tv, atol=1e-6, rtol=0)
    assert not torch.autograd.gradcheck(
        lambda p: alpha_iou_loss(p, target[:4], variant="ciou", alpha=1.0),
        (pred[:4].detach().requires_grad_(True),),
        raise_exception=False,
    )


# ---------------------------------------------------------------- numerical safety


DEGENERATE = {
    "identical": ([1, 2, 5, 7], [1, 2, 5, 7]),
    "disjoint far apart": ([0, 0, 1, 1], [9e4, 9e4, 9e4 + 3, 9e4 + 2]),
    "zero width": ([1, 1, 1, 5], [0, 0, 3, 3]),
    "zero height": ([1, 1, 5, 1], [0, 0, 3, 3]),
    "zero-size vs zero-size": ([1, 1, 1, 1], [1, 1, 1, 1]),
    "zero-size vs box": ([1, 1, 1, 1], [0, 0, 3, 3]),
    "same centre": ([0, 0, 4, 2], [1, -1, 3, 3]),
    "tiny 1e-3": ([0, 0, 1e-3, 1e-3], [5e-4, 2e-4, 1.5e-3, 1.1e-3]),
    "tiny identical": ([0, 0, 1e-3, 1e-3], [0, 0, 1e-3, 1e-3]),
    "huge 1e5": ([0, 0, 1e5, 1e5], [5e4, 1e4, 1.5e5, 1.2e5]),
    "huge identical": ([1e5, 1e5, 2e5, 2e5], [1e5, 1e5, 2e5, 2e5]),
    # issue 13 item 8: GIoU's enclosing-box ratio has a slope of 0.42 / eps = 4e6 here
    "zero height, same box": ([0.9053, 0.0054, 1.3281, 0.0054], [0.9053, 0.0054, 1.3281, 0.0054]),
    "zero height, wider target": ([0.9053, 0.0054, 1.3281, 0.0054], [0.0, 0.0054, 2.0, 0.0054]),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_finite_on_degenerate_boxes(dtype: torch.dtype) -> None:
    """Every registered loss: finite loss and gradients (pred and target) on degenerate pairs.

    In float16 the float32 gradient of a ratio of two vanishing lengths (order 1 / eps) does
    not fit; it must come back saturated, not as inf (issue 13, item 8).
    """
    # float16 cannot hold 1e5 (max 65504): those inputs would already be inf
    cases = {
        k: v
        for k, v in DEGENERATE.items()
        if dtype != torch.float16 or "huge" not in k and "far" not in k
    }
    pred = torch.tensor([p for p, _ in cases.values()], dtype=torch.float64).to(dtype)
    target = torch.tensor([t for _, t in cases.values()], dtype=torch.float64).to(dtype)
    for loss_name in list_losses():
        for alpha in (0.0, 0.5, 1.0, 3.0):
            p = pred.clone().requires_grad_(True)
            t = target.clone().requires_grad_(True)
            loss = get_loss(loss_name, alpha=alpha)(p, t)
            assert loss.dtype == torch.float32  # half precision is upcast inside
            loss.sum().backward()
            for name, value in (("loss", loss), ("pred grad", p.grad), ("target grad", t.grad)):
                assert value is not None
                finite = torch.isfinite(value).reshape(len(cases), -1).all(1)
                bad = [k for k, ok in zip(cases, finite, strict=True) if not ok]
                assert not bad, f"{loss_name} alpha={alpha} {dtype}: non-finite {name} for {bad}"
            if dtype == torch.float32:
                identical = [i for i, k in enumerate(cases) if "identical" in k]
                assert (loss[identical] == 0).all(), (loss_name, alpha, loss[identical])


def test_half_gradient_saturates_instead_of_overflowing() -> None:
    """The float16 case of issue 13: the float32 gradient is 0.4228 / eps, cast back saturated."""
    box = [[0.9053, 0.0054, 1.3281, 0.0054]]
    half = torch.tensor(box, dtype=torch.float16, requires_grad=True)
    alpha_iou_loss(half, half.detach(), variant="giou", alpha=1.0).sum().backward()
    single = half.detach().float().requires_grad_(True)
    alpha_iou_loss(single, half.detach().float(), variant="giou", alpha=1.0).sum().backward()
    assert half.grad is not None and single.grad is not None
    assert single.grad.abs().max() > 1e6  # beyond float16's range
    limit = torch.finfo(torch.float16).max
    torch.testing.assert_close(
        half.grad.float(), single.grad.clamp(-limit, limit), rtol=1e-3, atol=0
    )


def test_torchvision_ciou_is_nan_where_ours_is_finite() -> None:
    """torchvision divides w / h without eps: NaN loss for a point box, NaN grad at h = 0."""
    pred = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 5.0, 1.0]], requires_grad=True)
    target = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 3.0]])
    reference = complete_box_iou_loss(pred, target)
    reference.sum().backward()
    assert torch.isnan(reference[0])  # 0 / 0 inside atan
    assert pred.grad is not None and torch.isnan(pred.grad[1]).all()  # d(w/h)/dh = -inf
    pred.grad = None
    ours = alpha_iou_loss(pred, target, variant="ciou", alpha=1.0)
    ours.sum().backward()
    assert torch.isfinite(ours).all() and torch.isfinite(pred.grad).all()
    # where torchvision is finite (row 1) the losses agree
    assert ours[1].item() == pytest.approx(reference[1].item(), abs=1e-6)


def test_bf16_autocast_training_step() -> None:
    gen = torch.Generator().manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    features = torch.randn(64, 8, generator=gen)
    target = torch.tensor([[10.0, 10.0, 30.0, 40.0]]).expand(64, 4)
    for variant in VARIANTS:
        layer.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            raw = layer(features)
            assert raw.dtype == torch.bfloat16
            xy = raw[:, :2] * 10 + 10
            pred = torch.cat([xy, xy + raw[:, 2:].abs() * 20], dim=1)
            loss = get_loss(f"alpha-{variant}", reduction="mean")(pred, target)
        assert loss.dtype == torch.float32
        loss.backward()
        assert torch.isfinite(loss)
        assert layer.weight.grad is not None and torch.isfinite(layer.weight.grad).all()
        assert layer.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_empty_input_backpropagates(reduction: str) -> None:
    pred = torch.zeros(0, 4, requires_grad=True)
    loss = alpha_iou_loss(pred, torch.zeros(0, 4), variant="ciou", reduction=reduction)
    assert loss.shape == ((0,) if reduction == "none" else ())
    loss.sum().backward()
    assert pred.grad is not None and pred.grad.shape == (0, 4)
    if reduction != "none":
        assert loss.item() == 0.0


def test_leading_dimensions_and_weight() -> None:
    pred, target = random_boxes(12, seed=14)
    flat = alpha_iou_loss(pred, target, variant="diou")
    batched = alpha_iou_loss(pred.view(3, 4, 4), target.view(3, 4, 4), variant="diou")
    torch.testing.assert_close(batched, flat.view(3, 4))
    weight = torch.arange(12, dtype=torch.float64)
    weighted = alpha_iou_loss(pred, target, variant="diou", weight=weight, reduction="sum")
    torch.testing.assert_close(weighted, (flat * weight).sum())
    mean = alpha_iou_loss(pred, target, variant="diou", weight=weight, reduction="mean")
    torch.testing.assert_close(mean, (flat * weight).mean())


# ---------------------------------------------------------------- module and registry


def test_module_alpha_is_read_at_call_time() -> None:
    pred, target = random_boxes(20, seed=15)
    module = AlphaIoULoss("giou", alpha=1.0)
    torch.testing.assert_close(module(pred, target), generalized_box_iou_loss(pred, target))
    module.alpha = 3.0  # warm-up ramp: the penalty follows (alpha_penalty=None)
    torch.testing.assert_close(
        module(pred, target), alpha_iou_loss(pred, target, variant="giou", alpha=3.0)
    )
    module.alpha_penalty = 1.0
    torch.testing.assert_close(
        module(pred, target),
        alpha_iou_loss(pred, target, variant="giou", alpha=3.0, alpha_penalty=1.0),
    )
    assert "giou" in repr(module)


def test_registry() -> None:
    names = list_losses()
    for variant in VARIANTS:
        assert variant in names and f"alpha-{variant}" in names
        assert get_loss(variant).alpha == 1.0
        assert get_loss(f"alpha-{variant}").alpha == 3.0
    assert set(list_variants()) == set(VARIANTS)
    assert get_loss("log-iou").alpha == 0.0
    assert get_loss("alpha-ciou", alpha=2.0).alpha == 2.0
    assert get_loss("alpha-ciou", alpha=None).alpha == 3.0
    assert get_loss("diou", reduction="sum").reduction == "sum"
    with pytest.raises(ValueError, match=r"Expected a loss name in .*alpha-ciou.* but got 'nope'"):
        get_loss("nope")
    with pytest.raises(ValueError, match="already registered"):
        register_loss("giou")(lambda **kw: AlphaIoULoss("giou", **kw))
    # issue 18's zoo, each at its paper's alpha = 1
    zoo = ["focal-eiou", "wiou-v1", "wiou-v3", "mpdiou", "shape-iou", "piou", "piou-v2", "nwd"]
    for name in [*zoo, *(f"inner-{v}" for v in [*VARIANTS, "mpdiou", "shape-iou", "piou"])]:
        assert name in names and get_loss(name).alpha == 1.0, name
    assert get_loss("inner-ciou").inner_ratio == 0.7
    assert get_loss("wiou-v3", alpha=2.0).alpha == 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"variant": "wiou"}, "Expected variant to be one of"),
        ({"reduction": "avg"}, "Expected reduction"),
        ({"box_format": "yxyx"}, "Expected box_format"),
        ({"alpha": -1.0}, "Expected alpha >= 0"),
        ({"alpha": float("nan")}, "Expected alpha >= 0"),
        ({"alpha_penalty": 0.0}, "Expected alpha_penalty > 0"),
    ],
)
def test_bad_arguments(kwargs: dict, message: str) -> None:
    boxes = torch.zeros(2, 4)
    with pytest.raises(ValueError, match=message):
        alpha_iou_loss(boxes, boxes, **kwargs)


def test_bad_shapes() -> None:
    with pytest.raises(
        ValueError,
        match=r"Expected pred and target of the same shape \[..., 4\] but got \[2, 4\] and \[3, 4\]",
    ):
        alpha_iou_loss(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="same shape"):
        alpha_iou_loss(torch.zeros(2, 5), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="Expected variant"):
        AlphaIoULoss("wiou")


# ---------------------------------------------------------------- plot and CLI


def test_import_does_not_load_matplotlib() -> None:
    code = "import sys, noisybox.losses; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_figure_one() -> None:
    fig = plot_alpha_iou_curves((0.5, 1.0, 3.0), num_points=50)
    ax_loss, ax_grad = fig.axes
    assert len(ax_loss.lines) == len(ax_grad.lines) == 3
    iou, grad = ax_grad.lines[2].get_data()
    assert grad[-1] == pytest.approx(3.0)  # |dL/dIoU| at IoU = 1 is alpha
    assert ax_loss.lines[1].get_data()[1][0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="Expected every alpha >= 0"):
        plot_alpha_iou_curves((-1.0,))


def test_cli_plot_loss(tmp_path) -> None:
    from noisybox.cli import main

    out = tmp_path / "fig1.png"
    result = CliRunner().invoke(
        main, ["plot-loss", "-o", str(out), "--alpha", "0.5", "--alpha", "2"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["fig1.png"]  # no temporary left behind
    result = CliRunner().invoke(main, ["plot-loss", "-o", str(tmp_path / "fig.xyz")])
    assert result.exit_code == 1 and "Expected a supported image format" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["plot-loss", "-o", str(out), "--alpha", "-1"])
    assert result.exit_code == 2
    # any registered loss, once per alpha
    zoo = tmp_path / "zoo.png"
    args = ["plot-loss", "-o", str(zoo), "--loss", "wiou-v3", "--loss", "nwd", "--alpha", "1"]
    result = CliRunner().invoke(main, [*args, "--alpha", "3"])
    assert result.exit_code == 0, result.output
    assert zoo.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = CliRunner().invoke(main, ["plot-loss", "-o", str(zoo), "--loss", "wiou"])
    assert result.exit_code == 2 and "Expected a loss in" in result.output
    result = CliRunner().invoke(main, ["plot-loss", "-o", str(zoo), "--loss", "nwd", "--box-cox"])
    assert result.exit_code == 2 and "--box-cox without --loss" in result.output


def test_plot_any_registered_loss() -> None:
    fig = plot_loss_curves(["iou", "mpdiou"], alphas=[1.0, 3.0], num_points=41)
    ax_loss, ax_grad = fig.axes
    labels = [line.get_label() for line in ax_loss.lines]
    assert labels == ["iou, alpha = 1", "iou, alpha = 3", "mpdiou, alpha = 1", "mpdiou, alpha = 3"]
    iou, loss = ax_loss.lines[1].get_data()
    assert loss == pytest.approx(1 - iou**3, abs=1e-6)  # the plain IoU loss is Figure 1's
    _, grad = ax_grad.lines[1].get_data()
    assert grad == pytest.approx(3 * iou**2, abs=1e-6)
    # MPDIoU adds its corner penalty along the path: above the IoU loss where boxes differ
    _, loss_mpd = ax_loss.lines[2].get_data()
    _, loss_iou = ax_loss.lines[0].get_data()
    assert (loss_mpd[:-1] > loss_iou[:-1]).all() and loss_mpd[-1] == pytest.approx(0, abs=1e-6)
    with pytest.raises(ValueError, match="Expected at least one loss"):
        plot_loss_curves([])


def test_cli_list_losses() -> None:
    from noisybox.cli import main

    result = CliRunner().invoke(main, ["list-losses"])
    assert result.exit_code == 0
    rows = [line.split("\t") for line in result.output.splitlines()]
    assert [row[0] for row in rows] == list_losses()
    assert all(len(row) == 4 for row in rows)
    wiou = next(row for row in rows if row[0] == "wiou-v3")
    assert wiou[1] == "wise-iou" and "focus_alpha=1.9" in wiou[2] and "2301.10051" in wiou[3]
    result = CliRunner().invoke(main, ["list-losses", "--json"])
    table = json.loads(result.output)
    assert table["alpha-ciou"]["parameters"] == {
        "variant": "ciou",
        "alpha": 3.0,
        "alpha_penalty": None,
        "box_cox": False,
        "inner_ratio": None,
    }
    assert table["alpha-ciou"]["family"] == "alpha-iou"
    assert "1911.08287" in table["alpha-ciou"]["reference"]  # CIoU's paper
    assert "2110.13675" in table["alpha-ciou"]["reference"]  # and the power's
    assert table["mpdiou"]["parameters"]["image_size"] is None
    assert set(table) == set(list_losses())
