"""The detector registry and the box-loss plug, checked against stock torchvision."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.roi_heads import fastrcnn_loss
from torchvision.ops import (
    complete_box_iou_loss,
    distance_box_iou_loss,
    generalized_box_iou_loss,
)

from noisybox.detectors import (
    PluggedFCOSHead,
    PluggedRetinaNetRegressionHead,
    PluggedRoIHeads,
    build_detector,
    build_fpn_backbone,
    list_detectors,
    load_detector_weights,
    set_box_loss_alpha,
)
from noisybox.losses import get_loss

SIZE = 64


pytestmark = pytest.mark.usefixtures("one_thread")


def _batch(seed: int = 0) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    g = torch.Generator().manual_seed(seed)
    images = [torch.rand(3, SIZE, SIZE, generator=g) for _ in range(2)]
    targets = [
        {
            "boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0], [20.0, 18.0, 60.0, 50.0]]),
            "labels": torch.tensor([1, 2]),
        },
        {"boxes": torch.tensor([[10.0, 8.0, 52.0, 60.0]]), "labels": torch.tensor([3])},
    ]
    return images, targets


def _losses(model: nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    images, targets = _batch(seed)
    model.train()
    torch.manual_seed(0)  # Faster R-CNN samples RoIs with the global generator
    return model(images, targets)


def _pair(
    name: str, loss: str | nn.Module, alpha: float | None = None, **kw
) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    stock = build_detector(name, 4, fpn_channels=32, image_size=SIZE, **kw)
    plugged = build_detector(
        name, 4, loss=loss, alpha=alpha, fpn_channels=32, image_size=SIZE, **kw
    )
    plugged.load_state_dict(stock.state_dict())
    # perturb the regression so predicted boxes are not all the same size
    with torch.no_grad():
        for p in stock.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    plugged.load_state_dict(stock.state_dict())
    return stock, plugged


def test_list_detectors() -> None:
    assert list_detectors() == ["fasterrcnn", "fcos", "retinanet"]


@pytest.mark.parametrize("loss", ["alpha-giou", "giou"])
def test_fcos_alpha_giou_at_alpha_1_equals_stock_fcos(loss: str) -> None:
    stock, plugged = _pair("fcos", loss, alpha=1.0)
    assert isinstance(plugged.head, PluggedFCOSHead)
    expected, got = _losses(stock), _losses(plugged)
    assert set(got) == set(expected) == {"classification", "bbox_regression", "bbox_ctrness"}
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)
    assert expected["bbox_regression"] > 0.1  # the comparison is not between two zeros
    # gradients agree too
    expected["bbox_regression"].backward()
    got["bbox_regression"].backward()
    for (n, p), q in zip(stock.named_parameters(), plugged.parameters(), strict=True):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=1e-6, msg=n)


def test_fcos_alpha_changes_the_box_loss_only() -> None:
    stock, plugged = _pair("fcos", "alpha-giou", alpha=3.0)
    expected, got = _losses(stock), _losses(plugged)
    torch.testing.assert_close(got["classification"], expected["classification"])
    assert not torch.allclose(got["bbox_regression"], expected["bbox_regression"])
    # the ramp used by the alpha warm-up: alpha back to 1 gives the stock value
    assert set_box_loss_alpha(plugged, 1.0)
    torch.testing.assert_close(_losses(plugged)["bbox_regression"], expected["bbox_regression"])


class _TorchvisionRetinaLoss(nn.Module):
    """torchvision's own decoded-box IoU losses, per box."""

    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.fn(pred, target, reduction="none", eps=1e-7)


@pytest.mark.parametrize(
    ("tv_type", "ours", "fn"),
    [
        ("giou", "alpha-giou", generalized_box_iou_loss),
        ("diou", "alpha-diou", distance_box_iou_loss),
        ("ciou", "alpha-ciou", complete_box_iou_loss),
    ],
)
def test_retinanet_plug_equals_torchvision_iou_box_loss(tv_type, ours, fn) -> None:
    # torchvision's RetinaNet regression head supports GIoU/DIoU/CIoU on decoded boxes
    # through its private ``_loss_type``; the plug must match it exactly at alpha = 1.
    stock, plugged = _pair("retinanet", ours, alpha=1.0, anchor_scale=2.0)
    stock.head.regression_head._loss_type = tv_type
    assert isinstance(plugged.head.regression_head, PluggedRetinaNetRegressionHead)
    expected, got = _losses(stock), _losses(plugged)
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=1e-5, atol=1e-6)
    assert expected["bbox_regression"] > 0.01
    # and a torchvision function plugged in as a module gives the same
    _, plugged_tv = _pair("retinanet", _TorchvisionRetinaLoss(fn), anchor_scale=2.0)
    torch.testing.assert_close(
        _losses(plugged_tv)["bbox_regression"], expected["bbox_regression"], rtol=1e-5, atol=1e-6
    )


