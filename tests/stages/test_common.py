"""atomic_dir: a stage's output folder is replaced whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wsss.stages.common import atomic_dir


def test_atomic_dir_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "parent" / "out"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("previous")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_dir(target) as tmp:
            (tmp / "new.txt").write_text("half")
            raise RuntimeError("boom")
    assert os.listdir(target.parent) == ["out"]
    assert os.listdir(target) == ["old.txt"]
    assert (target / "old.txt").read_text() == "previous"


def test_atomic_dir_success_replaces_content(tmp_path: Path) -> None:
    target = tmp_path / "parent" / "out"
    target.mkdir(parents=True)
    (target / "old.txt").write_text("previous")
    with atomic_dir(target) as tmp:
        assert tmp != target and not (tmp / "old.txt").exists()
        (tmp / "new.txt").write_text("fresh")
    assert os.listdir(target.parent) == ["out"]
    assert os.listdir(target) == ["new.txt"]


def test_atomic_dir_discards_stale_temp_dir(tmp_path: Path) -> None:
    target = tmp_path / "out"
    stale = tmp_path / ".out.tmp"  # left by a killed run
    stale.mkdir()
    (stale / "junk.txt").write_text("x")
    with atomic_dir(target) as tmp:
        (tmp / "new.txt").write_text("fresh")
    assert os.listdir(tmp_path) == ["out"]
    assert os.listdir(target) == ["new.txt"]


def test_atomic_dir_creates_missing_parent(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    with atomic_dir(target) as tmp:
        (tmp / "x").write_text("1")
    assert (target / "x").read_text() == "1"
    assert os.listdir(target.parent) == ["out"]
