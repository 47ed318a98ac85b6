"""MXNet NDArray-list files, assembled byte by byte from the documented layout (MXNet's
NDArray::Save / dmlc stream format), read back with numpy only."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from wsss.fetch.mxnet import is_ndarray_list, read_ndarray_list

FLAGS = {
    np.dtype(np.float32): 0,
    np.dtype(np.float64): 1,
    np.dtype(np.float16): 2,
    np.dtype(np.uint8): 3,
    np.dtype(np.int32): 4,
}


def _array_v2(a: np.ndarray) -> bytes:
    out = struct.pack("<I", 0xF993FAC9) + struct.pack("<i", 0)  # magic, dense storage
    out += struct.pack("<I", a.ndim) + b"".join(struct.pack("<q", d) for d in a.shape)
    out += struct.pack("<ii", 1, 0)  # cpu, device 0
    out += struct.pack("<i", FLAGS[a.dtype]) + a.astype(a.dtype.newbyteorder("<")).tobytes()
    return out


def _array_v1(a: np.ndarray) -> bytes:
    out = struct.pack("<I", 0xF993FAC8)
    out += struct.pack("<I", a.ndim) + b"".join(struct.pack("<q", d) for d in a.shape)
    out += struct.pack("<ii", 2, 1)  # saved from a GPU: still read to the CPU
    return out + struct.pack("<i", FLAGS[a.dtype]) + a.tobytes()


def _array_legacy(a: np.ndarray) -> bytes:  # before the magics: ndim, then uint32 sizes
    out = struct.pack("<I", a.ndim) + b"".join(struct.pack("<I", d) for d in a.shape)
    out += struct.pack("<ii", 1, 0)
    return out + struct.pack("<i", FLAGS[a.dtype]) + a.tobytes()


def ndarray_list(named: dict[str, np.ndarray], encode=_array_v2) -> bytes:
    out = struct.pack("<QQ", 0x112, 0) + struct.pack("<Q", len(named))
    out += b"".join(encode(a) for a in named.values())
    out += struct.pack("<Q", len(named))
    for name in named:
        raw = name.encode()
        out += struct.pack("<Q", len(raw)) + raw
    return out


@pytest.mark.parametrize("encode", [_array_v2, _array_v1, _array_legacy])
def test_arrays_come_back_with_names_shapes_dtypes_and_values(tmp_path, encode):
    rng = np.random.default_rng(0)
    named = {
        "arg:conv1a_weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "aux:bn7_moving_var": rng.random(5).astype(np.float64),
        "arg:half": rng.standard_normal((2, 3)).astype(np.float16),
        "arg:bytes": np.arange(6, dtype=np.uint8).reshape(3, 2),
        "arg:ints": np.array([-3, 7], dtype=np.int32),
    }
    path = tmp_path / "x.params"
    path.write_bytes(ndarray_list(named, encode))
    assert is_ndarray_list(path)
    got = read_ndarray_list(path)
    assert list(got) == list(named)
    for name, array in named.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape
        np.testing.assert_array_equal(got[name], array)


def test_truncated_file_names_the_file(tmp_path):
    data = ndarray_list({"arg:w": np.ones((8, 8), np.float32)})
    path = tmp_path / "cut.params"
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(ValueError, match="cut.params.*truncated"):
        read_ndarray_list(path)


def test_other_files_are_refused(tmp_path):
    path = tmp_path / "model.pth"
    path.write_bytes(b"PK\x03\x04" + bytes(40))
    assert not is_ndarray_list(path)
    with pytest.raises(ValueError, match="not an MXNet NDArray list"):
        read_ndarray_list(path)
    path.write_bytes(ndarray_list({"arg:w": np.ones(2, np.float32)}) + b"xx")
    with pytest.raises(ValueError, match="trailing"):
        read_ndarray_list(path)
