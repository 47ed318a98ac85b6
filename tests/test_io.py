"""Artifact I/O: atomic writes leave nothing half-written; no pickles are ever loaded."""

from __future__ import annotations

import fractions

import numpy as np
import pytest
import torch

from wsss.io import (
    UnreadableFileError,
    atomic_path,
    load_cam_npz,
    load_checkpoint,
    save_cam_npz,
    save_checkpoint,
)
from wsss.models.backbones import load_pretrained


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
    with pytest.raises(UnreadableFileError, match="pickled fractions.Fraction"):
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


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text
    assert "weights_only" not in text and "allow_pickle" not in text  # never the unsafe advice
    return text


def test_truncated_or_empty_checkpoint_is_one_line_naming_the_file(tmp_path):
    save_checkpoint(tmp_path / "ok.pt", {"state_dict": {"w": torch.ones(1000)}})
    whole = (tmp_path / "ok.pt").read_bytes()
    for name, data in [("half.pt", whole[: len(whole) // 2]), ("empty.pt", b"")]:
        (tmp_path / name).write_bytes(data)
        with pytest.raises(UnreadableFileError) as info:
            load_checkpoint(tmp_path / name)
        _one_line(info.value)
        assert str(info.value).startswith(f"{tmp_path / name} is truncated or corrupt (")
        assert str(info.value).endswith("delete it and rerun the rule that writes it")
        assert isinstance(info.value, ValueError)  # one_line_errors reports it as one line


def test_tampered_checkpoint_names_the_file_and_the_refused_object(tmp_path):
    torch.save({"state_dict": {}, "obj": fractions.Fraction(1, 3)}, tmp_path / "model.pt")
    with pytest.raises(UnreadableFileError) as info:
        load_checkpoint(tmp_path / "model.pt")
    assert _one_line(info.value) == (
        f"{tmp_path / 'model.pt'} holds a pickled fractions.Fraction, which is never loaded: "
        "delete it and rerun the rule that writes it"
    )


def test_pretrained_weights_that_cannot_be_loaded_say_what_to_do(tmp_path):
    (tmp_path / "resnet.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(UnreadableFileError) as info:
        load_pretrained(torch.nn.Linear(2, 2), tmp_path / "resnet.pth")
    text = _one_line(info.value)
    assert text.startswith(f"{tmp_path / 'resnet.pth'} is not a weights-only checkpoint")
    assert text.endswith("replace it with a torchvision-format state dict file")


def test_cam_file_with_pickled_objects_or_garbage_is_refused_naming_the_file(tmp_path):
    objects = np.array([{"a": 1}], dtype=object)
    np.savez(tmp_path / "pickled.npz", keys=np.array([1]), high_res=objects)
    with pytest.raises(UnreadableFileError) as info:
        load_cam_npz(tmp_path / "pickled.npz")
    assert _one_line(info.value) == (
        f"{tmp_path / 'pickled.npz'} holds pickled objects, which are never loaded: "
        "delete its folder and rerun the rule that writes it"
    )
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    with pytest.raises(UnreadableFileError, match="garbage.npz holds pickled objects"):
        load_cam_npz(tmp_path / "garbage.npz")  # numpy reads unknown bytes as a pickle
    save_cam_npz(tmp_path / "ok.npz", keys=np.array([1]), high_res=np.ones((1, 2, 2)))
    (tmp_path / "cut.npz").write_bytes((tmp_path / "ok.npz").read_bytes()[:40])
    with pytest.raises(UnreadableFileError, match=r"cut\.npz is truncated or corrupt"):
        load_cam_npz(tmp_path / "cut.npz")
    with pytest.raises(FileNotFoundError, match="gone.npz"):
        load_cam_npz(tmp_path / "gone.npz")
