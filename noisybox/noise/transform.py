"""The paper's box noise as an albumentations ``DualTransform``, for noise on the fly."""

from __future__ import annotations

from typing import Any, Literal

import albumentations as A
import numpy as np
from albumentations.core.transforms_interface import BaseTransformInitSchema

from noisybox._deprecation import warn_renamed
from noisybox.noise.perturb import apply_box_noise, draw_box_noise
from noisybox.noise.spec import NOISE_KEYWORDS, NoiseSpec

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
        spec: the noise as one :class:`~noisybox.noise.NoiseSpec`, instead of the keywords
            above (giving both is a ``TypeError``; its annotation-level rates do not apply
            to a transform).

    Attributes:
        spec: the :class:`~noisybox.noise.NoiseSpec` drawn with; ``eta``, ``eta_w``,
            ``eta_h``, ``noise_model``, ``boundary``, ``ratio`` and ``min_size`` are its
            values (``eta_w`` and ``eta_h`` resolved).

    Raises:
        SettingError: a rate or ratio out of bounds, with the one-line message of
            :mod:`noisybox.settings`.
        NoisyboxError: an unknown noise model or boundary, or a bad ``min_size``.

    Targets:
        image, mask, bboxes, keypoints (only bboxes change)

    Reference:
        Alpha-IoU (He et al., NeurIPS 2021), §4.3, eq. 5.

    >>> BoxNoise(spec=NoiseSpec(eta=0.1)).spec == BoxNoise(eta=0.1).spec
    True
    """

    class InitSchema(BaseTransformInitSchema):
        # Checked by NoiseSpec (one-line messages), not by pydantic's report.
        eta: Any = None
        eta_w: Any = None
        eta_h: Any = None
        noise_model: Any = None
        model: Any = None
        boundary: Any = None
        ratio: Any = None
        min_size: Any = None
        spec: Any = None

        def model_dump(self, **kwargs: Any) -> dict[str, Any]:
            # pydantic would hand the spec (a dataclass) over as a dict
            return {**super().model_dump(**kwargs), "spec": self.spec}

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
        spec: NoiseSpec | None = None,
    ) -> None:
        super().__init__(p=p)
        if model is not None:  # the deprecated name of noise_model
            warn_renamed("model", "noise_model", "BoxNoise()")
            noise_model = model
        if spec is None:
            spec = NoiseSpec(
                noise_model=noise_model,
                eta=eta,
                eta_w=eta_w,
                eta_h=eta_h,
                boundary=boundary,
                ratio=ratio,
                min_size=min_size,
            )
        else:
            _refuse_keywords_with_spec(
                spec,
                {"eta": eta, "eta_w": eta_w, "eta_h": eta_h, "noise_model": noise_model},
                {"boundary": boundary, "ratio": ratio, "min_size": min_size, "model": model},
            )
        self.spec = spec
        self.eta = spec.eta
        self.eta_w = spec.eta_w
        self.eta_h = spec.eta_h
        self.noise_model = spec.noise_model
        self.boundary = spec.boundary
        self.ratio = spec.ratio
        self.min_size = spec.min_size

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
        deltas = draw_box_noise(self.random_generator, sizes, self.spec)
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
            pixels,
            sizes,
            box_deltas[moved],
            boundary=self.spec.boundary,
            min_size=self.spec.min_size,
        )
        out = bboxes.copy()
        out[moved, :4] = noisy / scale
        return out

    def get_transform_init_args_names(self) -> tuple[str, ...]:
        return ("eta", "eta_w", "eta_h", "noise_model", "boundary", "ratio", "min_size")


_DEFAULTS: dict[str, Any] = {
    "eta": 0.2,
    "eta_w": None,
    "eta_h": None,
    "noise_model": "uniform",
    "boundary": "shift",
    "ratio": 1.0,
    "min_size": 1.0,
    "model": None,
}


def _refuse_keywords_with_spec(spec: NoiseSpec, *given: dict[str, Any]) -> None:
    """Refuse ``spec`` beside a noise keyword other than its default.

    albumentations fills every argument with its default before ``__init__`` sees it, so
    a keyword is told given by its value (giving the default beside ``spec`` passes).

    Raises:
        TypeError: ``spec`` and a noise keyword.
        NoisyboxError: ``spec`` is not a :class:`NoiseSpec`.
    """
    if not isinstance(spec, NoiseSpec):
        raise TypeError(f"BoxNoise(): expected spec a NoiseSpec but got {type(spec).__name__}")
    loose = [
        name
        for values in given
        for name, value in values.items()
        if value != _DEFAULTS[name] and (name in NOISE_KEYWORDS or name == "model")
    ]
    if loose:
        raise TypeError(
            "BoxNoise(): expected either spec or the noise keywords but got both "
            f"(spec and {', '.join(loose)})"
        )
