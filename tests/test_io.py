"""Artifact I/O: atomic writes leave nothing half-written; no pickles are ever loaded."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
import torch

from wsss.io import atomic_path, load_cam_npz, load_checkpoint, save_cam_npz, save_checkpoint


def test_atomic_path_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_atomic_path_publishes_readable_file(tmp_path):
    with atomic_path(tmp_path / "a" / "b.txt") as tmp:
        tmp.write_text("done")
    path = tmp_path / "a" / "b.txt"
    assert path.read_text() == "done"
    assert path.stat().st_mode & 0o044  # group/other can read shared results


def test_cam_npz_round_trip_and_shape_check(tmp_path):
    keys, cams = np.array([2, 5]), np.random.default_rng(0).random((2, 4, 3)).astype(np.float32)
    save_cam_npz(tmp_path / "x.npz", keys=keys, high_res=cams)
    back = load_cam_npz(tmp_path / "x.npz")
    assert back["keys"].dtype == np.int64 and np.array_equal(back["keys"], keys)
    assert np.array_equal(back["high_res"], cams)
    with pytest.raises(ValueError, match="do not match"):
        save_cam_npz(tmp_path / "y.npz", keys=keys, high_res=cams[:1])


def test_checkpoint_refuses_arbitrary_pickles(tmp_path):
    save_checkpoint(tmp_path / "ok.pt", {"state_dict": {"w": torch.ones(2)}, "name": "cam"})
    assert load_checkpoint(tmp_path / "ok.pt")["name"] == "cam"

    torch.save({"obj": fractions.Fraction(1, 3)}, tmp_path / "evil.pt")  # not a plain tensor dict
    with pytest.raises(Exception, match="[Ww]eights only"):
        load_checkpoint(tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_equal_checkpoints_are_equal_bytes_whatever_their_file_name(tmp_path):
    # Shared results are compared by checksum: a file name must not leak into the bytes.
    payload = {"state_dict": {"w": torch.arange(6.0).reshape(2, 3)}, "step": 3}
    save_checkpoint(tmp_path / "a.pt", payload)
    save_checkpoint(tmp_path / "other_name.pt", payload)
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "other_name.pt").read_bytes()
    assert torch.equal(
        load_checkpoint(tmp_path / "a.pt")["state_dict"]["w"], payload["state_dict"]["w"]
    )
