"""Digests: of a file or a byte stream, of an id list, of a JSON value. The one hashing module of
the package (fetch checksums, provenance manifests, export archives, resume fingerprints).

A missing file is an error, never a digest: :func:`file_digest` raises ``FileNotFoundError``
naming the file. An input that may legitimately be absent is passed as ``None`` by its caller
(or tested with ``is_file()`` there), so that a wrong path cannot pass silently as "no input".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "CHUNK",
    "bytes_digest",
    "canonical_json",
    "config_fingerprint",
    "config_hash",
    "file_digest",
    "folder_digest",
    "lines_digest",
    "stream_digest",
]

CHUNK = 1 << 20  # read files in 1 MiB blocks: a large archive never sits in memory whole


def stream_digest(handle: BinaryIO, algorithm: str = "sha256") -> str:
    """The hex digest of what is left to read in a binary ``handle``."""
    digest = hashlib.new(algorithm)
    while block := handle.read(CHUNK):
        digest.update(block)
    return digest.hexdigest()


def bytes_digest(data: bytes, algorithm: str = "sha256") -> str:
    """The hex digest of ``data``."""
    return hashlib.new(algorithm, data).hexdigest()


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes (``algorithm``: any :func:`hashlib.new` name).

    Raises:
        FileNotFoundError: one line naming the file, when it does not exist (or is a folder).
    """
    try:
        with open(path, "rb") as handle:
            return stream_digest(handle, algorithm)
    except (FileNotFoundError, IsADirectoryError):
        raise FileNotFoundError(f"file to hash not found: {os.fspath(path)}") from None


def folder_digest(directory: str | os.PathLike, leave_out: Collection[str] = ()) -> str:
    """``sha256`` over every file below ``directory`` (relative name, size, bytes; sorted by
    name), leaving out the relative names in ``leave_out`` and hidden files (Snakemake's
    timestamps)."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"folder to hash not found: {os.fspath(directory)}")
    digest = hashlib.sha256()
    files = sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.relative_to(root).as_posix() not in leave_out
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    for path in files:
        digest.update(f"{path.relative_to(root).as_posix()}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as handle:
            while block := handle.read(CHUNK):
                digest.update(block)
    return digest.hexdigest()


def lines_digest(lines: Iterable[str]) -> str:
    """``sha256`` (hex) of the lines, each newline-terminated (the bytes of an id list written
    one id per line)."""
    return bytes_digest("".join(f"{line}\n" for line in lines).encode())


def canonical_json(obj: object) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text (tuples are lists,
    non-JSON leaves such as paths their ``str``)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, allow_nan=True)


def config_hash(obj: object) -> str:
    """``sha256`` (hex) of :func:`canonical_json` of ``obj``: changes with any value in it (the
    ``config_hash`` of a provenance manifest)."""
    return bytes_digest(canonical_json(obj).encode())


def config_fingerprint(*parts: object) -> str:
    """A short stable hash of JSON-serialisable parts (config subtrees, id lists, file digests):
    what ties a training checkpoint to the run that wrote it."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return bytes_digest(blob)[:16]
