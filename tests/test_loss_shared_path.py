"""Every registered loss goes through the one shared path: the reduction, the weight, the
empty input, the upcast and the argument checks behave alike for all, and each module's
constructor is its loss function's signature."""

from __future__ import annotations

import inspect

import pytest
import torch
from torchvision.ops import box_convert

from noisybox.losses import get_loss, list_losses
from noisybox.losses._common import PairLoss

NAMES = list_losses()


def _modules() -> list[type[PairLoss]]:
    return sorted({type(get_loss(name)) for name in NAMES}, key=lambda cls: cls.__name__)


MODULES = _modules()


def boxes(dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """12 pairs: random overlapping ones, then identical, point, zero-width and disjoint."""
    gen = torch.Generator().manual_seed(18)
    xy = torch.rand(12, 2, generator=gen, dtype=torch.float64) * 40
    wh = torch.rand(12, 2, generator=gen, dtype=torch.float64) * 20 + 1
    target = torch.cat([xy, xy + wh], dim=1)
    pred = target + torch.randn(12, 4, generator=gen, dtype=torch.float64) * 3
    pred[:, 2:] = torch.maximum(pred[:, 2:], pred[:, :2])
    pred[8] = target[8]
    pred[9] = target[9] = torch.tensor([5.0, 5.0, 5.0, 5.0], dtype=torch.float64)
    pred[10] = torch.tensor([0.0, 0.0, 0.0, 4.0], dtype=torch.float64)
    pred[11] = target[11] + 500
    return pred.to(dtype), target.to(dtype)


def test_every_registered_loss_is_a_pair_loss() -> None:
    # the properties below hold for a loss only if it goes through the shared path
    for name in NAMES:
        assert isinstance(get_loss(name), PairLoss), name


@pytest.mark.parametrize("name", NAMES)
def test_reduction_and_weight(name: str) -> None:
    pred, target = boxes()
    weight = torch.linspace(0, 2, 12, dtype=torch.float64)
    # a new module per call: Wise-IoU v3 moves its running mean at every training call
    per_pair = get_loss(name)(pred, target)
    assert per_pair.shape == (12,) and per_pair.dtype == torch.float64
    assert torch.equal(get_loss(name, reduction="sum")(pred, target), per_pair.sum())
    assert torch.equal(get_loss(name, reduction="mean")(pred, target), per_pair.mean())
    assert torch.equal(get_loss(name)(pred, target, weight), per_pair * weight)
    weighted_mean = get_loss(name, reduction="mean")(pred, target, weight)
    assert torch.equal(weighted_mean, (per_pair * weight).mean())
    batched = get_loss(name)(pred.view(3, 4, 4), target.view(3, 4, 4))
    torch.testing.assert_close(batched, per_pair.view(3, 4), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("box_format", ["xywh", "cxcywh"])
def test_box_format(name: str, box_format: str) -> None:
    pred, target = boxes()
    converted = [box_convert(b, "xyxy", box_format) for b in (pred, target)]
    expected = get_loss(name)(pred, target)
    got = get_loss(name, box_format=box_format)(*converted)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_empty_input_back_propagates(name: str, reduction: str) -> None:
    pred = torch.zeros(2, 0, 4, dtype=torch.float16, requires_grad=True)
    loss = get_loss(name, reduction=reduction)(pred, torch.zeros(2, 0, 4, dtype=torch.float16))
    assert loss.dtype == torch.float32
    assert loss.shape == ((2, 0) if reduction == "none" else ())
    loss.sum().backward()
    assert pred.grad is not None and pred.grad.shape == (2, 0, 4)
    if reduction != "none":
        assert loss.item() == 0.0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(name: str, dtype: torch.dtype) -> None:
    pred, target = boxes(dtype)
    pred.requires_grad_(True)
    loss = get_loss(name)(pred, target)
    assert loss.dtype == torch.float32
    assert torch.equal(loss, get_loss(name)(pred.detach().float(), target.float()))
    loss.sum().backward()
    assert pred.grad is not None and pred.grad.dtype == dtype
    assert torch.isfinite(pred.grad).all(), name


@pytest.mark.parametrize("name", NAMES)
def test_bad_reduction_box_format_and_inputs(name: str) -> None:
    with pytest.raises(ValueError, match=r"Expected reduction to be one of \('none', 'mean'"):
        get_loss(name, reduction="avg")
    with pytest.raises(ValueError, match=r"Expected box_format to be one of \('xyxy', 'xywh'"):
        get_loss(name, box_format="yxyx")
    loss = get_loss(name)
    with pytest.raises(ValueError, match=r"same shape \[..., 4\] but got \[2, 4\] and \[3, 4\]"):
        loss(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="to be torch.Tensor but got list and Tensor"):
        loss([0.0, 0.0, 1.0, 1.0], torch.zeros(4))


@pytest.mark.parametrize("cls", MODULES, ids=lambda cls: cls.__name__)
def test_constructor_is_the_loss_functions_signature(cls: type[PairLoss]) -> None:
    module_params = inspect.signature(cls).parameters
    fn_params = inspect.signature(cls.fn).parameters
    positional = [
        n for n, p in module_params.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    assert positional == [n for n in cls.hyper_parameters if n not in cls.keyword_only]
    assert set(module_params) == {*cls.hyper_parameters, "box_format", "reduction", "eps"}
    for name, param in module_params.items():
        assert param.default == fn_params[name].default, (cls.__name__, name)
        assert param.annotation == fn_params[name].annotation, (cls.__name__, name)
    module = cls()
    for name, param in module_params.items():
        assert getattr(module, name) == param.default, (cls.__name__, name)
    # what the constructor does not take, the module's state supplies (or the call itself)
    rest = set(fn_params) - set(module_params) - {"pred", "target", "weight"}
    assert rest == set(module.state_arguments()), cls.__name__


def test_constructor_arguments() -> None:
    from noisybox.losses import AlphaIoULoss, FocalEIoULoss, WiseIoULoss

    wise = WiseIoULoss(1, 2.0, 1.5, 2.0, 0.1, reduction="sum")
    assert wise.hyper() == {
        "version": 1,
        "alpha": 2.0,
        "focus_alpha": 1.5,
        "focus_delta": 2.0,
        "momentum": 0.1,
    }
    assert wise.reduction == "sum" and wise.eps == 1e-7
    assert AlphaIoULoss("ciou", 2.0, inner_ratio=0.8).inner_ratio == 0.8
    with pytest.raises(TypeError, match="AlphaIoULoss"):
        AlphaIoULoss("iou", 3.0, None, True)  # box_cox is keyword-only
    with pytest.raises(TypeError, match="FocalEIoULoss.__init__.. got an unexpected keyword"):
        FocalEIoULoss(gama=0.5)
    with pytest.raises(ValueError, match="Expected gamma >= 0"):
        FocalEIoULoss(gamma=-1.0)
    # an instance's signature is its call's, not the constructor's
    assert "variant" not in inspect.signature(AlphaIoULoss()).parameters
