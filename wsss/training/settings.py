"""A training stage's ``train`` settings, typed and checked once: the rule scripts build them
from the config (:meth:`TrainSettings.from_mapping`), so a missing or unknown key fails in one
line before any data is read. Their defaults live in one place, the workflow's schema
(``threads``: 1), which the workflow applies before the scripts run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["TrainSettings"]


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
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(str(k) for k in train if k not in names)
        if unknown:
            raise ValueError(f"{key}.{unknown[0]}: unknown train setting (allowed: {names})")
        required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
        missing = [name for name in required if name not in train]
        if missing:
            raise ValueError(f"{key}.{missing[0]}: missing (the train settings need {required})")
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
