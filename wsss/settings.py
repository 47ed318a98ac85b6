"""Typed stage settings, checked once: the rule scripts build them from the config sections
(``from_mapping``), so a missing, unknown or contradictory key fails in one line before any data
is read. Each default is declared once: the workflow's schema (``train.threads``: 1), which the
workflow applies before the scripts run, or, for keys whose section a seg model's own keys
are merged into (``seg.infer``), a field default here."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["CamInferSettings", "SegInferSettings", "TrainSettings"]

_NORMALIZATIONS = ("max", "minmax", "minmax_half")
_CAM_PROCEDURES = ("irn", "release")
_SEG_INFER_MODES = ("whole", "slide")


def _check_keys(cls: type, section: Mapping[str, Any], key: str) -> None:
    """Raise ``ValueError`` naming ``<key>.<name>`` for a key ``cls`` lacks or a required one
    ``section`` lacks."""
    fields = dataclasses.fields(cls)
    names = [f.name for f in fields]
    unknown = sorted(str(k) for k in section if k not in names)
    if unknown:
        raise ValueError(f"{key}.{unknown[0]}: unknown setting (allowed: {names})")
    required = [f.name for f in fields if f.default is dataclasses.MISSING]
    missing = [name for name in required if name not in section]
    if missing:
        raise ValueError(f"{key}.{missing[0]}: missing (the settings need {required})")


@dataclass(frozen=True)
class TrainSettings(Mapping):
    """The keys of a recipe's ``train`` section (the schema's ``train`` definition documents
    each), plus ``sync_bn``, which :func:`wsss.training.launch.run_stage` sets for a world of
    several processes (None: one process).

    It is also a read-only mapping of the keys it was built from (``sync_bn`` only when set), so
    ``dict(settings)`` is the config section itself: run fingerprints stay what they were.
    """

    steps: int
    batch_size: int
    optimizer: str
    lr: float
    momentum: float
    weight_decay: float
    poly_power: float
    lr_mults: Mapping[str, float]
    crop_size: int
    scale_range: list[float]
    jitter: float
    num_workers: int
    checkpoint_every: int
    threads: int
    sync_bn: bool | None = None

    @classmethod
    def from_mapping(cls, train: Mapping[str, Any], key: str = "train") -> TrainSettings:
        """Build from a ``train`` section; an unknown or missing key raises ``ValueError``
        naming ``<key>.<name>`` (values are kept as given: the schema checked their types)."""
        _check_keys(cls, train, key)
        return cls(**train)

    @classmethod
    def parse(cls, train: Mapping[str, Any] | TrainSettings) -> TrainSettings:
        """``train`` itself, or :meth:`from_mapping` of it."""
        return train if isinstance(train, TrainSettings) else cls.from_mapping(train)

    def _keys(self) -> list[str]:
        return [
            f.name
            for f in dataclasses.fields(self)
            if not (f.name == "sync_bn" and self.sync_bn is None)
        ]

    def __getitem__(self, name: str) -> Any:
        if name not in self._keys():
            raise KeyError(name)
        return getattr(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())


@dataclass(frozen=True)
class CamInferSettings:
    """A CAM recipe's ``infer`` section: test-time ``scales`` × ``flip``, how each class map
    is ``normalization``-ed (:func:`wsss.cam.inference.normalize_present`; schema default
    ``max``) and the resizing ``procedure`` (``irn`` or ``release``; schema default ``irn``)."""

    scales: list[float]
    flip: bool
    normalization: str
    procedure: str

    def __post_init__(self) -> None:
        if self.normalization not in _NORMALIZATIONS:
            raise ValueError(
                f"infer.normalization: {self.normalization!r} is none of {list(_NORMALIZATIONS)}"
            )
        if self.procedure not in _CAM_PROCEDURES:
            raise ValueError(
                f"infer.procedure: {self.procedure!r} is none of {list(_CAM_PROCEDURES)}"
            )

    @classmethod
    def from_mapping(cls, infer: Mapping[str, Any], key: str = "infer") -> CamInferSettings:
        _check_keys(cls, infer, key)
        return cls(**infer)


@dataclass(frozen=True)
class SegInferSettings:
    """A seg model's inference settings (``seg.infer`` with the model's own ``infer`` keys
    merged in, :func:`wsss.workflow.datasets.seg_settings`): ``scales`` × ``flip`` on the whole
    image (``mode`` ``whole``, the default) or in ``crop_size`` windows every ``stride`` pixels
    (``slide``), which only ``slide`` takes and needs."""

    scales: list[float]
    flip: bool
    mode: str = "whole"
    crop_size: int | None = None
    stride: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in _SEG_INFER_MODES:
            raise ValueError(f"infer.mode: {self.mode!r} is none of {list(_SEG_INFER_MODES)}")
        window = [self.crop_size is not None, self.stride is not None]
        if window != [self.mode == "slide"] * 2:
            raise ValueError(
                f"infer: mode 'slide' needs crop_size and stride, mode 'whole' takes neither "
                f"(mode {self.mode!r}, crop_size {self.crop_size}, stride {self.stride})"
            )

    @classmethod
    def from_mapping(cls, infer: Mapping[str, Any], key: str = "infer") -> SegInferSettings:
        _check_keys(cls, infer, key)
        return cls(**infer)
