"""Fully connected CRF (DenseCRF) refinement of class scores, with validated parameter sets.

Krähenbühl & Koltun, "Efficient Inference in Fully Connected CRFs with Gaussian Edge Potentials",
NeurIPS 2011; run through pydensecrf (``pip install pydensecrf2``), imported only when called.
Parameter sets used by the WSSS pipelines are listed in algorithms.md §1.5.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = [
    "GaussianKernel",
    "BilateralKernel",
    "CRFParams",
    "softmax_unary",
    "label_unary",
    "dense_crf",
]

_UNARY_KINDS = ("softmax", "labels")
_SOFTMAX_CLIP = 1e-5


@dataclass(frozen=True)
class GaussianKernel:
    """Smoothness kernel: position std ``sxy`` (pixels) and Potts weight ``compat``."""

    sxy: float
    compat: float


@dataclass(frozen=True)
class BilateralKernel:
    """Appearance kernel: position std ``sxy`` (pixels), colour std ``srgb``, Potts weight."""

    sxy: float
    srgb: float
    compat: float


def _number(value: Any, key: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise ValueError(f"CRF parameter {key!r} must be a finite number, got {value!r}")
    if value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"CRF parameter {key!r} must be {bound}, got {value!r}")
    return float(value)


def _check_keys(
    mapping: Any, where: str, allowed: tuple[str, ...], required: tuple[str, ...]
) -> None:
    if not isinstance(mapping, Mapping):
        raise ValueError(f"CRF parameter {where!r} must be a mapping, got {mapping!r}")
    prefix = f"{where}." if where != "crf_params" else ""
    unknown = sorted(str(k) for k in mapping if k not in allowed)
    if unknown:
        raise ValueError(
            f"unknown CRF parameter {prefix + unknown[0]!r} (allowed in {where}: {list(allowed)})"
        )
    for key in required:
        if key not in mapping:
            raise ValueError(f"missing CRF parameter {prefix + key!r}")


@dataclass(frozen=True)
class CRFParams:
    """One DenseCRF parameter set (algorithms.md §1.5), validated on construction.

    Attributes:
        unary: ``"softmax"`` (unary = -log(clip(p, 1e-5, 1)), no renormalisation) or
            ``"labels"`` (hard labels argmax(p) with confidence ``gt_prob``).
        gaussian: smoothness kernel.
        bilateral: appearance kernel on the RGB image.
        iterations: number of mean-field iterations (0 returns the normalised unary).
        gt_prob: probability of the assigned label, in (0, 1); required for ``"labels"`` and
            rejected for ``"softmax"`` (where it would be silently unused).
    """

    unary: str
    gaussian: GaussianKernel
    bilateral: BilateralKernel
    iterations: int
    gt_prob: float | None = None

    def __post_init__(self) -> None:
        if self.unary not in _UNARY_KINDS:
            raise ValueError(
                f"CRF parameter 'unary' must be one of {_UNARY_KINDS}, got {self.unary!r}"
            )
        if self.unary == "labels":
            if self.gt_prob is None:
                raise ValueError("missing CRF parameter 'gt_prob' (needed by unary 'labels')")
            prob = _number(self.gt_prob, "gt_prob", positive=True)
            if prob >= 1:
                raise ValueError(f"CRF parameter 'gt_prob' must be in (0, 1), got {self.gt_prob!r}")
        elif self.gt_prob is not None:
            raise ValueError("CRF parameter 'gt_prob' is only used when unary is 'labels'")
        if not isinstance(self.gaussian, GaussianKernel):
            raise ValueError(
                f"CRF parameter 'gaussian' must be a GaussianKernel, got {self.gaussian!r}"
            )
        if not isinstance(self.bilateral, BilateralKernel):
            raise ValueError(
                f"CRF parameter 'bilateral' must be a BilateralKernel, got {self.bilateral!r}"
            )
        _number(self.gaussian.sxy, "gaussian.sxy", positive=True)
        _number(self.gaussian.compat, "gaussian.compat", positive=False)
        _number(self.bilateral.sxy, "bilateral.sxy", positive=True)
        _number(self.bilateral.srgb, "bilateral.srgb", positive=True)
        _number(self.bilateral.compat, "bilateral.compat", positive=False)
        if isinstance(self.iterations, bool) or not isinstance(self.iterations, Integral):
            raise ValueError(
                f"CRF parameter 'iterations' must be an integer, got {self.iterations!r}"
            )
        if self.iterations < 0:
            raise ValueError(f"CRF parameter 'iterations' must be >= 0, got {self.iterations!r}")

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> CRFParams:
        """Build from a config mapping; unknown, missing or bad keys raise ``ValueError``.

        Args:
            params: ``{"unary", "gaussian": {"sxy", "compat"}, "bilateral": {"sxy", "srgb",
                "compat"}, "iterations"}`` plus ``"gt_prob"`` for the ``"labels"`` unary.
        """
        _check_keys(
            params,
            "crf_params",
            ("unary", "gt_prob", "gaussian", "bilateral", "iterations"),
            ("unary", "gaussian", "bilateral", "iterations"),
        )
        gaussian, bilateral = params["gaussian"], params["bilateral"]
        _check_keys(gaussian, "gaussian", ("sxy", "compat"), ("sxy", "compat"))
        _check_keys(bilateral, "bilateral", ("sxy", "srgb", "compat"), ("sxy", "srgb", "compat"))
        return cls(
            unary=params["unary"],
            gaussian=GaussianKernel(sxy=gaussian["sxy"], compat=gaussian["compat"]),
            bilateral=BilateralKernel(
                sxy=bilateral["sxy"], srgb=bilateral["srgb"], compat=bilateral["compat"]
            ),
            iterations=params["iterations"],
            gt_prob=params.get("gt_prob"),
        )

    @classmethod
    def parse(cls, params: Mapping[str, Any] | CRFParams, key: str = "crf") -> CRFParams:
        """``params`` itself, or :meth:`from_mapping` of it with ``key`` (where the mapping
        came from, e.g. ``crf_presets.irn_label``) leading a bad value's one-line error: stages
        parse their preset once, before any image, not per image."""
        if isinstance(params, CRFParams):
            return params
        try:
            return cls.from_mapping(params)
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None

    def to_mapping(self) -> dict[str, Any]:
        """The config mapping :meth:`from_mapping` reads (the stages' manifests record it)."""
        out: dict[str, Any] = {"unary": self.unary}
        if self.gt_prob is not None:
            out["gt_prob"] = self.gt_prob
        out["gaussian"] = {"sxy": self.gaussian.sxy, "compat": self.gaussian.compat}
        out["bilateral"] = {
            "sxy": self.bilateral.sxy,
            "srgb": self.bilateral.srgb,
            "compat": self.bilateral.compat,
        }
        out["iterations"] = self.iterations
        return out


def softmax_unary(probs: np.ndarray) -> np.ndarray:
    """Unary energy of class scores, pydensecrf ``unary_from_softmax`` semantics.

    Args:
        probs: (K, H, W) scores; they need not sum to 1 (no renormalisation) and values outside
            [1e-5, 1] are clipped.

    Returns:
        (K, H*W) float32 C-contiguous energy -log(clip(p, 1e-5, 1)).
    """
    probs = np.asarray(probs, dtype=np.float64)
    energy = -np.log(np.clip(probs, _SOFTMAX_CLIP, 1.0))
    return np.ascontiguousarray(energy.reshape(probs.shape[0], -1), dtype=np.float32)


def label_unary(labels: np.ndarray, num_labels: int, gt_prob: float) -> np.ndarray:
    """Unary energy of hard labels, pydensecrf ``unary_from_labels(zero_unsure=False)`` semantics.

    Args:
        labels: (H, W) integer labels in [0, num_labels); label 0 is an ordinary label.
        num_labels: K >= 2.
        gt_prob: probability given to the assigned label; the others share 1 - gt_prob equally.

    Returns:
        (K, H*W) float32 C-contiguous energy: -log(gt_prob) for the assigned label,
        -log((1 - gt_prob) / (K - 1)) elsewhere.

    Raises:
        ValueError: if num_labels < 2 or a label is outside [0, num_labels).
    """
    if num_labels < 2:
        raise ValueError(f"label_unary needs num_labels >= 2, got {num_labels}")
    flat = np.asarray(labels).ravel()
    if flat.size and (flat.min() < 0 or flat.max() >= num_labels):
        raise ValueError(f"labels must lie in [0, {num_labels}), got [{flat.min()}, {flat.max()}]")
    energy = np.full((num_labels, flat.size), -math.log((1.0 - gt_prob) / (num_labels - 1)))
    energy[flat, np.arange(flat.size)] = -math.log(gt_prob)
    return energy.astype(np.float32)


def _import_densecrf() -> Any:
    try:
        import pydensecrf.densecrf as densecrf
    except ImportError as err:
        raise ImportError(
            "dense_crf needs pydensecrf; install it with `pip install pydensecrf2`"
        ) from err
    return densecrf


def dense_crf(
    image_uint8_hwc: np.ndarray,
    probs_khw: np.ndarray,
    params: Mapping[str, Any] | CRFParams,
) -> np.ndarray:
    """Mean-field posterior of a fully connected CRF over class scores.

    Args:
        image_uint8_hwc: (H, W, 3) uint8 RGB image at the scores' resolution (the raw image, not
            a normalised one); a non-contiguous view is copied.
        probs_khw: (K, H, W) float class scores, K >= 1 (background plane included when used).
        params: a :class:`CRFParams` or the config mapping for :meth:`CRFParams.from_mapping`.

    Returns:
        (K, H, W) float32 posterior Q (sums to 1 over K at every pixel); all ones when K == 1.

    Raises:
        ValueError: on bad parameters (the key is named), shapes (both named) or dtypes.
        ImportError: with the install hint if pydensecrf is missing.
    """
    cfg = params if isinstance(params, CRFParams) else CRFParams.from_mapping(params)
    probs = np.asarray(probs_khw)
    image = np.asarray(image_uint8_hwc)
    if probs.ndim != 3 or probs.shape[0] < 1:
        raise ValueError(f"probs must have shape (K, H, W) with K >= 1, got {probs.shape}")
    if not np.issubdtype(probs.dtype, np.floating) or not np.isfinite(probs).all():
        raise ValueError(f"probs must be finite floats, got dtype {probs.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[:2] != probs.shape[1:]:
        raise ValueError(
            f"image shape {image.shape} must be (H, W, 3) matching probs shape {probs.shape}"
        )
    if image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 RGB, got dtype {image.dtype}")
    num_labels, height, width = probs.shape
    if num_labels == 1:
        return np.ones(probs.shape, dtype=np.float32)

    densecrf = _import_densecrf()
    if cfg.unary == "softmax":
        unary = softmax_unary(probs)
    else:
        assert cfg.gt_prob is not None  # guaranteed by CRFParams validation
        unary = label_unary(probs.argmax(axis=0), num_labels, cfg.gt_prob)
    crf = densecrf.DenseCRF2D(width, height, num_labels)
    crf.setUnaryEnergy(unary)
    crf.addPairwiseGaussian(sxy=cfg.gaussian.sxy, compat=cfg.gaussian.compat)
    crf.addPairwiseBilateral(
        sxy=cfg.bilateral.sxy,
        srgb=cfg.bilateral.srgb,
        rgbim=np.ascontiguousarray(image),
        compat=cfg.bilateral.compat,
    )
    posterior = np.asarray(crf.inference(cfg.iterations), dtype=np.float32)
    return posterior.reshape(num_labels, height, width)
