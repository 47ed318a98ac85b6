"""Read MXNet ``.params`` files (NDArray lists) with numpy alone, no mxnet.

The layout, as MXNet's ``NDArray::Save``/``NDArray::Load`` (src/ndarray/ndarray.cc) and dmlc's
stream serialisation define it, all little-endian:

- list header: uint64 magic ``0x112``, uint64 reserved;
- uint64 number of arrays, then each array;
- uint64 number of names (0 or the number of arrays), then each name as uint64 length + bytes.

One dense array: uint32 magic — ``0xF993FAC9`` (v2) or ``0xF993FACA`` (v3: numpy shape
semantics) followed by int32 storage type (0 = dense), ``0xF993FAC8`` (v1), or, in files older
than the magics, the number of dimensions itself. Then the shape: uint32 ndim (v1–v3) and ndim
int64 sizes, or (legacy) ndim uint32 sizes. A shape with no dimensions ends the entry (an empty
array). Otherwise int32 device type and int32 device id, int32 type flag (mshadow: 0 float32,
1 float64, 2 float16, 3 uint8, 4 int32, 5 int8, 6 int64), and the raw C-order data.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

__all__ = ["LIST_MAGIC", "is_ndarray_list", "read_ndarray_list"]

LIST_MAGIC = 0x112
_V1, _V2, _V3 = 0xF993FAC8, 0xF993FAC9, 0xF993FACA
_DTYPES = {
    0: np.float32,
    1: np.float64,
    2: np.float16,
    3: np.uint8,
    4: np.int32,
    5: np.int8,
    6: np.int64,
}


class _Reader:
    """Sequential little-endian reads that name the file and offset when the data runs out."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = data
        self.pos = 0
        self.source = source

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(
                f"{self.source}: MXNet NDArray file ends at byte {len(self.data)}, "
                f"{n} more bytes expected at {self.pos} (truncated or not a .params file)"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))


def is_ndarray_list(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts like an MXNet NDArray list (``.params``)."""
    with open(path, "rb") as f:
        head = f.read(16)
    return len(head) == 16 and struct.unpack("<QQ", head)[0] == LIST_MAGIC


def _read_array(reader: _Reader) -> np.ndarray:
    (magic,) = reader.unpack("I")
    if magic in (_V2, _V3):
        (stype,) = reader.unpack("i")
        if stype != 0:
            raise ValueError(
                f"{reader.source}: sparse NDArray (storage type {stype}) at byte {reader.pos}; "
                "only dense arrays are supported"
            )
    if magic in (_V1, _V2, _V3):
        (ndim,) = reader.unpack("i")
        if ndim < 0:  # v3: unknown shape
            ndim = 0
        shape = reader.unpack(f"{ndim}q")
    else:  # legacy: the magic word is the number of dimensions, sizes are uint32
        ndim = magic
        if ndim > 32:
            raise ValueError(f"{reader.source}: implausible NDArray header at byte {reader.pos}")
        shape = reader.unpack(f"{ndim}I")
    if ndim == 0:
        return np.zeros((0,), dtype=np.float32)
    reader.unpack("ii")  # device type, device id: data are always read to the CPU
    (flag,) = reader.unpack("i")
    if flag not in _DTYPES:
        raise ValueError(f"{reader.source}: unknown NDArray type flag {flag}")
    dtype = np.dtype(_DTYPES[flag]).newbyteorder("<")
    count = int(np.prod(shape, dtype=np.int64))
    data = reader.take(count * dtype.itemsize)
    return np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def read_ndarray_list(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """All arrays of an MXNet NDArray list file by name (``arg:…``/``aux:…`` as saved).

    Raises:
        ValueError: naming the file when it is not such a list, is truncated, has trailing
            bytes, or holds sparse arrays or unnamed arrays.
    """
    source = str(path)
    reader = _Reader(Path(path).read_bytes(), source)
    magic, _ = reader.unpack("QQ")
    if magic != LIST_MAGIC:
        raise ValueError(f"{source}: not an MXNet NDArray list (magic {magic:#x}, expected 0x112)")
    (count,) = reader.unpack("Q")
    arrays = [_read_array(reader) for _ in range(count)]
    (num_names,) = reader.unpack("Q")
    if num_names != count:
        raise ValueError(f"{source}: {count} arrays but {num_names} names")
    names = []
    for _ in range(num_names):
        (length,) = reader.unpack("Q")
        names.append(reader.take(length).decode("utf-8"))
    if reader.pos != len(reader.data):
        raise ValueError(f"{source}: {len(reader.data) - reader.pos} unexpected trailing bytes")
    if len(set(names)) != len(names):
        raise ValueError(f"{source}: repeated array names")
    return dict(zip(names, arrays, strict=True))
