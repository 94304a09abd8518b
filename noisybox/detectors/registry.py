"""Detector registry: torchvision FCOS, RetinaNet and Faster R-CNN with a pluggable box loss."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.retinanet import RetinaNetHead

from noisybox._registry import Registry
from noisybox.detectors._weights import read_weights_file
from noisybox.detectors.backbones import build_fpn_backbone
from noisybox.detectors.loss_plug import (
    PluggedFCOSHead,
    PluggedRetinaNetRegressionHead,
    PluggedRoIHeads,
)
from noisybox.losses import STOCK_LOSS, get_loss
from noisybox.settings import LossSpec

__all__ = [
    "LOSS_KEYS",
    "STOCK_LOSS",
    "box_loss_modules",
    "build_box_loss",
    "build_detector",
    "list_detectors",
    "load_detector_weights",
    "check_detector_kwargs",
    "detector_kwargs_allowed",
    "register_detector",
    "set_box_loss_alpha",
]

# detector name -> (box-regression loss key, classification loss key) in its loss dict
LOSS_KEYS: dict[str, tuple[str, str]] = {
    "fcos": ("bbox_regression", "classification"),
    "retinanet": ("bbox_regression", "classification"),
    "fasterrcnn": ("loss_box_reg", "loss_classifier"),
}

_Builder = Callable[..., nn.Module]
_DETECTORS: Registry[_Builder] = Registry("detector")


def register_detector(name: str) -> Callable[[_Builder], _Builder]:
    """Register ``fn(num_classes, *, backbone, box_loss, box_loss_weight, **kw)`` as ``name``.

    Raises:
        NoisyboxError: ``name`` is already registered.
    """
    return _DETECTORS.register(name)


def list_detectors() -> list[str]:
    """Registered detector names.

    >>> list_detectors()
    ['fasterrcnn', 'fcos', 'retinanet']
    """
    return _DETECTORS.names()


def build_box_loss(
    loss: str | nn.Module | LossSpec,
    *,
    alpha: float | None = None,
    loss_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module | None:
    """The box-loss module for ``loss``; ``None`` for torchvision's stock loss.

    Args:
        loss: a name from ``noisybox.losses.list_losses()``, ``STOCK_LOSS`` (stock), a
            :class:`~noisybox.settings.LossSpec` (its name, alpha and parameters), or a
            module mapping ``(pred Tensor[N, 4], target Tensor[N, 4])`` to ``Tensor[N]``.
        alpha: overrides the loss's default alpha (not with a spec, which holds its own).
        loss_kwargs: further keyword arguments for ``noisybox.losses.get_loss`` (not with
            a spec, which holds its own).

    Raises:
        ValueError: ``alpha``/``loss_kwargs`` with the stock loss or beside a spec, or an
            unknown name.
    """
    if isinstance(loss, LossSpec):
        if alpha is not None or loss_kwargs:
            raise ValueError(
                f"Expected alpha and loss_kwargs inside the loss spec {loss.id_label} but "
                f"got alpha={alpha!r}, loss_kwargs={loss_kwargs!r} beside it"
            )
        spec = loss
        loss, alpha, loss_kwargs = spec.name, spec.alpha, spec.kwargs
    if isinstance(loss, nn.Module):
        if alpha is not None and hasattr(loss, "alpha"):
            setattr(loss, "alpha", alpha)  # noqa: B010 (a plain attribute, not a submodule)
        return loss
    if loss == STOCK_LOSS:
        if alpha is not None and alpha != 1:
            raise ValueError(
                f"Expected no alpha with the stock torchvision loss but got alpha={alpha}"
            )
        return None
    kwargs = dict(loss_kwargs or {})
    if alpha is not None:
        kwargs["alpha"] = alpha
    return get_loss(loss, **kwargs)


def box_loss_modules(model: nn.Module) -> Iterator[nn.Module]:
    """The plugged box-loss modules inside ``model`` (none for a stock detector)."""
    for module in model.modules():
        loss = getattr(module, "box_loss", None)
        if isinstance(loss, nn.Module):
            yield loss


def set_box_loss_alpha(model: nn.Module, alpha: float) -> bool:
    """Set ``.alpha`` of every plugged box loss (the warm-up ramp); False if there is none."""
    found = False
    for loss in box_loss_modules(model):
        if hasattr(loss, "alpha"):
            setattr(loss, "alpha", float(alpha))  # noqa: B010
            found = True
    return found


def _anchor_sizes(strides: list[int], scale: float, octaves: int) -> tuple[tuple[int, ...], ...]:
    return tuple(
        tuple(int(round(scale * s * 2 ** (k / octaves))) for k in range(octaves)) for s in strides
    )


def _transform_kwargs(image_size: int | None, kw: dict[str, Any]) -> dict[str, Any]:
    if image_size is not None:
        if image_size < 32:
            raise ValueError(f"Expected image_size >= 32 but got {image_size}")
        kw.setdefault("min_size", image_size)
        kw.setdefault("max_size", image_size)
    return kw


@register_detector("fcos")
def _fcos(
    num_classes: int,
    *,
    backbone: str,
    box_loss: nn.Module | None,
    box_loss_weight: float,
    fpn_channels: int,
    weights_backbone: str | Path | None,
    trainable_layers: int | None,
    image_size: int | None,
    num_convs: int = 4,
    **kw: Any,
) -> nn.Module:
    if fpn_channels % 32:
        raise ValueError(
            f"Expected fpn_channels a multiple of 32 for FCOS (GroupNorm(32)) but got {fpn_channels}"
        )
    body = build_fpn_backbone(
        backbone,
        strides=(8, 16, 32),
        fpn_channels=fpn_channels,
        extra="p6p7",
        weights_backbone=weights_backbone,
        trainable_layers=trainable_layers,
    )
    anchors = AnchorGenerator(((8,), (16,), (32,), (64,), (128,)), ((1.0,),) * 5)
    head: nn.Module | None = None
    if box_loss is not None:
        head = PluggedFCOSHead(
            fpn_channels,
            1,
            num_classes,
            box_loss,
            box_loss_weight=box_loss_weight,
            num_convs=num_convs,
        )
    elif num_convs != 4:
        head = FCOSHead(fpn_channels, 1, num_classes, num_convs)
    kw.setdefault("score_thresh", 0.05)
    model = FCOS(
        body, num_classes, anchor_generator=anchors, head=head, **_transform_kwargs(image_size, kw)
    )
    _per_image_group_norm(model)
    return model


class PerImageGroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` that also accepts a batch of one image whose groups hold one value.

    GroupNorm normalises every image on its own, so its output for an image does not
    depend on the rest of the batch; torch's functional guard still refuses a batch of one
    when a group holds a single value (FCOS with 32 FPN channels in 32 groups on a 1x1
    pyramid level, e.g. P7 of a 128 px image), which crashed a last batch of one image and
    the evaluation of one image. The computation is torch's own ``group_norm`` without that
    guard: for batches it already accepted the result is bit for bit the same, and the
    state dict is that of ``nn.GroupNorm``.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return torch.group_norm(
            input, self.num_groups, self.weight, self.bias, self.eps, torch.backends.cudnn.enabled
        )


def _per_image_group_norm(model: nn.Module) -> None:
    """Replace every ``nn.GroupNorm`` of ``model`` by :class:`PerImageGroupNorm` in place."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.GroupNorm:
                norm = PerImageGroupNorm(
                    child.num_groups, child.num_channels, child.eps, child.affine
                )
                norm.load_state_dict(child.state_dict())
                setattr(module, name, norm)


