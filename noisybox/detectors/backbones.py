"""ResNet-FPN and MobileNetV3-FPN feature extractors built from torchvision parts.

torchvision's own ``_resnet_fpn_extractor`` fixes the FPN width at 256 channels; a laptop
CPU trains far faster with 64 or 128, so the extractor is assembled here from the same
public pieces (``BackboneWithFPN``, ``LastLevelP6P7``, ``LastLevelMaxPool``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn
from torchvision.models import mobilenet_v3_large, resnet18, resnet34, resnet50
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.resnet import BasicBlock, ResNet
from torchvision.ops.feature_pyramid_network import (
    ExtraFPNBlock,
    LastLevelMaxPool,
    LastLevelP6P7,
)

from noisybox._registry import Registry
from noisybox.detectors._weights import read_weights_file

__all__ = ["BACKBONES", "WidthScaledResNet", "build_fpn_backbone", "list_backbones"]

# {stride: (module name, channels)} of the stages of a torchvision ResNet
_RESNET_STAGES_BASIC = {
    4: ("layer1", 64),
    8: ("layer2", 128),
    16: ("layer3", 256),
    32: ("layer4", 512),
}
_RESNET_STAGES_BOTTLENECK = {
    4: ("layer1", 256),
    8: ("layer2", 512),
    16: ("layer3", 1024),
    32: ("layer4", 2048),
}


class WidthScaledResNet(ResNet):
    """A torchvision ResNet whose stem and four stages are ``width`` times as wide.

    The blocks, ``_make_layer`` and the initialisation are torchvision's; only the channel
    counts change (64-128-256-512 times ``width``, at least 8). A CPU trains a detector on
    small images several times faster with a half- or quarter-width body (FLOPs fall with
    the square of the width), which is what the CPU-sized benchmark configuration uses.

    Args:
        layers: blocks per stage (``[2, 2, 2, 2]`` for ResNet-18).
        width: channel multiplier in ``(0, 1]``.
        weights: must be ``None`` (there are no published weights of these widths; a local
            state dict of the same width loads through ``weights_backbone``).

    >>> net = WidthScaledResNet([2, 2, 2, 2], width=0.5)
    >>> [net.layer1[0].conv1.out_channels, net.layer4[0].conv1.out_channels]
    [32, 256]
    """

    def __init__(self, layers: list[int], width: float, weights: Any = None) -> None:
        if weights is not None:
            raise ValueError(f"Expected weights=None for a width-scaled ResNet but got {weights!r}")
        if not 0 < width <= 1:
            raise ValueError(f"Expected width in (0, 1] but got {width!r}")
        super().__init__(BasicBlock, layers)
        planes = [max(8, int(round(c * width))) for c in (64, 128, 256, 512)]
        self.inplanes = planes[0]
        self.conv1 = nn.Conv2d(3, planes[0], kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = self._norm_layer(planes[0])
        self.layer1 = self._make_layer(BasicBlock, planes[0], layers[0])
        self.layer2 = self._make_layer(BasicBlock, planes[1], layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, planes[2], layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, planes[3], layers[3], stride=2)
        self.fc = nn.Linear(planes[3] * BasicBlock.expansion, 1000)
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def _scaled_stages(width: float) -> dict[int, tuple[str, int]]:
    return {
        s: (name, max(8, int(round(c * width)))) for s, (name, c) in _RESNET_STAGES_BASIC.items()
    }


# The last block of every stage of MobileNetV3-Large's ``features`` (output stride 4..32).
_MOBILENET_STAGES = {4: ("3", 24), 8: ("6", 40), 16: ("12", 112), 32: ("16", 960)}

#: name -> (constructor ``(weights=None) -> nn.Module``, {stride: (module name, channels)})
BACKBONES: Registry[tuple[object, dict[int, tuple[str, int]]]] = Registry("backbone")
BACKBONES.add("resnet18", (resnet18, _RESNET_STAGES_BASIC))
BACKBONES.add("resnet34", (resnet34, _RESNET_STAGES_BASIC))
BACKBONES.add("resnet50", (resnet50, _RESNET_STAGES_BOTTLENECK))
BACKBONES.add("mobilenet_v3_large", (mobilenet_v3_large, _MOBILENET_STAGES))
# width-scaled ResNet-18 bodies (timm's ``_050`` / ``_025`` naming of width multipliers)
for _width, _suffix in ((0.5, "050"), (0.25, "025")):
    BACKBONES.add(
        f"resnet18_{_suffix}",
        (functools.partial(WidthScaledResNet, [2, 2, 2, 2], _width), _scaled_stages(_width)),
    )


def list_backbones() -> list[str]:
    """Names accepted by :func:`build_fpn_backbone`.

    >>> list_backbones()
    ['mobilenet_v3_large', 'resnet18', 'resnet18_025', 'resnet18_050', 'resnet34', 'resnet50']
    """
    return BACKBONES.names()


def _load_state_dict(module: nn.Module, path: str | Path, what: str) -> None:
    state = read_weights_file(path, f"{what} weights")
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"Expected a state dict in {path} but got {type(state).__name__}")
    missing, unexpected = module.load_state_dict(state, strict=False)
    # A classification checkpoint carries its classifier (fc / classifier.*): ignore it,
    # but every feature-extractor weight must be present.
    missing = [k for k in missing if not k.startswith(("fc.", "classifier."))]
    if missing:
        raise ValueError(
            f"Expected {what} weights in {path} to contain every parameter but got "
            f"{len(missing)} missing (first: {missing[0]!r})"
        )
    del unexpected


def build_fpn_backbone(
    name: str,
    *,
    strides: Sequence[int] = (8, 16, 32),
    fpn_channels: int = 256,
    extra: str = "p6p7",
    weights_backbone: str | Path | None = None,
    trainable_layers: int | None = None,
) -> BackboneWithFPN:
    """A backbone body with a feature pyramid on top.

    Args:
        name: one of :func:`list_backbones`.
        strides: output strides of the body stages fed to the FPN (subset of 4, 8, 16, 32).
        fpn_channels: channels of every pyramid level.
        extra: ``"p6p7"`` adds two stride-2 convolutions on P5 (FCOS, RetinaNet),
            ``"pool"`` a max-pooled level (Faster R-CNN), ``"none"`` nothing.
        weights_backbone: optional local state-dict file of the classification network
            (e.g. an ImageNet ResNet-18 ``.pth``), loaded with ``weights_only=True``.
            Random initialisation when ``None``; nothing is ever downloaded.
        trainable_layers: freeze all stages before the last ``trainable_layers`` stages of
            the body (``None``: everything trains).

    Returns:
        A ``BackboneWithFPN`` whose ``out_channels`` is ``fpn_channels``; it returns
        ``len(strides)`` (+1 or +2 with ``extra``) feature maps.

    Raises:
        ValueError: unknown name, stride or ``extra``.

    >>> import torch
    >>> bb = build_fpn_backbone("resnet18", fpn_channels=32)
    >>> [tuple(f.shape) for f in bb(torch.zeros(1, 3, 64, 64)).values()]
    [(1, 32, 8, 8), (1, 32, 4, 4), (1, 32, 2, 2), (1, 32, 1, 1), (1, 32, 1, 1)]
    """
    constructor, stages = BACKBONES.get(name)
    bad = [s for s in strides if s not in stages]
    if bad or not strides:
        raise ValueError(f"Expected strides among {sorted(stages)} but got {list(strides)}")
    if fpn_channels < 1:
        raise ValueError(f"Expected fpn_channels >= 1 but got {fpn_channels}")
    net = constructor(weights=None)  # type: ignore[operator]
    if weights_backbone is not None:
        _load_state_dict(net, weights_backbone, name)
    body: nn.Module = net.features if name.startswith("mobilenet") else net
    ordered = sorted(strides)
    return_layers = {stages[s][0]: str(i) for i, s in enumerate(ordered)}
    in_channels = [stages[s][1] for s in ordered]
    if trainable_layers is not None:
        _freeze(body, [stages[s][0] for s in sorted(stages)], trainable_layers)
    extra_blocks: ExtraFPNBlock | None
    if extra == "p6p7":
        extra_blocks = LastLevelP6P7(fpn_channels, fpn_channels)
    elif extra == "pool":
        extra_blocks = LastLevelMaxPool()
    elif extra == "none":
        extra_blocks = None
    else:
        raise ValueError(f"Expected extra in ['none', 'p6p7', 'pool'] but got {extra!r}")
    return BackboneWithFPN(
        body, return_layers, in_channels, fpn_channels, extra_blocks=extra_blocks
    )


def _freeze(body: nn.Module, stage_names: list[str], trainable_layers: int) -> None:
    """Freeze the stem and all but the last ``trainable_layers`` of the four body stages.

    ``stage_names`` name the LAST child module of every stage (stride 4, 8, 16, 32);
    ``trainable_layers = 5`` trains the stem too, ``0`` freezes the whole body.
    """
    if not 0 <= trainable_layers <= len(stage_names) + 1:
        raise ValueError(
            f"Expected trainable_layers in [0, {len(stage_names) + 1}] but got {trainable_layers}"
        )
    children = [n for n, _ in body.named_children()]
    if trainable_layers > len(stage_names):
        return
    if trainable_layers == 0:
        first_trainable = len(children)
    else:
        # the first child after the last block of the previous (frozen) stage
        frozen_last = (
            stage_names[len(stage_names) - trainable_layers - 1]
            if (trainable_layers < len(stage_names))
            else None
        )
        first_trainable = children.index(frozen_last) + 1 if frozen_last else 0
        if frozen_last is None:
            # the stem (ResNet conv1/bn1, MobileNet block 0) stays frozen
            first_trainable = children.index(_first_stage_start(body, stage_names[0]))
    for index, (_, child) in enumerate(body.named_children()):
        if index < first_trainable:
            for p in child.parameters():
                p.requires_grad_(False)


def _first_stage_start(body: nn.Module, first_stage_last: str) -> str:
    """Name of the first child of the stride-4 stage (after the stem)."""
    children = [n for n, _ in body.named_children()]
    if first_stage_last.isdigit():  # MobileNet: block 0 is the stem conv
        return children[1]
    return first_stage_last  # ResNet: ``layer1`` is a single child
