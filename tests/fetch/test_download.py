"""Downloads are never half-accepted: checksum mismatch, a connection dropped mid-file, too
little disk space and an archive of the wrong layout stop with one line and leave nothing a
later step accepts."""

from __future__ import annotations

import hashlib
import io
import shutil
import zipfile
from collections import namedtuple

import pytest

from wsss.fetch.download import (
    ChecksumError,
    FetchError,
    Source,
    archive_members,
    obtain,
    require_members,
)


def _zip(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_checksum_mismatch_names_file_expected_and_actual(tmp_path, server):
    body = b"not the published file" * 100
    server.files["/a.tar"] = body
    actual = hashlib.md5(body).hexdigest()
    source = Source("voc2012_trainval", "a.tar", url=server.url("/a.tar"), digest="md5:" + "0" * 32)
    with pytest.raises(ChecksumError) as err:
        obtain(source, tmp_path / "cache")
    message = str(err.value)
    assert "\n" not in message
    assert "voc2012_trainval" in message and "0" * 32 in message and actual in message
    assert _leftovers(tmp_path / "cache") == []


def test_dropped_connection_is_not_accepted_and_a_rerun_recovers(tmp_path, server):
    body = _zip({"ADEChallengeData2016/images/training/a.jpg": b"x" * 5000})
    server.files["/ade.zip"] = body
    server.drop.add("/ade.zip")
    digest = "sha1:" + hashlib.sha1(body).hexdigest()
    source = Source("ade20k", "ade.zip", url=server.url("/ade.zip"), digest=digest)
    with pytest.raises(ChecksumError, match="ade20k"):
        obtain(source, tmp_path)
    assert _leftovers(tmp_path) == []
    server.drop.clear()
    assert obtain(source, tmp_path).read_bytes() == body
    # a cached file is checked again, and replaced when it fails
    (tmp_path / "ade.zip").write_bytes(body[:100])
    assert obtain(source, tmp_path).read_bytes() == body


def test_dropped_connection_without_published_checksum_fails_the_archive_check(tmp_path, server):
    body = _zip({f"val2014/{i}.jpg": bytes([i]) * 3000 for i in range(5)})
    server.files["/val2014.zip"] = body
    server.drop.add("/val2014.zip")
    source = Source("coco2014_val", "val2014.zip", url=server.url("/val2014.zip"))
    path = obtain(source, tmp_path)  # no digest published: the archive check must catch it
    with pytest.raises(FetchError, match="not a readable archive"):
        archive_members(path)


def test_too_little_disk_space_stops_before_downloading(tmp_path, server, monkeypatch):
    server.files["/big.zip"] = b"x"
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: usage(10**12, 10**12 - 10**8, 10**8))
    source = Source("coco2014_train", "big.zip", url=server.url("/big.zip"), size_mb=13000)
    with pytest.raises(FetchError, match=r"not enough disk space.*13,000 MB needed, 100 MB free"):
        obtain(source, tmp_path)
    assert server.requests == []


def test_unexpected_layout_names_what_is_missing(tmp_path):
    path = tmp_path / "gtFine_trainvaltest.zip"
    path.write_bytes(_zip({"gtFine/train/a/x.png": b"1", "README": b"r"}))
    members = archive_members(path)
    require_members(path, members, ["gtFine/train/"])
    with pytest.raises(FetchError, match="missing gtFine/val/"):
        require_members(path, members, ["gtFine/train/", "gtFine/val/"])
    with pytest.raises(FetchError, match="unsafe"):
        require_members(path, ["../etc/passwd"], [])


def test_local_path_and_file_url(tmp_path):
    data = b"local archive"
    local = tmp_path / "mirror" / "sbd.tgz"
    local.parent.mkdir()
    local.write_bytes(data)
    md5 = "md5:" + hashlib.md5(data).hexdigest()
    assert obtain(Source("sbd_benchmark", "x", path=str(local), digest=md5), tmp_path) == local
    url = Source("sbd_benchmark", "copy.tgz", url=local.as_uri(), digest=md5)
    assert obtain(url, tmp_path / "cache").read_bytes() == data
    with pytest.raises(FileNotFoundError, match="missing.tgz"):
        obtain(Source("sbd_benchmark", "x", path=str(tmp_path / "missing.tgz")), tmp_path)