@register_detector("retinanet")
def _retinanet(
    num_classes: int,
    *,
    backbone: str,
    box_loss: nn.Module | None,
    box_loss_weight: float,
    fpn_channels: int,
    weights_backbone: str | Path | None,
    trainable_layers: int | None,
    image_size: int | None,
    anchor_scale: float = 4.0,
    **kw: Any,
) -> nn.Module:
    body = build_fpn_backbone(
        backbone,
        strides=(8, 16, 32),
        fpn_channels=fpn_channels,
        extra="p6p7",
        weights_backbone=weights_backbone,
        trainable_layers=trainable_layers,
    )
    # torchvision's default is 4 x stride with 3 octave scales and 3 aspect ratios
    sizes = _anchor_sizes([8, 16, 32, 64, 128], anchor_scale, 3)
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    num_anchors = anchors.num_anchors_per_location()[0]
    head = RetinaNetHead(fpn_channels, num_anchors, num_classes)
    if box_loss is not None:
        head.regression_head = PluggedRetinaNetRegressionHead(
            fpn_channels, num_anchors, box_loss, box_loss_weight=box_loss_weight
        )
    kw.setdefault("detections_per_img", 100)
    return RetinaNet(
        body, num_classes, anchor_generator=anchors, head=head, **_transform_kwargs(image_size, kw)
    )


