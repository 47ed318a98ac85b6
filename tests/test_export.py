"""Export archives: round trip, tampering, missing/extra/unsafe members, selection, CLI."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from wsss.export import (
    CHECKSUMS,
    export_directory,
    list_files,
    main,
    verify_archive,
    verify_directory,
)
from wsss.stages.export import run_verify


@pytest.fixture
def result_dir(tmp_path: Path) -> Path:
    root = tmp_path / "results" / "toy" / "exp"
    (root / "cam" / "maps").mkdir(parents=True)
    (root / "seg" / "eval").mkdir(parents=True)
    (root / "manifest.json").write_text('{"seed": 0}\n')
    (root / "cam" / "maps" / "a.npz").write_bytes(bytes(range(256)) * 8)
    (root / "seg" / "eval" / "metrics.csv").write_text("miou\n0.5\n")
    (root / "seg" / ".model.abc.tmp.pt").write_bytes(b"half-written")
    return root


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def _rewrite(archive: Path, members: dict[str, bytes]) -> None:
    """Rebuild ``archive`` from ``members`` (as a tamperer would) and drop its sidecar."""
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    Path(f"{archive}.sha256").unlink(missing_ok=True)


def test_round_trip(result_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "exports" / "toy" / "exp.tar.gz"
    digest = export_directory(result_dir, archive, arcname="toy/exp")
    assert Path(f"{archive}.sha256").read_text() == f"{digest}  exp.tar.gz\n"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == digest
    with tarfile.open(archive, "r:gz") as tar:
        names = tar.getnames()
    assert names[0] == f"toy/exp/{CHECKSUMS}"
    assert sorted(names[1:]) == [
        "toy/exp/cam/maps/a.npz",
        "toy/exp/manifest.json",
        "toy/exp/seg/eval/metrics.csv",
    ]  # no temporary file
    result = verify_archive(archive)
    assert result.ok and result.checked == 3, result.summary()

    extracted = tmp_path / "extracted"
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(extracted, filter="data")
    assert verify_directory(extracted / "toy" / "exp").ok
    (extracted / "toy" / "exp" / "manifest.json").write_text('{"seed": 1}\n')
    assert verify_directory(extracted / "toy" / "exp").mismatched == ["manifest.json"]


def test_same_files_give_the_same_archive(result_dir: Path, tmp_path: Path) -> None:
    first = export_directory(result_dir, tmp_path / "a.tar.gz", arcname="x")
    second = export_directory(result_dir, tmp_path / "b.tar.gz", arcname="x")
    assert first == second


def test_tampered_file_is_detected(result_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "exp.tar.gz"
    export_directory(result_dir, archive, arcname="exp")
    members = _members(archive)
    members["exp/seg/eval/metrics.csv"] = b"miou\n0.9\n"
    _rewrite(archive, members)
    result = verify_archive(archive)
    assert not result.ok and result.mismatched == ["seg/eval/metrics.csv"]
    assert "altered: seg/eval/metrics.csv" in result.summary()
    report = tmp_path / "exp.verified"
    with pytest.raises(ValueError, match="altered: seg/eval/metrics.csv"):
        run_verify(archive, report)
    assert not report.exists()


def test_sidecar_catches_any_change(result_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "exp.tar.gz"
    export_directory(result_dir, archive, arcname="exp")
    data = bytearray(archive.read_bytes())
    data[-30] ^= 0xFF
    archive.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="sha256 differs"):
        verify_archive(archive)


def test_missing_extra_and_unsafe_members(result_dir: Path, tmp_path: Path) -> None:
    archive = tmp_path / "exp.tar.gz"
    export_directory(result_dir, archive, arcname="exp")
    members = _members(archive)
    del members["exp/manifest.json"]
    members["exp/notes.txt"] = b"added later"
    members["../evil.sh"] = b"rm -rf"
    _rewrite(archive, members)
    result = verify_archive(archive)
    assert result.missing == ["manifest.json"]
    assert result.extra == ["notes.txt"]
    assert result.unsafe == ["../evil.sh"]


def test_archive_without_checksums_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "plain.tar.gz"
    _rewrite(archive, {"x/a.txt": b"a"})
    with pytest.raises(ValueError, match=CHECKSUMS):
        verify_archive(archive)
    with pytest.raises(FileNotFoundError, match="nothing.tar.gz"):
        verify_archive(tmp_path / "nothing.tar.gz")


def test_exclude_and_include(result_dir: Path) -> None:
    assert list_files(result_dir, ["cam/maps"]) == ["manifest.json", "seg/eval/metrics.csv"]
    assert list_files(result_dir, ["*.npz"]) == ["manifest.json", "seg/eval/metrics.csv"]
    assert list_files(result_dir, include=["seg"]) == ["seg/eval/metrics.csv"]


def test_command_line(result_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    archive = tmp_path / "exp.tar.gz"
    assert main(["export", str(result_dir), str(archive), "--exclude", "cam"]) == 0
    assert main(["verify", str(archive)]) == 0
    assert "OK: 2 files" in capsys.readouterr().out
    members = _members(archive)
    members["exp/manifest.json"] = b"{}"
    _rewrite(archive, members)
    assert main(["verify", str(archive)]) == 1
    assert "altered: manifest.json" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "missing.tar.gz")]) == 2
