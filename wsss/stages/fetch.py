"""Stages fetch_weights, fetch_dataset and fetch_saliency (:mod:`wsss.fetch` does the work)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from wsss.data.voc import split_path
from wsss.fetch.catalog import RECIPES, resolve_source
from wsss.fetch.datasets import fetch_saliency, lay_out
from wsss.fetch.weights import fetch_weights
from wsss.io import read_ids, write_json

__all__ = ["run_fetch_dataset", "run_fetch_saliency", "run_fetch_weights"]

log = logging.getLogger(__name__)


def run_fetch_weights(name: str, out: str | os.PathLike, overrides: Mapping | None) -> None:
    manifest = fetch_weights(name, out, overrides=overrides)
    log.info("%s: %d tensors from %s", name, manifest["tensors"], manifest["source"])


def run_fetch_dataset(
    dataset: str,
    recipe: str,
    root: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overrides: Mapping[str, Mapping],
    cache: str | os.PathLike,
    keep_archives: bool,
) -> None:
    """Lay out what ``root`` lacks of ``recipe`` and write the manifest ``out`` last."""
    sources = {name: resolve_source(name, overrides.get(name)) for name in RECIPES[recipe]}
    manifest = lay_out(recipe, root, sources, cache, keep_archives=keep_archives)
    write_json(out, {"dataset": dataset, **manifest})


def run_fetch_saliency(
    dataset: str,
    root: str | os.PathLike,
    saliency_dir: str,
    split: str,
    archive: str,
    out: str | os.PathLike,
    *,
    overrides: Mapping | None,
    cache: str | os.PathLike,
    keep_archives: bool,
) -> None:
    """One saliency map per id of ``split`` under ``<root>/<saliency_dir>``; manifest ``out``."""
    ids = read_ids(split_path(root, split))
    manifest = fetch_saliency(
        root,
        saliency_dir,
        ids,
        resolve_source(archive, overrides),
        cache,
        keep_archives=keep_archives,
        describe=lambda: f"saliency maps ({archive})",
    )
    write_json(out, {"dataset": dataset, "split": split, **manifest})
    log.info("%s: %d saliency maps in %s", dataset, len(ids), Path(root) / saliency_dir)