@register_detector("fasterrcnn")
def _fasterrcnn(
    num_classes: int,
    *,
    backbone: str,
    box_loss: nn.Module | None,
    box_loss_weight: float,
    fpn_channels: int,
    weights_backbone: str | Path | None,
    trainable_layers: int | None,
    image_size: int | None,
    anchor_scale: float = 8.0,
    **kw: Any,
) -> nn.Module:
    body = build_fpn_backbone(
        backbone,
        strides=(4, 8, 16, 32),
        fpn_channels=fpn_channels,
        extra="pool",
        weights_backbone=weights_backbone,
        trainable_layers=trainable_layers,
    )
    # torchvision's default is 8 x stride (32 ... 512) with 3 aspect ratios
    sizes = tuple((int(round(anchor_scale * s)),) for s in (4, 8, 16, 32, 64))
    anchors = AnchorGenerator(sizes, ((0.5, 1.0, 2.0),) * len(sizes))
    model = FasterRCNN(
        body, num_classes, rpn_anchor_generator=anchors, **_transform_kwargs(image_size, kw)
    )
    if box_loss is not None:
        model.roi_heads = PluggedRoIHeads.from_stock(
            model.roi_heads, box_loss, box_loss_weight=box_loss_weight
        )
    return model


def build_detector(
    name: str,
    num_classes: int,
    *,
    backbone: str = "resnet18",
    loss: str | nn.Module | LossSpec = STOCK_LOSS,
    alpha: float | None = None,
    loss_kwargs: Mapping[str, Any] | None = None,
    box_loss_weight: float | None = None,
    weights: str | Path | None = None,
    weights_backbone: str | Path | None = None,
    image_size: int | None = None,
    fpn_channels: int = 256,
    trainable_layers: int | None = None,
    **kw: Any,
) -> nn.Module:
    """A torchvision detector with the box-regression loss chosen by name.

    Weights are random unless a local file is given; nothing is downloaded.

    Args:
        name: one of :func:`list_detectors` (``fcos``, ``retinanet``, ``fasterrcnn``).
        num_classes: classes including background (``DetectionDataset.num_classes``).
        backbone: ``resnet18``, ``resnet34``, ``resnet50`` or ``mobilenet_v3_large``.
        loss: a ``noisybox.losses`` name (``alpha-iou``, ``alpha-giou``, ...),
            ``STOCK_LOSS`` (torchvision's) for the detector's stock loss (FCOS GIoU, RetinaNet L1,
            Faster R-CNN smooth L1), a :class:`~noisybox.settings.LossSpec` (then no
            ``alpha`` or ``loss_kwargs`` beside it), or a per-box loss module.
        alpha: overrides the loss's alpha (the target when warming up).
        loss_kwargs: more keyword arguments for ``noisybox.losses.get_loss``. A loss with
            an ``image_size`` left at ``None`` (MPDIoU) gets ``image_size`` (the square
            network input) when that is given.
        box_loss_weight: multiplier of a plugged box loss; default 1, and 10 for Faster
            R-CNN, whose torchvision normalisation divides by all sampled RoIs
            (mmdetection's GIoU Faster R-CNN uses the same weight).
        weights: local file with a full detector state dict (or a noisybox checkpoint),
            loaded with ``torch.load(weights_only=True)``.
        weights_backbone: local file with the classification network's state dict.
        image_size: the longest image side fed to the network (sets torchvision's
            ``min_size``/``max_size``); ``None`` keeps torchvision's 800/1333.
        fpn_channels: FPN width (256 in torchvision; 64 trains fast on a CPU). A multiple
            of 32 for FCOS.
        trainable_layers: freeze the body before its last ``trainable_layers`` stages.
        **kw: passed to the torchvision detector (``score_thresh``, ``nms_thresh``,
            ``detections_per_img``, ...) or the builder (``anchor_scale``, ``num_convs``).

    Returns:
        The detector (``nn.Module``) in training mode.

    Raises:
        ValueError: unknown detector, backbone or loss; ``num_classes < 2``.

    >>> model = build_detector("fcos", 3, loss=STOCK_LOSS, fpn_channels=32, image_size=64)
    >>> type(model).__name__, model.transform.max_size
    ('FCOS', 64)
    """
    builder = _DETECTORS.get(name)
    check_detector_kwargs(name, kw)
    if num_classes < 2:
        raise ValueError(f"Expected num_classes >= 2 (background included) but got {num_classes}")
    box_loss = build_box_loss(loss, alpha=alpha, loss_kwargs=loss_kwargs)
    if image_size is not None and getattr(box_loss, "image_size", False) is None:
        # MPDIoU normalises by the network input: the square image_size x image_size canvas
        setattr(box_loss, "image_size", float(image_size))  # noqa: B010
    if box_loss_weight is None:
        box_loss_weight = 10.0 if name == "fasterrcnn" else 1.0
    model = builder(
        num_classes,
        backbone=backbone,
        box_loss=box_loss,
        box_loss_weight=box_loss_weight,
        fpn_channels=fpn_channels,
        weights_backbone=weights_backbone,
        trainable_layers=trainable_layers,
        image_size=image_size,
        **kw,
    )
    if weights is not None:
        load_detector_weights(model, weights)
    return model


