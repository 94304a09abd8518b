"""What the names and the schedule of a study config are checked against: the installed
registries and ``TrainConfig`` (torch), or, for a stored config read back, nothing that
needs torch."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

__all__ = ["Registries", "STORED", "installed_registries", "stored_registries"]


def _registry_alpha(name: str) -> float | None:
    """The loss registry's alpha of ``name`` (``None`` for the stock loss), read without
    building the loss (:func:`noisybox.losses.registry.default_alpha`); imports torch."""
    from noisybox.losses.registry import default_alpha

    return default_alpha(name)


@dataclasses.dataclass(frozen=True)
class Registries:
    """What the names and the schedule of a config are checked against.

    :func:`installed_registries` reads the installed registries (losses, detectors,
    backbones) and the engine's ``TrainConfig``: ``run-benchmark``'s check, which imports
    torch. :data:`STORED` checks everything else (types, bounds, keys, datasets, noise) and
    takes names and schedule keys as written: what ``report`` and ``status`` use to read a
    ``benchmark.json`` that ``run-benchmark`` validated when it wrote it, without torch.

    Attributes:
        losses, detectors, backbones: the allowed names (``None``: any non-empty string).
        stock_loss: the detector's stock loss, which takes no alpha (``None``: not checked).
        train_fields: the ``TrainConfig`` fields a schedule may set (``None``: any key).
        default_alpha: a loss's alpha when the config gives none: the loss registry's.
            ``run-benchmark`` stores every alpha but the stock loss's (which has none), so
            a stored config reaches the registry, and torch, only for the stock loss or a
            hand-written ``benchmark.json`` that leaves an alpha out.
        check_train_config: judges one cell's ``TrainConfig`` values (raises on a bad one).
    """

    losses: tuple[str, ...] | None = None
    detectors: tuple[str, ...] | None = None
    backbones: tuple[str, ...] | None = None
    stock_loss: str | None = None
    train_fields: frozenset[str] | None = None
    default_alpha: Callable[[str], float | None] = _registry_alpha
    check_train_config: Callable[[dict[str, Any]], None] | None = None


#: The torch-free checks of a stored config (see :class:`Registries`).
STORED = Registries()


def installed_registries() -> Registries:
    """The installed registries and ``TrainConfig``: the full check (imports torch)."""
    from noisybox.detectors import list_backbones, list_detectors
    from noisybox.engine import TrainConfig
    from noisybox.losses import STOCK_LOSS, list_detector_losses

    def check_train_config(values: dict[str, Any]) -> None:
        TrainConfig.from_dict(values).validate()

    return Registries(
        losses=tuple(list_detector_losses()),
        detectors=tuple(sorted(list_detectors())),
        backbones=tuple(sorted(list_backbones())),
        stock_loss=STOCK_LOSS,
        train_fields=frozenset(f.name for f in dataclasses.fields(TrainConfig)),
        check_train_config=check_train_config,
    )


def stored_registries() -> Registries:
    """What a stored config read back is checked against: the installed registries where
    torch imports (a name that no longer exists is refused, as ``run-benchmark`` would),
    :data:`STORED` where it does not (names and schedule taken as stored)."""
    try:
        return installed_registries()
    except ImportError:
        return STORED
