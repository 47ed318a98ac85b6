"""The up-front writability check of the results folder (issue 21: a read-only results
subfolder failed late, with a traceback)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import wsss.utils.writable as writable
from wsss.utils.writable import first_unwritable_folder, unwritable_message


def _tree(base: Path) -> Path:
    results = base / "results"
    for sub in ("synth/irn/cams", "synth/irn/pseudo", "synth/cam_only", "voc"):
        (results / sub).mkdir(parents=True)
    (results / "synth" / "irn" / "cams" / "deep").mkdir()  # below the checked depth
    return results


def _deny(monkeypatch: pytest.MonkeyPatch, denied: set[Path]) -> None:
    """os.access as a non-root user sees it: no write permission on ``denied`` (root, which
    runs these tests in some containers, may write anywhere)."""
    real = os.access
    monkeypatch.setattr(
        writable.os, "access", lambda p, mode: Path(p) not in denied and real(p, mode)
    )


def test_a_read_only_stage_folder_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    results = _tree(tmp_path)
    assert first_unwritable_folder(results) is None
    _deny(monkeypatch, {results / "synth" / "irn" / "pseudo"})
    assert first_unwritable_folder(results) == results / "synth" / "irn" / "pseudo"
    assert unwritable_message(results) == (
        f"cannot write in {results / 'synth' / 'irn' / 'pseudo'}: make it writable (chmod u+w) "
        "or remove it, then rerun"
    )


def test_folders_below_the_depth_are_not_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = _tree(tmp_path)
    _deny(monkeypatch, {results / "synth" / "irn" / "cams" / "deep"})
    assert first_unwritable_folder(results, depth=3) is None
    assert first_unwritable_folder(results, depth=4) == results / "synth" / "irn" / "cams" / "deep"


def test_a_missing_results_folder_checks_where_it_will_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert first_unwritable_folder(tmp_path / "results" / "x") is None
    _deny(monkeypatch, {tmp_path})
    assert first_unwritable_folder(tmp_path / "results" / "x") == tmp_path


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write in read-only folders")
def test_a_chmod_read_only_folder_is_found(tmp_path: Path) -> None:
    results = _tree(tmp_path)
    folder = results / "synth" / "cam_only"
    folder.chmod(0o555)
    try:
        assert first_unwritable_folder(results) == folder
    finally:
        folder.chmod(0o755)
