"""Getting one file safely: download (torch.hub / torchvision helpers) or local path, checksum,
disk space, archive type and member checks.

A download goes to a temporary sibling and is renamed to its final name only after its digest
matched, so an interrupted or failed download never leaves a file that a later step accepts.
"""

from __future__ import annotations

import http.client
import logging
import os
import shutil
import tarfile
import urllib.error
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from wsss.hashing import file_digest

__all__ = [
    "ChecksumError",
    "FetchError",
    "Source",
    "archive_members",
    "check_digest",
    "ensure_free_space",
    "obtain",
    "require_members",
    "safe_extract",
]

log = logging.getLogger(__name__)

_ALGORITHMS = ("sha256", "sha1", "md5")


class FetchError(ValueError):
    """A download, archive or layout problem, stated in one line."""


class ChecksumError(FetchError):
    """A file whose digest differs from the expected one."""


@dataclass(frozen=True)
class Source:
    """Where one file comes from.

    Args:
        name: the table name (for messages).
        filename: the name it gets in the cache folder.
        url: an http(s) or ``file://`` URL (downloaded), or None.
        path: a local file used in place (not copied), or None; wins over ``url``.
        digest: ``"<algorithm>:<hex>"`` (sha256, sha1 or md5; a shorter hex is a prefix, as in
            torch.hub's file names), or None where none is published.
        size_mb: approximate download size (MB) for the free-space check; None = unknown.
        via: ``"hub"`` (torch.hub's ``download_url_to_file``) or ``"torchvision"``
            (``torchvision.datasets.utils.download_url``, which also follows Google Drive links).
    """

    name: str
    filename: str
    url: str | None = None
    path: str | None = None
    digest: str | None = None
    size_mb: float | None = None
    via: str = "torchvision"


def _parse_digest(digest: str) -> tuple[str, str]:
    algorithm, _, value = digest.partition(":")
    if algorithm not in _ALGORITHMS or not value:
        raise FetchError(f"digest {digest!r}: expected '<{'|'.join(_ALGORITHMS)}>:<hex>'")
    return algorithm, value.lower()


def check_digest(path: str | os.PathLike, digest: str | None, what: str | None = None) -> str:
    """Check ``path`` against ``digest``; return its sha256 (recorded in the fetch manifests).

    Raises:
        ChecksumError: one line naming the file, the expected and the actual digest.
    """
    sha256 = file_digest(path, "sha256")
    if digest is None:
        return sha256
    algorithm, expected = _parse_digest(digest)
    actual = sha256 if algorithm == "sha256" else file_digest(path, algorithm)
    if not actual.startswith(expected):
        raise ChecksumError(
            f"checksum mismatch for {what or path}: expected {algorithm} {expected}"
            f"{'…' if len(expected) < len(actual) else ''}, got {actual}"
        )
    return sha256


def ensure_free_space(folder: str | os.PathLike, need_mb: float | None, what: str) -> None:
    """Refuse to start when ``folder``'s file system has less than ``need_mb`` MB free.

    Raises:
        FetchError: naming the folder, the need and the free space.
    """
    if need_mb is None:
        return
    folder = Path(folder)
    probe = folder
    while not probe.exists():
        probe = probe.parent
    free_mb = shutil.disk_usage(probe).free / 1e6
    if free_mb < need_mb:
        raise FetchError(
            f"not enough disk space for {what} in {folder}: about {need_mb:,.0f} MB needed, "
            f"{free_mb:,.0f} MB free"
        )


def _download(url: str, tmp: Path, via: str) -> None:
    if via == "hub" or url.startswith("file:"):  # torchvision's helper needs a Content-Length
        import torch.hub

        torch.hub.download_url_to_file(url, str(tmp), hash_prefix=None, progress=False)
    else:
        from torchvision.datasets.utils import download_url

        download_url(url, str(tmp.parent), filename=tmp.name, md5=None)