def test_fasterrcnn_plug_decodes_against_proposals() -> None:
    torch.manual_seed(0)
    model = build_detector(
        "fasterrcnn",
        4,
        loss="alpha-iou",
        alpha=1.0,
        fpn_channels=32,
        image_size=SIZE,
        box_loss_weight=1.0,
    )
    assert isinstance(model.roi_heads, PluggedRoIHeads)
    heads = model.roi_heads
    # a hand-made sample: 3 RoIs, two positives; deltas decoded against their proposals
    proposals = [
        torch.tensor([[0.0, 0.0, 10.0, 10.0], [5.0, 5.0, 25.0, 15.0], [0.0, 0.0, 4.0, 4.0]])
    ]
    targets = [{"boxes": torch.tensor([[1.0, 1.0, 11.0, 9.0], [6.0, 4.0, 24.0, 16.0]])}]
    matched = [torch.tensor([0, 1, 0])]
    labels = [torch.tensor([2, 1, 0])]
    logits = torch.randn(3, 4)
    deltas = 0.1 * torch.randn(3, 16)
    cls, box = heads.decoded_box_loss(logits, deltas, proposals, matched, labels, targets)
    coder = det_utils.BoxCoder((10.0, 10.0, 5.0, 5.0))
    d = deltas.reshape(3, 4, 4)
    pred = torch.stack(
        [
            coder.decode_single(d[0:1, 2], proposals[0][0:1])[0],
            coder.decode_single(d[1:2, 1], proposals[0][1:2])[0],
        ]
    )
    from torchvision.ops import box_iou

    ious = box_iou(pred, targets[0]["boxes"]).diagonal()
    torch.testing.assert_close(box, (1 - ious).sum() / 3)
    # the classification term is torchvision's own
    stock_cls, _ = fastrcnn_loss(logits, deltas, labels, [torch.zeros(3, 4)])
    torch.testing.assert_close(cls, stock_cls)


@pytest.mark.parametrize("name", ["fcos", "retinanet", "fasterrcnn"])
def test_every_detector_trains_and_predicts(name: str) -> None:
    torch.manual_seed(0)
    # FCOS's GroupNorm(32) needs 64 channels when a pyramid level is 1 x 1 pixel
    model = build_detector(name, 4, loss="alpha-ciou", fpn_channels=64, image_size=SIZE)
    losses = _losses(model)
    total = sum(losses.values())
    total.backward()
    assert torch.isfinite(total)
    model.eval()
    with torch.no_grad():
        out = model([torch.rand(3, 48, 80)])
    assert set(out[0]) == {"boxes", "labels", "scores"}
    if len(out[0]["boxes"]):  # boxes are in the input's own pixels
        assert out[0]["boxes"][:, 2].max() <= 80 and out[0]["boxes"][:, 3].max() <= 48


def test_mobilenet_backbone_builds() -> None:
    model = build_detector(
        "fcos", 4, backbone="mobilenet_v3_large", fpn_channels=64, image_size=SIZE
    )
    assert "backbone.body.16.0.weight" in model.state_dict()
    assert all(torch.isfinite(v).all() for v in _losses(model).values())


def test_weights_files_load_with_weights_only(tmp_path) -> None:
    torch.manual_seed(0)
    model = build_detector("fcos", 3, fpn_channels=32, image_size=SIZE)
    path = tmp_path / "fcos.pt"
    torch.save({"model": model.state_dict()}, path)
    again = build_detector("fcos", 3, fpn_channels=32, image_size=SIZE, weights=path)
    for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    body = tmp_path / "resnet18.pt"
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    torch.save(net.state_dict(), body)
    bb = build_fpn_backbone("resnet18", fpn_channels=32, weights_backbone=body)
    assert torch.equal(bb.body.conv1.weight, net.conv1.weight)
    with pytest.raises(ValueError, match="Expected weights in"):
        build_detector("fcos", 5, fpn_channels=32, image_size=SIZE, weights=path)
    with pytest.raises(FileNotFoundError, match="Expected a detector weights file"):
        build_detector("fcos", 3, fpn_channels=32, weights=tmp_path / "missing.pt")


