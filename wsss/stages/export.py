"""Stages export, export_dataset and verify: shareable archives of result directories."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from wsss.export import export_directory, verify_archive
from wsss.io import atomic_path

__all__ = ["run_export", "run_verify"]

log = logging.getLogger(__name__)


def run_export(
    directory: str | os.PathLike,
    archive: str | os.PathLike,
    *,
    arcname: str,
    exclude: Sequence[str] = (),
    include: Sequence[str] | None = None,
) -> None:
    """Archive ``directory`` below ``arcname`` with its ``SHA256SUMS`` (see
    :func:`wsss.export.export_directory`); ``<archive>.sha256`` is written beside it."""
    digest = export_directory(directory, archive, arcname=arcname, exclude=exclude, include=include)
    log.info("exported %s to %s (sha256 %s)", directory, archive, digest)


def run_verify(archive: str | os.PathLike, out_report: str | os.PathLike) -> None:
    """Check ``archive`` against its checksums; write the one-line verdict to ``out_report``.

    Raises:
        ValueError: naming what was altered, missing, unlisted or unsafe (no report written).
    """
    result = verify_archive(archive)
    if not result.ok:
        raise ValueError(f"{archive}: {result.summary()}")
    with atomic_path(out_report) as tmp:
        tmp.write_text(f"{archive}: {result.summary()}\n")
    log.info("%s: %s", archive, result.summary())