def obtain(source: Source, cache: str | os.PathLike, *, space_factor: float = 1.0) -> Path:
    """The verified file of ``source``: its local ``path`` (checked in place), the cached copy
    from an earlier run (checked again where a digest is known), or a fresh download.

    ``space_factor`` × ``size_mb`` MB must be free in ``cache`` before a download starts
    (archives: room for the extracted files too).

    Raises:
        FetchError: no source configured, a download failure, or too little disk space.
        ChecksumError: the file's digest differs from ``source.digest``.
        FileNotFoundError: a configured local path that does not exist.
    """
    if source.path is not None:
        path = Path(source.path)
        if not path.is_file():
            raise FileNotFoundError(f"{source.name}: local file {path} not found")
        check_digest(path, source.digest, str(path))
        return path
    if source.url is None:
        raise FetchError(f"{source.name}: no URL or local path configured")
    final = Path(cache) / source.filename
    if final.is_file() and source.digest is not None:
        try:
            check_digest(final, source.digest)
            return final
        except ChecksumError:
            log.warning("cached %s fails its checksum; downloading it again", final)
            final.unlink()
    elif final.is_file():  # no digest: only ever renamed here after a complete download
        return final
    size = None if source.size_mb is None else source.size_mb * space_factor
    ensure_free_space(final.parent, size, source.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}.partial")
    log.info("downloading %s from %s", source.name, source.url)
    try:
        _download(source.url, tmp, source.via)
        if not tmp.is_file():
            raise FetchError(f"{source.name}: download from {source.url} wrote no file")
        sha256 = check_digest(tmp, source.digest, f"{source.name} ({source.url})")
        os.replace(tmp, final)
    except (urllib.error.URLError, http.client.HTTPException, OSError, RuntimeError) as exc:
        raise FetchError(f"{source.name}: download from {source.url} failed: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    if source.digest is None:
        log.warning(
            "%s has no published checksum; accepted after its structural checks, sha256 %s",
            source.name,
            sha256,
        )
    return final


def archive_members(path: str | os.PathLike) -> list[str]:
    """Member names of a tar (any compression) or zip archive, without extracting.

    Raises:
        FetchError: naming the file when it is no readable archive (e.g. a truncated download).
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return zf.namelist()
        with tarfile.open(path, "r:*") as tf:
            return [m.name + ("/" if m.isdir() else "") for m in _checked_tar(tf, path)]
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise FetchError(f"{path} is not a readable archive (truncated download?): {exc}") from exc


def _checked_tar(tf: tarfile.TarFile, path: str | os.PathLike) -> list[tarfile.TarInfo]:
    members = tf.getmembers()
    for m in members:
        if not (m.isfile() or m.isdir()):
            raise FetchError(f"{path}: member {m.name!r} is a link or device; refused")
    return members


def _unsafe(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return name.startswith(("/", "\\")) or ".." in parts or ":" in (parts[0] if parts else "")


def require_members(
    path: str | os.PathLike, members: Sequence[str], required: Iterable[str]
) -> None:
    """Raise ``FetchError`` naming what the archive lacks: every entry of ``required`` (a file,
    or a folder ending in ``/``) must be a member or the prefix of one; unsafe member names
    (absolute, ``..``) are refused."""
    bad = [m for m in members if _unsafe(m)]
    if bad:
        raise FetchError(f"{path}: unsafe member names {bad[:3]}; refused")
    names = {m.rstrip("/") for m in members}
    prefixes = {str(p) for m in names for p in PurePosixPath(m).parents}
    missing = [r for r in required if r.rstrip("/") not in names | prefixes]
    if missing:
        raise FetchError(f"{path} does not have the expected layout: missing {', '.join(missing)}")


_MAGIC_SUFFIX = (
    (0, b"PK\x03\x04", ".zip"),
    (0, b"\x1f\x8b", ".tar.gz"),
    (0, b"BZh", ".tar.bz2"),
    (0, b"\xfd7zXZ\x00", ".tar.xz"),
    (257, b"ustar", ".tar"),
)


def safe_extract(archive: str | os.PathLike, to: str | os.PathLike) -> None:
    """Extract ``archive`` into ``to`` with torchvision's ``extract_archive``, after
    :func:`archive_members` refused links and :func:`require_members` unsafe names. The type is
    read from the first bytes, not the file name (Google Drive downloads have none).

    Raises:
        FetchError: when the archive is unreadable or of unknown type.
    """
    from torchvision.datasets.utils import extract_archive

    archive = Path(archive)
    require_members(archive, archive_members(archive), [])
    with open(archive, "rb") as f:
        head = f.read(512)
    suffix = next((s for off, magic, s in _MAGIC_SUFFIX if head[off:].startswith(magic)), None)
    if suffix is None:
        raise FetchError(f"{archive}: unknown archive type")
    named = archive if archive.name.endswith(suffix) else None
    Path(to).mkdir(parents=True, exist_ok=True)
    if named is None:  # extract_archive picks the format from the name: link under one
        named = Path(to) / f".archive{suffix}"
        named.unlink(missing_ok=True)
        named.symlink_to(archive.resolve())
    try:
        extract_archive(str(named), str(to))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise FetchError(f"{archive}: extraction failed (truncated download?): {exc}") from exc
    finally:
        if named != archive:
            named.unlink(missing_ok=True)
