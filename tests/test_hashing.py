"""wsss.hashing: digests of files, streams, folders, id lists and JSON values, against hashlib
applied to the expected bytes; a missing file raises instead of passing as "no digest"."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from wsss.hashing import (
    CHUNK,
    bytes_digest,
    config_fingerprint,
    config_hash,
    file_digest,
    folder_digest,
    lines_digest,
    stream_digest,
)


def test_file_digest_reads_every_block(tmp_path: Path) -> None:
    body = bytes(range(256)) * (CHUNK // 256 * 2 + 3)  # more than two read blocks
    path = tmp_path / "big.bin"
    path.write_bytes(body)
    assert file_digest(path) == hashlib.sha256(body).hexdigest()
    assert file_digest(path, "md5") == hashlib.md5(body).hexdigest()
    assert stream_digest(io.BytesIO(body), "sha1") == hashlib.sha1(body).hexdigest()
    assert bytes_digest(body) == hashlib.sha256(body).hexdigest()


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_missing_file_raises_naming_it(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "nope"
    if kind == "folder":
        path.mkdir()
    with pytest.raises(FileNotFoundError, match=f"file to hash not found: {path}$"):
        file_digest(path)


def test_lines_digest_is_the_digest_of_the_written_list(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_bytes(b"a\nb\n")
    assert lines_digest(["a", "b"]) == hashlib.sha256(b"a\nb\n").hexdigest() == file_digest(path)


def test_folder_digest_hashes_names_sizes_and_bytes(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.png").write_bytes(b"xy")
    (folder / "sub" / "a.png").write_bytes(b"z")
    (folder / "skip.json").write_bytes(b"left out")
    (folder / ".hidden").write_bytes(b"left out")
    naive = hashlib.sha256(b"b.png\0" + b"2\0" + b"xy" + b"sub/a.png\0" + b"1\0" + b"z")
    assert folder_digest(folder, leave_out=("skip.json",)) == naive.hexdigest()
    assert folder_digest(folder) != naive.hexdigest()
    with pytest.raises(FileNotFoundError, match="folder to hash not found"):
        folder_digest(tmp_path / "absent")


def test_json_hashes_follow_values_not_key_order() -> None:
    a = {"train": {"lr": 0.01, "steps": 10}, "seed": 0}
    b = {"seed": 0, "train": {"steps": 10, "lr": 0.01}}
    text = '{"seed":0,"train":{"lr":0.01,"steps":10}}'
    assert config_hash(a) == config_hash(b) == hashlib.sha256(text.encode()).hexdigest()
    spaced = '[{"seed": 0, "train": {"lr": 0.01, "steps": 10}}, 3]'
    assert config_fingerprint(a, 3) == hashlib.sha256(spaced.encode()).hexdigest()[:16]
    assert config_fingerprint(a, 3) == config_fingerprint(b, 3) != config_fingerprint(a, 4)