def test_bad_arguments_raise_one_line_errors() -> None:
    with pytest.raises(ValueError, match="Expected a detector in"):
        build_detector("yolo", 3)
    with pytest.raises(ValueError, match="Expected a backbone in"):
        build_detector("fcos", 3, backbone="vgg")
    with pytest.raises(ValueError, match="Expected a loss name"):
        build_detector("fcos", 3, loss="l2", fpn_channels=32)
    with pytest.raises(ValueError, match="multiple of 32"):
        build_detector("fcos", 3, fpn_channels=48)
    with pytest.raises(ValueError, match="no alpha"):
        build_detector("fcos", 3, alpha=3.0, fpn_channels=32)


def test_loss_module_is_shared_not_copied() -> None:
    loss = get_loss("alpha-iou")
    model = build_detector("fcos", 3, loss=loss, fpn_channels=32, image_size=SIZE)
    set_box_loss_alpha(model, 2.0)
    assert loss.alpha == 2.0


# ---------------------------------------------------------------- the IoU-loss zoo (issue 18)


@pytest.mark.parametrize(
    "loss", ["focal-eiou", "wiou-v3", "mpdiou", "inner-ciou", "shape-iou", "piou-v2", "nwd"]
)
def test_zoo_losses_plug_into_fcos(loss: str) -> None:
    """One loss per family of the zoo trains through the FCOS plug: finite, non-zero gradient."""
    torch.manual_seed(0)
    model = build_detector("fcos", 4, loss=loss, fpn_channels=32, image_size=SIZE, num_convs=1)
    losses = _losses(model)
    assert losses["bbox_regression"] > 0.01 and torch.isfinite(losses["bbox_regression"])
    losses["bbox_regression"].backward()
    grads = [p.grad for p in model.head.regression_head.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_mpdiou_is_normalised_by_the_detector_input() -> None:
    model = build_detector("fcos", 3, loss="mpdiou", fpn_channels=32, image_size=SIZE)
    assert model.head.box_loss.image_size == float(SIZE)
    kept = build_detector(
        "fcos", 3, loss="mpdiou", loss_kwargs={"image_size": (80, 60)}, fpn_channels=32
    )
    assert kept.head.box_loss.image_size == (80, 60)
    retina = build_detector("retinanet", 3, loss="inner-mpdiou", fpn_channels=32, image_size=96)
    assert retina.head.regression_head.box_loss.image_size == 96.0


def test_wise_iou_v3_state_is_in_the_checkpoint_and_restored(tmp_path) -> None:
    """The running mean is a buffer of the head: checkpointed with the weights, restored on
    resume (``load_state_dict``), updated in training only; foreign weights load around it."""
    from noisybox.engine.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint

    torch.manual_seed(0)
    model = build_detector("fcos", 4, loss="wiou-v3", fpn_channels=32, image_size=SIZE)
    key = "head.box_loss.running_mean"
    assert model.state_dict()[key].item() == 1.0
    _losses(model)  # one training forward: FCOS calls the loss once, the mean moves
    mean = model.state_dict()[key].item()
    assert mean != 1.0
    model.eval()  # reaches the loss: it only reads its mean now
    boxes = torch.tensor([[4.0, 6.0, 30.0, 40.0]])
    model.head.box_loss(boxes, boxes + 3)
    assert model.state_dict()[key].item() == mean
    # what the training loop checkpoints (the model's state dict) and resumes from
    path = tmp_path / "last.pt"
    save_checkpoint({"format": CHECKPOINT_FORMAT, "model": model.state_dict()}, path)
    state = load_checkpoint(path)
    fresh = build_detector("fcos", 4, loss="wiou-v3", fpn_channels=32, image_size=SIZE)
    fresh.load_state_dict(state["model"])
    assert fresh.state_dict()[key].item() == mean
    # weights files: a wiou-v3 file into another loss's detector and back
    plain = build_detector("fcos", 4, loss="alpha-iou", fpn_channels=32, image_size=SIZE)
    torch.save({"model": model.state_dict()}, tmp_path / "wiou.pt")
    load_detector_weights(plain, tmp_path / "wiou.pt")
    torch.save(plain.state_dict(), tmp_path / "plain.pt")
    again = build_detector(
        "fcos", 4, loss="wiou-v3", fpn_channels=32, image_size=SIZE, weights=tmp_path / "plain.pt"
    )
    assert again.state_dict()[key].item() == 1.0  # its own, new run's state
    torch.testing.assert_close(
        again.head.regression_head.bbox_reg.weight, model.head.regression_head.bbox_reg.weight
    )
