"""The IoU-loss zoo (issue 18): golden values worked out by hand from each paper's equations,
the papers' identities checked against torchvision, and the properties every loss shares."""

from __future__ import annotations

import math

import pytest
import torch
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
    WiseIoULoss,
    alpha_iou_loss,
    describe_loss,
    focal_eiou_loss,
    get_loss,
    list_losses,
    mpdiou_loss,
    nwd_loss,
    powerful_iou_loss,
    shape_iou_loss,
    wise_iou_loss,
)
from noisybox.study.loading import load_config

E, SQRT = math.exp, math.sqrt
ZOO = [
    "focal-eiou",
    "wiou-v1",
    "wiou-v3",
    "mpdiou",
    "shape-iou",
    "piou",
    "piou-v2",
    "nwd",
    "inner-iou",
    "inner-giou",
    "inner-diou",
    "inner-ciou",
    "inner-eiou",
    "inner-siou",
    "inner-mpdiou",
    "inner-shape-iou",
    "inner-piou",
]
FORMATS = ["xyxy", "xywh", "cxcywh"]


def u(x: float) -> float:
    """PIoU v2's attention ``u(x) = 3 x exp(-x^2)``."""
    return 3 * x * E(-(x**2))


def random_boxes(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` float64 xyxy pairs, most of them overlapping, a few far apart."""
    gen = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 100
    wh = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 40 + 1
    pred_xy = xy + (torch.rand(n, 2, generator=gen, dtype=torch.float64) - 0.5) * 1.5 * wh
    pred_wh = wh * (0.5 + torch.rand(n, 2, generator=gen, dtype=torch.float64))
    pred = torch.cat([pred_xy, pred_xy + pred_wh], dim=1)
    return pred, torch.cat([xy, xy + wh], dim=1)


def centre_rho2_c2(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Squared centre distance and squared enclosing diagonal, written out here."""
    rho2 = ((pred[:, :2] + pred[:, 2:]) / 2 - (target[:, :2] + target[:, 2:]) / 2).pow(2).sum(1)
    wh = torch.maximum(pred[:, 2:], target[:, 2:]) - torch.minimum(pred[:, :2], target[:, :2])
    return rho2, wh.pow(2).sum(1)


# ---------------------------------------------------------------- golden values

IDENTICAL = ([1, 2, 5, 7], [1, 2, 5, 7])
# IoU 4/16 = 1/4, the same centre; the enclosing box is the 4 x 4 prediction (c^2 = 32)
NESTED = ([0, 0, 4, 4], [1, 1, 3, 3])
# IoU 0; centres (0.5, 0.5) and (2.5, 0.5): rho^2 = 4; enclosing 3 x 1 (c^2 = 10)
DISJOINT = ([0, 0, 1, 1], [2, 0, 3, 1])
# IoU 0, one common edge x = 1; centres 2 apart: rho^2 = 4; enclosing 4 x 2 (c^2 = 20)
TOUCHING = ([-1, -1, 1, 1], [1, -1, 3, 1])
# 8 x 1 against 4 x 2 from the same corner: intersection 4 x 1, union 8 + 8 - 4 = 12, IoU 1/3;
# centres (4, 0.5) and (2, 1): rho^2 = 4 + 0.25 = 4.25; enclosing 8 x 2 (c^2 = 68)
ELONGATED = ([0, 0, 8, 1], [0, 0, 4, 2])

GOLDEN = [
    # identical boxes: every loss of the zoo is exactly 0
    *[(name, {}, IDENTICAL, 0.0) for name in ZOO],
    # Focal-EIoU = IoU^gamma (1 - IoU + rho^2/c^2 + (w - wgt)^2/cw^2 + (h - hgt)^2/ch^2), gamma 0.5
    ("focal-eiou", {}, NESTED, 0.25**0.5 * (1 - 0.25 + 0 / 32 + 2**2 / 4**2 + 2**2 / 4**2)),
    ("focal-eiou", {"gamma": 2.0}, NESTED, 0.25**2 * (0.75 + 0.25 + 0.25)),
    ("focal-eiou", {}, DISJOINT, 0.0),  # IoU^gamma = 0: disjoint boxes carry no loss
    (
        "focal-eiou",
        {},
        ELONGATED,
        (1 / 3) ** 0.5 * (1 - 1 / 3 + 4.25 / 68 + 4**2 / 8**2 + 1 / 2**2),
    ),
    # alpha = 3 powers the EIoU factor (eq. 3), not the focal weight
    (
        "focal-eiou",
        {"alpha": 3.0},
        ELONGATED,
        (1 / 3) ** 0.5 * (1 - (1 / 3) ** 3 + (4.25 / 68) ** 3 + (16 / 64) ** 3 + (1 / 4) ** 3),
    ),
    # Wise-IoU v1 = exp(rho^2 / c^2) (1 - IoU)
    ("wiou-v1", {}, NESTED, E(0 / 32) * 0.75),
    ("wiou-v1", {}, DISJOINT, E(4 / 10) * 1),
    ("wiou-v1", {}, TOUCHING, E(4 / 20) * 1),
    ("wiou-v1", {}, ELONGATED, E(4.25 / 68) * (1 - 1 / 3)),
    ("wiou-v1", {"alpha": 3.0}, ELONGATED, E(4.25 / 68) * (1 - (1 / 3) ** 3)),
    # MPDIoU = 1 - IoU + d1^2 / (W^2 + H^2) + d2^2 / (W^2 + H^2), corners top-left / bottom-right
    ("mpdiou", {"image_size": 10.0}, NESTED, 0.75 + (1 + 1) / 200 + (1 + 1) / 200),
    ("mpdiou", {"image_size": 10.0}, DISJOINT, 1 + 2**2 / 200 + 2**2 / 200),
    ("mpdiou", {"image_size": 10.0}, TOUCHING, 1 + 2**2 / 200 + 2**2 / 200),
    ("mpdiou", {"image_size": (16, 8)}, ELONGATED, 2 / 3 + 0 / 320 + (4**2 + 1**2) / 320),
    ("mpdiou", {"image_size": (16, 8), "alpha": 3.0}, ELONGATED, 1 - 1 / 27 + (17 / 320) ** 3),
    ("mpdiou", {}, NESTED, 0.75 + (2 + 2) / 32),  # no image size: the enclosing diagonal
    # Shape-IoU = 1 - IoU + hh dx^2/c^2 + ww dy^2/c^2 + 0.5 sum_t (1 - exp(-omega_t))^4,
    # scale 0: ww = hh = 1, omega_w = |w - wgt| / max(w, wgt)
    ("shape-iou", {}, NESTED, 0.75 + 0 + 0.5 * 2 * (1 - E(-2 / 4)) ** 4),
    ("shape-iou", {}, TOUCHING, 1 + 4 / 20 + 0),  # equal sizes: no shape cost
    (
        "shape-iou",
        {},
        ELONGATED,
        2 / 3 + 4.25 / 68 + 0.5 * ((1 - E(-4 / 8)) ** 4 + (1 - E(-1 / 2)) ** 4),
    ),
    # scale 1: ww = 2*4/(4+2) = 4/3, hh = 2*2/(4+2) = 2/3; dx^2 = 4, dy^2 = 1/4;
    # omega_w = hh * 4/8 = 1/3, omega_h = ww * 1/2 = 2/3
    (
        "shape-iou",
        {"scale": 1.0},
        ELONGATED,
        2 / 3
        + (2 / 3 * 4 + 4 / 3 * 0.25) / 68
        + 0.5 * ((1 - E(-1 / 3)) ** 4 + (1 - E(-2 / 3)) ** 4),
    ),
    # PIoU = 1 - IoU + 1 - exp(-P^2), P = ((|dx1| + |dx2|) / wgt + (|dy1| + |dy2|) / hgt) / 4
    ("piou", {}, NESTED, 0.75 + 1 - E(-((((1 + 1) / 2 + (1 + 1) / 2) / 4) ** 2))),  # P = 1/2
    ("piou", {}, DISJOINT, 1 + 1 - E(-((((2 + 2) / 1 + 0) / 4) ** 2))),  # P = 1
    ("piou", {}, TOUCHING, 1 + 1 - E(-((((2 + 2) / 2 + 0) / 4) ** 2))),  # P = 1/2
    ("piou", {}, ELONGATED, 2 / 3 + 1 - E(-((((0 + 4) / 4 + (0 + 1) / 2) / 4) ** 2))),  # P = 3/8
    # PIoU v2 = u(lambda q) L_PIoU, q = exp(-P), lambda = 1.3
    ("piou-v2", {}, NESTED, u(1.3 * E(-0.5)) * (1.75 - E(-0.25))),
    ("piou-v2", {}, DISJOINT, u(1.3 * E(-1.0)) * (2 - E(-1.0))),
    ("piou-v2", {"focus_lambda": 0.5}, ELONGATED, u(0.5 * E(-3 / 8)) * (5 / 3 - E(-9 / 64))),
    # Inner-IoU: both boxes scaled by the ratio about their centres. ELONGATED at 0.5:
    # [2, 6] x [0.25, 0.75] and [1, 3] x [0.5, 1.5]: intersection 1 x 0.25, union
    # 0.25 (8 + 8) - 0.25 = 3.75; L_Inner-X = L_X + IoU - IoU_inner
    ("inner-iou", {"inner_ratio": 0.5}, ELONGATED, 1 - 0.25 / 3.75),
    ("inner-giou", {"inner_ratio": 0.5}, ELONGATED, (1 - 1 / 3 + (16 - 12) / 16) + 1 / 3 - 1 / 15),
    ("inner-diou", {"inner_ratio": 0.5}, ELONGATED, 1 - 1 / 15 + 4.25 / 68),
    ("inner-mpdiou", {"inner_ratio": 0.5, "image_size": (16, 8)}, ELONGATED, 1 - 1 / 15 + 17 / 320),
    # DISJOINT at 2.5: x [-0.75, 1.75] and [1.25, 3.75], y both [-0.75, 1.75]: intersection
    # 0.5 x 2.5, union 2 (2.5 x 2.5) - 1.25 = 11.25: a larger box sees disjoint pairs
    ("inner-iou", {"inner_ratio": 2.5}, DISJOINT, 1 - 1.25 / 11.25),
    ("inner-iou", {}, NESTED, 0.75),  # same centre: scaling both keeps the IoU
    # NWD = 1 - exp(-sqrt(dcx^2 + dcy^2 + ((w - wgt)^2 + (h - hgt)^2) / 4) / C), C = 12.8
    ("nwd", {}, NESTED, 1 - E(-SQRT(0 + (2**2 + 2**2) / 4) / 12.8)),
    ("nwd", {}, DISJOINT, 1 - E(-SQRT(2**2 + 0) / 12.8)),  # > 0 although IoU = 0
    ("nwd", {}, ELONGATED, 1 - E(-SQRT(2**2 + 0.5**2 + (4**2 + 1**2) / 4) / 12.8)),
    ("nwd", {"constant": 2.0}, NESTED, 1 - E(-SQRT(2) / 2)),
    ("nwd", {"alpha": 3.0}, ELONGATED, 1 - E(-SQRT(8.5) / 12.8) ** 3),
    ("nwd", {"alpha": 0.0}, ELONGATED, -math.log(E(-SQRT(8.5) / 12.8))),  # -log(NWD), eq. 2
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("box_format", FORMATS)
def test_golden_values(dtype: torch.dtype, box_format: str) -> None:
    # eps shifts these unit-sized cases by ~1e-7 in float32; negligible in float64
    eps, tol = (1e-7, 2e-5) if dtype == torch.float32 else (1e-13, 1e-9)
    for name, kwargs, (p, t), expected in GOLDEN:
        pred = box_convert(torch.tensor([p], dtype=dtype), "xyxy", box_format)
        target = box_convert(torch.tensor([t], dtype=dtype), "xyxy", box_format)
        loss = get_loss(name, box_format=box_format, eps=eps, **kwargs)
        got = loss(pred, target)
        assert got.dtype == dtype and got.shape == (1,)
        assert got.item() == pytest.approx(expected, abs=tol), (name, kwargs, p, t)


def test_wise_iou_v3_gain_and_running_mean() -> None:
    """r = beta / (delta alpha^(beta - delta)), beta = (1 - IoU) / mean, the mean updated first."""
    pred = torch.tensor([NESTED[0], DISJOINT[0]], dtype=torch.float64)
    target = torch.tensor([NESTED[1], DISJOINT[1]], dtype=torch.float64)
    loss = WiseIoULoss(version=3, momentum=0.5)
    assert loss.state_dict()["running_mean"].item() == 1.0  # the authors' initial value

    def expected(mean: float) -> list[float]:
        r = [b / (3 * 1.9 ** (b - 3)) for b in (0.75 / mean, 1.0 / mean)]
        return [r[0] * 1 * 0.75, r[1] * E(4 / 10) * 1.0]  # r R_WIoU (1 - IoU)

    # the call's mean of 1 - IoU is (0.75 + 1) / 2 = 0.875: m = 0.5 * 1 + 0.5 * 0.875
    got = loss(pred, target)
    assert loss.running_mean.item() == pytest.approx(0.9375, abs=1e-7)
    torch.testing.assert_close(got, torch.tensor(expected(0.9375), dtype=torch.float64))
    loss(pred, target)  # 0.5 * 0.9375 + 0.5 * 0.875
    assert loss.running_mean.item() == pytest.approx(0.90625, abs=1e-7)
    loss.eval()  # read only
    torch.testing.assert_close(
        loss(pred, target), torch.tensor(expected(0.90625), dtype=torch.float64)
    )
    assert loss.running_mean.item() == pytest.approx(0.90625, abs=1e-7)
    loss.train()
    loss(torch.zeros(0, 4), torch.zeros(0, 4))  # no pair, no update
    assert loss.running_mean.item() == pytest.approx(0.90625, abs=1e-7)
    # beta = delta gives r = 1: v3 equals v1 there
    mean = torch.tensor(0.75 / 3.0, dtype=torch.float64)
    v3 = wise_iou_loss(pred[:1], target[:1], running_mean=mean)
    torch.testing.assert_close(v3, wise_iou_loss(pred[:1], target[:1], version=1))
    assert WiseIoULoss.paper_momentum(1) == pytest.approx(0.95)


def test_wise_iou_v1_against_torchvision_and_detached_enclosing_box() -> None:
    pred, target = random_boxes(200, seed=1)
    iou = box_iou(pred, target).diagonal()
    # torchvision's DIoU penalty is rho^2 / c^2: R_WIoU = exp(L_DIoU - (1 - IoU))
    r_wiou = torch.exp(distance_box_iou_loss(pred, target) - (1 - iou))
    torch.testing.assert_close(wise_iou_loss(pred, target, version=1), r_wiou * (1 - iou))
    # (Wg^2 + Hg^2)* is detached: the gradient is that of exp(rho^2 / const) (1 - IoU)
    leaf = pred.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(wise_iou_loss(leaf, target, version=1).sum(), leaf)
    leaf_ref = pred.clone().requires_grad_(True)
    rho2, c2 = centre_rho2_c2(leaf_ref, target)
    iou_ref = box_iou(leaf_ref, target).diagonal()
    for detach, expect_equal in ((True, True), (False, False)):
        c = c2.detach() if detach else c2
        reference = (torch.exp(rho2 / c) * (1 - iou_ref)).sum()
        (grad_ref,) = torch.autograd.grad(reference, leaf_ref, retain_graph=True)
        assert torch.allclose(grad, grad_ref, atol=1e-9) == expect_equal


def test_focal_eiou_weight_is_iou_power_without_gradient() -> None:
    pred, target = random_boxes(100, seed=2)
    pred.requires_grad_(True)
    iou = box_iou(pred.detach(), target).diagonal()
    eiou = alpha_iou_loss(pred, target, variant="eiou", alpha=1.0)
    focal = focal_eiou_loss(pred, target, gamma=0.5)
    torch.testing.assert_close(focal, iou**0.5 * eiou)
    (grad,) = torch.autograd.grad(focal.sum(), pred)
    (grad_eiou,) = torch.autograd.grad((iou**0.5 * eiou).sum(), pred)
    torch.testing.assert_close(grad, grad_eiou)


def test_mpdiou_equals_its_centre_and_size_form() -> None:
    """d1^2 + d2^2 = 2 rho^2 + ((w - wgt)^2 + (h - hgt)^2) / 2: corners hold DIoU and EIoU terms."""
    pred, target = random_boxes(200, seed=3)
    iou = box_iou(pred, target).diagonal()
    rho2, _ = centre_rho2_c2(pred, target)
    dw = (pred[:, 2] - pred[:, 0]) - (target[:, 2] - target[:, 0])
    dh = (pred[:, 3] - pred[:, 1]) - (target[:, 3] - target[:, 1])
    size = (160.0, 120.0)
    expected = 1 - iou + (2 * rho2 + (dw**2 + dh**2) / 2) / (160.0**2 + 120.0**2)
    torch.testing.assert_close(mpdiou_loss(pred, target, image_size=size), expected)
    # the same through a per-pair image size, and through the paper's corner form
    per_pair = torch.tensor([size], dtype=torch.float64).expand(200, 2)
    torch.testing.assert_close(mpdiou_loss(pred, target, image_size=per_pair), expected)
    d1 = (pred[:, :2] - target[:, :2]).pow(2).sum(1)
    d2 = (pred[:, 2:] - target[:, 2:]).pow(2).sum(1)
    torch.testing.assert_close(expected, 1 - iou + d1 / 40000 + d2 / 40000)


@pytest.mark.parametrize("variant", ["giou", "diou", "ciou"])
def test_inner_iou_is_the_papers_sum_with_torchvision(variant: str) -> None:
    """L_Inner-X = L_X + IoU - IoU_inner, IoU_inner the IoU of the scaled boxes."""
    pred, target = random_boxes(200, seed=4)
    reference = {
        "giou": generalized_box_iou_loss,
        "diou": distance_box_iou_loss,
        "ciou": complete_box_iou_loss,
    }[variant]
    iou = box_iou(pred, target).diagonal()
    for ratio in (0.7, 1.3):
        aux = [
            box_convert(
                box_convert(b, "xyxy", "cxcywh") * torch.tensor([1, 1, ratio, ratio]),
                "cxcywh",
                "xyxy",
            )
            for b in (pred, target)
        ]
        iou_inner = box_iou(*aux).diagonal()
        expected = reference(pred, target) + iou - iou_inner
        got = get_loss(f"inner-{variant}", inner_ratio=ratio)(pred, target)
        torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    # ratio 1 is the loss itself
    torch.testing.assert_close(
        get_loss(f"inner-{variant}", inner_ratio=1.0)(pred, target), get_loss(variant)(pred, target)
    )


def test_shape_iou_at_scale_zero_is_diou_plus_half_the_siou_shape_cost() -> None:
    pred, target = random_boxes(200, seed=5)
    wh, gwh = pred[:, 2:] - pred[:, :2], target[:, 2:] - target[:, :2]
    omega = (wh - gwh).abs() / torch.maximum(wh, gwh)
    shape_cost = (1 - torch.exp(-omega)).pow(4).sum(1)
    expected = distance_box_iou_loss(pred, target) + 0.5 * shape_cost
    torch.testing.assert_close(shape_iou_loss(pred, target, scale=0.0), expected)


def test_scale_invariance_where_the_papers_claim_it() -> None:
    pred, target = random_boxes(100, seed=6)
    k = 7.5
    for version in (1, 2):
        torch.testing.assert_close(
            powerful_iou_loss(k * pred, k * target, version=version),
            powerful_iou_loss(pred, target, version=version),
        )
    torch.testing.assert_close(
        mpdiou_loss(k * pred, k * target, image_size=(k * 160, k * 120)),
        mpdiou_loss(pred, target, image_size=(160, 120)),
    )
    torch.testing.assert_close(shape_iou_loss(k * pred, k * target), shape_iou_loss(pred, target))
    # NWD is not: it is invariant only with C scaled alike
    assert not torch.allclose(nwd_loss(k * pred, k * target), nwd_loss(pred, target))
    torch.testing.assert_close(
        nwd_loss(k * pred, k * target, constant=k * 12.8), nwd_loss(pred, target)
    )


def test_nwd_is_the_wasserstein_distance_of_the_box_gaussians() -> None:
    """W2^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2), S = diag(w^2/4, h^2/4)."""
    pred, target = random_boxes(50, seed=7)

    def gaussian(b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cxcywh = box_convert(b, "xyxy", "cxcywh")
        return cxcywh[:, :2], torch.diag_embed(cxcywh[:, 2:] ** 2 / 4)

    def sqrtm(m: torch.Tensor) -> torch.Tensor:
        vals, vecs = torch.linalg.eigh(m)
        return vecs @ torch.diag_embed(vals.clamp(min=0).sqrt()) @ vecs.transpose(-1, -2)

    (mu1, s1), (mu2, s2) = gaussian(pred), gaussian(target)
    root1 = sqrtm(s1)
    cross = sqrtm(root1 @ s2 @ root1)
    w2 = (mu1 - mu2).pow(2).sum(1) + torch.diagonal(s1 + s2 - 2 * cross, dim1=-2, dim2=-1).sum(1)
    torch.testing.assert_close(nwd_loss(pred, target), 1 - torch.exp(-w2.sqrt() / 12.8))


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("mpdiou", {"image_size": (160, 120)}),
        ("mpdiou", {"alpha": 3.0}),
        ("shape-iou", {}),
        ("shape-iou", {"scale": 1.0, "alpha": 0.5}),
        ("piou", {}),
        ("piou-v2", {}),
        ("nwd", {"alpha": 3.0}),
        ("inner-giou", {}),
        ("inner-mpdiou", {"inner_ratio": 1.3}),
    ],
)
def test_gradcheck(name: str, kwargs: dict) -> None:
    pred, target = random_boxes(6, seed=8)
    pred.requires_grad_(True)
    target.requires_grad_(True)
    loss = get_loss(name, **kwargs)
    assert torch.autograd.gradcheck(loss, (pred, target))


# ---------------------------------------------------------------- properties of every loss

coordinate = st.floats(0, 100, allow_nan=False, width=64)
extent = st.floats(0, 50, allow_nan=False, width=64)
box = st.tuples(coordinate, coordinate, extent, extent)


@settings(max_examples=15, deadline=None)
@given(p=box, t=box)
def test_every_loss_nonnegative_finite_and_zero_on_identical(
    p: tuple[float, ...], t: tuple[float, ...]
) -> None:
    def xyxy(b: tuple[float, ...]) -> list[float]:
        return [b[0], b[1], b[0] + b[2], b[1] + b[3]]

    pred = torch.tensor([xyxy(p), xyxy(t)], dtype=torch.float64)
    target = torch.tensor([xyxy(t), xyxy(t)], dtype=torch.float64)
    for name in list_losses():
        loss = get_loss(name)(pred, target)
        assert torch.isfinite(loss).all(), name
        assert loss[0] >= -1e-12, (name, loss)
        if t[2] > 1e-3 and t[3] > 1e-3:  # a target with area
            assert abs(loss[1].item()) <= 1e-12, (name, loss)


def test_describe_every_zoo_loss() -> None:
    families = {describe_loss(n)["family"] for n in ZOO}
    assert families == {
        "focal-eiou",
        "wise-iou",
        "mpdiou",
        "shape-iou",
        "powerful-iou",
        "nwd",
        "inner-iou",
    }
    for name in ZOO:
        info = describe_loss(name)
        assert "https://" in info["reference"] and info["parameters"]["alpha"] == 1.0, name
    assert describe_loss("inner-ciou")["parameters"]["inner_ratio"] == 0.7
    assert describe_loss("piou-v2")["parameters"]["focus_lambda"] == 1.3
    assert describe_loss("nwd")["parameters"]["constant"] == 12.8
    assert "2311.02877" in describe_loss("inner-mpdiou")["reference"]


def test_benchmark_config_accepts_every_loss() -> None:
    config = {
        "dataset": {"builtin": "shapes", "num_train": 4, "num_val": 2, "image_size": 64},
        "detectors": ["fcos"],
        "losses": [*ZOO, {"name": "wiou-v3", "alpha": 3, "alpha_warmup": 0.3}],
        "etas": [0.0],
        "seeds": [0],
        "schedule": {"epochs": 1},
    }
    cfg = load_config(config)
    assert [lo.label for lo in cfg.losses] == [*ZOO, "wiou-v3@3"]
    assert all(lo.alpha == 1.0 for lo in cfg.losses[:-1])


def test_loss_zoo_preset() -> None:
    cfg = load_config("loss-zoo")
    cpu = load_config("paper-cpu")
    # the detector, dataset and schedule of the converged CPU study (paper-cpu)
    assert cfg.dataset == cpu.dataset and cfg.detectors == cpu.detectors
    assert cfg.schedule == cpu.schedule and cfg.noise == cpu.noise
    alpha = next(lo for lo in cfg.losses if lo.name == "alpha-iou")
    assert alpha in cpu.losses
    assert cfg.etas == (0.0, 0.3) and len(cfg.seeds) == 3
    names = {lo.name for lo in cfg.losses}
    assert {"iou", "focal-eiou", "wiou-v1", "wiou-v3", "mpdiou", "inner-iou"} <= names
    assert {"shape-iou", "piou", "piou-v2", "nwd"} <= names
