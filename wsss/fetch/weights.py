"""The ``fetch_weights`` step: download → convert → check against the backbone → atomic write."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import torch

from wsss.fetch.catalog import WEIGHTS, resolve_source
from wsss.fetch.convert import convert_weights
from wsss.fetch.download import check_digest, obtain
from wsss.io import atomic_path, write_json

__all__ = ["fetch_weights"]

log = logging.getLogger(__name__)


def fetch_weights(name: str, out: str | os.PathLike, *, overrides: Mapping | None = None) -> dict:
    """Download (or take the local file of) table entry ``name``, convert it to wsss names,
    check it strictly against its backbone, and write ``out`` atomically (plus
    ``<out>.json``: source, digests). The original download is deleted afterwards.

    Returns:
        the manifest written next to ``out``.

    Raises:
        KeyError: unknown name. ValueError (``FetchError``, ``ChecksumError``): download,
        checksum or conversion problems, in one line.
    """
    if name not in WEIGHTS:
        raise KeyError(f"{name!r} is not in the weights table ({sorted(WEIGHTS)})")
    entry = WEIGHTS[name]
    source = resolve_source(name, overrides)
    out = Path(out)
    original = obtain(source, out.parent)
    try:
        state = convert_weights(entry.converter, original, entry.backbone)
        sha256 = check_digest(original, None)
    finally:
        if source.path is None:
            original.unlink(missing_ok=True)  # the converted file is what the rules read
    with atomic_path(out) as tmp, open(tmp, "wb") as f:
        torch.save(state, f)
    manifest = {
        "name": name,
        "origin": entry.origin,
        "source": source.path or source.url,
        "expected_digest": source.digest,
        "sha256": sha256,
        "converter": entry.converter,
        "backbone": dict(entry.backbone),
        "tensors": len(state),
    }
    write_json(out.with_suffix(".json"), manifest)
    if source.digest is None:
        log.warning(
            "%s: no published checksum; the file converted and fits %s key for key (sha256 %s; "
            "pin it with weights.sources.%s.digest: sha256:%s)",
            name, entry.backbone, sha256, name, sha256,
        )  # fmt: skip
    return manifest
