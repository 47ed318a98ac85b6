"""Shareable result archives: a ``.tar.gz`` of a result directory with a sha256 manifest.

The archive holds ``<arcname>/SHA256SUMS`` (first member; ``sha256sum`` format, paths relative
to ``<arcname>``, so ``sha256sum -c SHA256SUMS`` works after extraction) and every file of the
directory below ``<arcname>/``. Beside it, ``<archive>.sha256`` holds the archive's own sha256.
:func:`verify_archive` recomputes every checksum without extracting anything and reports
missing, unlisted (extra), altered and unsafe members.

Command line (for whoever receives an archive)::

    python -m wsss.export export results/synth/baseline exports/synth/baseline.tar.gz
    python -m wsss.export verify exports/synth/baseline.tar.gz
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import io
import os
import re
import sys
import tarfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from wsss.hashing import bytes_digest, file_digest, stream_digest
from wsss.io import atomic_path

__all__ = [
    "CHECKSUMS",
    "Verification",
    "export_directory",
    "list_files",
    "main",
    "verify_archive",
    "verify_directory",
]

CHECKSUMS = "SHA256SUMS"
_LINE = re.compile(r"^([0-9a-f]{64}) [ *](.+)$")


@dataclass
class Verification:
    """The outcome of checking files against a ``SHA256SUMS`` list."""

    checked: int = 0
    missing: list[str] = field(default_factory=list)  # listed, absent
    extra: list[str] = field(default_factory=list)  # present, not listed
    mismatched: list[str] = field(default_factory=list)  # checksum differs
    unsafe: list[str] = field(default_factory=list)  # absolute, '..', links, devices

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.mismatched or self.unsafe)

    def summary(self) -> str:
        if self.ok:
            return f"OK: {self.checked} files match {CHECKSUMS}"
        parts = [
            f"{label} {', '.join(sorted(names))}"
            for label, names in (
                ("altered:", self.mismatched),
                ("missing:", self.missing),
                ("not listed:", self.extra),
                ("unsafe members:", self.unsafe),
            )
            if names
        ]
        return f"FAILED ({self.checked} files checked); " + "; ".join(parts)


def _excluded(relpath: str, exclude: Sequence[str]) -> bool:
    """A glob in ``exclude`` matches the path or one of its parent folders."""
    parts = PurePosixPath(relpath).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatchcase(p, pattern) for p in prefixes for pattern in exclude)


def list_files(
    directory: str | os.PathLike,
    exclude: Sequence[str] = (),
    *,
    include: Sequence[str] | None = None,
    skip_temporary: bool = True,
) -> list[str]:
    """Sorted POSIX paths (relative to ``directory``) of its files, links followed.

    Left out: the root ``SHA256SUMS``; paths an ``exclude`` glob matches (the path or a parent
    folder, e.g. ``cam/maps``); with ``include``, paths outside those top-level entries; with
    ``skip_temporary``, the atomic writers' hidden temporaries (``.*.tmp*``).

    Raises:
        FileNotFoundError: ``directory`` is not a folder.
    """
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"directory to export not found: {root}")
    files = []
    for path in root.rglob("*"):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel == CHECKSUMS or (skip_temporary and ".tmp" in path.name):
            continue
        if include is not None and rel.split("/")[0] not in include:
            continue
        if not _excluded(rel, exclude):
            files.append(rel)
    return sorted(files)


def _checksum_text(directory: Path, files: Iterable[str]) -> str:
    return "".join(f"{file_digest(directory / rel)}  {rel}\n" for rel in files)


def _parse_checksums(text: str, source: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"{source} line {number}: not '<sha256>  <path>': {line!r}")
        sums[match.group(2)] = match.group(1)
    return sums


def _tarinfo(name: str, size: int, mtime: float) -> tarfile.TarInfo:
    """A regular-file member owned by nobody in particular (no local user names leak)."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, int(mtime), 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def export_directory(
    directory: str | os.PathLike,
    archive: str | os.PathLike,
    *,
    arcname: str | None = None,
    exclude: Sequence[str] = (),
    include: Sequence[str] | None = None,
) -> str:
    """Write ``archive`` (``.tar.gz``, atomically) of ``directory``'s files below ``arcname``
    (default: the folder's name) with ``SHA256SUMS`` first, and ``<archive>.sha256``.
    ``exclude`` and ``include`` select files as in :func:`list_files`.

    Returns:
        The archive's sha256 (hex).
    """
    directory = Path(directory)
    arcname = (arcname or directory.name).strip("/")
    files = list_files(directory, exclude, include=include)
    sums = _checksum_text(directory, files).encode()
    with atomic_path(archive) as tmp:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            tar.addfile(_tarinfo(f"{arcname}/{CHECKSUMS}", len(sums), 0), io.BytesIO(sums))
            for rel in files:
                path = directory / rel
                stat = path.stat()
                with open(path, "rb") as handle:
                    tar.addfile(_tarinfo(f"{arcname}/{rel}", stat.st_size, stat.st_mtime), handle)
        digest = file_digest(tmp)
    with atomic_path(f"{archive}.sha256") as tmp:
        tmp.write_text(f"{digest}  {Path(archive).name}\n")
    return digest


