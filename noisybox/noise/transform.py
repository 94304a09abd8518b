"""The paper's box noise as an albumentations ``DualTransform``, for noise on the fly."""

from __future__ import annotations

from typing import Any, Literal

import albumentations as A
import numpy as np
from albumentations.core.transforms_interface import BaseTransformInitSchema
from pydantic import Field, ValidationInfo, field_validator

from noisybox._deprecation import warn_renamed
from noisybox.noise.perturb import apply_box_noise, draw_box_noise, resolve_eta
from noisybox.noise.registry import get_noise_model
from noisybox.settings import ETA

__all__ = ["BoxNoise"]


class BoxNoise(A.DualTransform):
    """Perturb the bounding boxes with the Alpha-IoU paper's noise; images are untouched.

    Works inside ``A.Compose(..., bbox_params=A.BboxParams(format=...))`` for every
    albumentations box format (``coco``, ``pascal_voc``, ``yolo``, ...): albumentations hands
    the boxes over as normalised ``xyxy``, which are taken to pixels with the image shape so
    that ``min_size`` is in pixels, perturbed by :func:`~noisybox.noise.apply_box_noise` and
    handed back. Draws come from the transform's ``self.random_generator``, so
    ``A.Compose(..., seed=s)`` reproduces them.

    Args:
        eta: noise rate of both axes, in ``[0, 1)``.
        eta_w: horizontal rate overriding ``eta``.
        eta_h: vertical rate overriding ``eta``.
        noise_model: a registered noise model (``model`` is its deprecated alias).
        boundary: ``"shift"`` (paper, eq. 5) or ``"truncate"``.
        ratio: share of boxes perturbed per call.
        min_size: minimum box side in pixels.
        p: probability of applying the transform.

    Targets:
        image, mask, bboxes, keypoints (only bboxes change)

    Reference:
        Alpha-IoU (He et al., NeurIPS 2021), §4.3, eq. 5.
    """

    class InitSchema(BaseTransformInitSchema):
        eta: float
        eta_w: float | None = None
        eta_h: float | None = None
        noise_model: str
        model: str | None = None
        boundary: Literal["shift", "truncate"]
        ratio: float = Field(ge=0, le=1)
        min_size: float = Field(gt=0)

        @field_validator("eta", "eta_w", "eta_h", mode="before")
        @classmethod
        def _rate(cls, value: Any, info: ValidationInfo) -> float | None:
            return None if value is None else ETA.check(value, info.field_name)

    def __init__(
        self,
        eta: float = 0.2,
        eta_w: float | None = None,
        eta_h: float | None = None,
        noise_model: str = "uniform",
        boundary: Literal["shift", "truncate"] = "shift",
        ratio: float = 1.0,
        min_size: float = 1.0,
        p: float = 1.0,
        model: str | None = None,
    ) -> None:
        super().__init__(p=p)
        if model is not None:  # the deprecated name of noise_model
            warn_renamed("model", "noise_model", "BoxNoise()")
            noise_model = model
        get_noise_model(noise_model)
        self.eta = eta
        self.eta_w = eta_w
        self.eta_h = eta_h
        self.noise_model = noise_model
        self.boundary = boundary
        self.ratio = ratio
        self.min_size = min_size

    def get_params_dependent_on_data(
        self, params: dict[str, Any], data: dict[str, Any]
    ) -> dict[str, Any]:
        """Draw the offsets for the boxes of this call (the only random draw)."""
        height, width = params["shape"][:2]
        raw = data.get("bboxes")
        bboxes = (
            np.zeros((0, 4))
            if raw is None or np.size(raw) == 0
            else np.asarray(raw, dtype=np.float64)
        )
        sizes = (bboxes[:, 2:4] - bboxes[:, 0:2]) * np.array([width, height], dtype=np.float64)
        eta_w, eta_h = resolve_eta(self.eta, self.eta_w, self.eta_h)
        deltas = draw_box_noise(
            self.random_generator,
            sizes,
            eta_w,
            eta_h,
            noise_model=self.noise_model,
            ratio=self.ratio,
        )
        return {"box_deltas": deltas}

    def apply(self, img: np.ndarray, **params: Any) -> np.ndarray:
        return img

    def apply_to_mask(self, mask: np.ndarray, **params: Any) -> np.ndarray:
        return mask

    def apply_to_keypoints(self, keypoints: np.ndarray, **params: Any) -> np.ndarray:
        return keypoints

    def apply_to_bboxes(
        self, bboxes: np.ndarray, box_deltas: np.ndarray | None = None, **params: Any
    ) -> np.ndarray:
        """Apply the drawn offsets to normalised ``xyxy`` boxes ``float[N, 4+]``."""
        if box_deltas is None or bboxes.shape[0] == 0:
            return bboxes
        height, width = params["shape"][:2]
        moved = np.any(box_deltas != 0.0, axis=1)
        if not moved.any():
            return bboxes
        scale = np.array([width, height, width, height], dtype=np.float64)
        pixels = bboxes[moved, :4].astype(np.float64) * scale
        sizes = np.broadcast_to(np.array([width, height], dtype=np.float64), (pixels.shape[0], 2))
        noisy = apply_box_noise(
            pixels, sizes, box_deltas[moved], boundary=self.boundary, min_size=self.min_size
        )
        out = bboxes.copy()
        out[moved, :4] = noisy / scale
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("eta", "eta_w", "eta_h", "noise_model", "boundary", "ratio", "min_size")