# The torchvision class each built-in builder ends in: its keyword arguments are accepted.
_TORCHVISION_CLASSES: dict[str, type[nn.Module]] = {
    "fcos": FCOS,
    "retinanet": RetinaNet,
    "fasterrcnn": FasterRCNN,
}
# Set by build_detector itself, never through **kw.
_SET_BY_BUILDER = {"self", "num_classes", "backbone", "head", "anchor_generator", "kwargs"}


def detector_kwargs_allowed(name: str) -> set[str] | None:
    """The extra keyword arguments :func:`build_detector` accepts for detector ``name``
    (``None``: any, for a registered builder that is not a torchvision class of ours).

    >>> "num_convs" in detector_kwargs_allowed("fcos"), "nms_thresh" in detector_kwargs_allowed("fcos")
    (True, True)
    """
    builder = _DETECTORS.get(name)
    params = inspect.signature(builder).parameters.values()
    allowed = {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}
    cls = _TORCHVISION_CLASSES.get(name)
    if cls is None:
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return None
    else:
        allowed |= set(inspect.signature(cls.__init__).parameters)
    return allowed - _SET_BY_BUILDER - {"box_loss", "box_loss_weight", "weights_backbone"}


def check_detector_kwargs(name: str, kwargs: Mapping[str, Any]) -> None:
    """Refuse keyword arguments detector ``name`` would silently ignore.

    torchvision's detectors take ``**kwargs`` and drop the ones they do not know, so a
    misspelt ``num_conv`` would train the default head without a word.

    Raises:
        ValueError: an unknown detector, or a key it does not accept (the valid ones listed).
    """
    allowed = detector_kwargs_allowed(name)
    if allowed is None:
        return
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        raise ValueError(
            f"Expected detector_kwargs of {name} among {', '.join(sorted(allowed))} but got "
            f"unknown {', '.join(map(repr, unknown))}"
        )


def _is_box_loss_key(key: str) -> bool:
    """``head.box_loss.running_mean`` and the like: state of a plugged box-loss module."""
    return ".box_loss." in f".{key}"


def load_detector_weights(model: nn.Module, path: str | Path) -> None:
    """Load a full detector state dict (or a noisybox checkpoint's ``model``) from ``path``.

    The state of a plugged box loss (Wise-IoU v3's running mean) belongs to the run that
    trained those weights, not to the network: it is neither required in nor taken from
    the file, and ``model`` keeps its own. (Resuming a run restores it, from the
    checkpoint's full state dict.)

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds no state dict or it does not fit the model.
    """
    state = read_weights_file(path, "detector weights")
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise ValueError(f"Expected a state dict in {path} but got {type(state).__name__}")
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not _is_box_loss_key(str(k))}
    state.update({k: v for k, v in own.items() if _is_box_loss_key(k)})
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ValueError(
            f"Expected weights in {path} to fit the detector but got: {first}"
        ) from None