def _unsafe(name: str) -> bool:
    path = PurePosixPath(name)
    return path.is_absolute() or ".." in path.parts


def verify_archive(archive: str | os.PathLike) -> Verification:
    """Check every member of ``archive`` against its ``SHA256SUMS`` (and the archive against
    ``<archive>.sha256`` when that file exists) without extracting.

    Raises:
        FileNotFoundError: ``archive`` is missing.
        ValueError: it is no readable ``.tar.gz``, has no ``SHA256SUMS`` member, its sidecar
            ``.sha256`` disagrees, or a ``SHA256SUMS`` line is malformed (names the file).
    """
    archive = Path(archive)
    if not archive.is_file():
        raise FileNotFoundError(f"archive not found: {archive}")
    sidecar = Path(f"{archive}.sha256")
    if sidecar.is_file():
        expected = (sidecar.read_text().split() or [""])[0]
        if expected != file_digest(archive):
            raise ValueError(f"{archive}: sha256 differs from {sidecar} (altered or truncated)")
    result, digests = Verification(), {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                if member.isdir():
                    continue
                if _unsafe(member.name) or not member.isfile() or member.name in digests:
                    result.unsafe.append(member.name)  # a duplicate would shadow the first
                    continue
                content = tar.extractfile(member)
                if PurePosixPath(member.name).name == CHECKSUMS:
                    digests[member.name] = content.read()
                    continue
                digests[member.name] = stream_digest(content)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise ValueError(f"{archive}: not a readable .tar.gz ({exc})") from None
    lists = [name for name, v in digests.items() if isinstance(v, bytes)]
    if not lists:
        raise ValueError(f"{archive}: no {CHECKSUMS} member; not made by wsss.export")
    sums_name = min(lists, key=lambda n: (n.count("/"), n))
    prefix = sums_name[: -len(CHECKSUMS)]
    listed = _parse_checksums(digests[sums_name].decode(), f"{archive}:{sums_name}")
    present = {}
    for name, digest in digests.items():
        if name == sums_name:
            continue
        if not name.startswith(prefix):
            result.unsafe.append(name)
            continue
        if isinstance(digest, bytes):  # a nested SHA256SUMS is an ordinary file here
            digest = bytes_digest(digest)
        present[name[len(prefix) :]] = digest
    _compare(result, listed, present)
    return result


def verify_directory(directory: str | os.PathLike) -> Verification:
    """Check an extracted export (or any folder holding ``SHA256SUMS``) against that list.

    Raises:
        FileNotFoundError: ``directory`` or its ``SHA256SUMS`` is missing.
    """
    directory = Path(directory)
    sums = directory / CHECKSUMS
    if not sums.is_file():
        raise FileNotFoundError(f"checksum list not found: {sums}")
    listed = _parse_checksums(sums.read_text(), str(sums))
    files = list_files(directory, skip_temporary=False)
    present = {rel: file_digest(directory / rel) for rel in files}
    result = Verification()
    _compare(result, listed, present)
    return result


def _compare(result: Verification, listed: dict[str, str], present: dict[str, str]) -> None:
    result.checked += len(present)
    result.missing += [n for n in listed if n not in present]
    result.extra += [n for n in present if n not in listed]
    result.mismatched += [n for n in listed if n in present and present[n] != listed[n]]


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m wsss.export export DIR ARCHIVE`` | ``verify ARCHIVE_OR_DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m wsss.export", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="archive a result directory")
    export.add_argument("directory")
    export.add_argument("archive")
    export.add_argument("--arcname", help="folder name inside the archive (default: DIR's)")
    export.add_argument("--exclude", action="append", default=[], help="glob to leave out")
    verify = commands.add_parser("verify", help="check an archive or extracted folder")
    verify.add_argument("path")
    args = parser.parse_args(argv)
    try:
        if args.command == "export":
            digest = export_directory(
                args.directory, args.archive, arcname=args.arcname, exclude=args.exclude
            )
            print(f"{digest}  {args.archive}")
            return 0
        path = Path(args.path)
        result = verify_directory(path) if path.is_dir() else verify_archive(path)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
