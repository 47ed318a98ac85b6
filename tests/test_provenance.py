"""Provenance helpers: git state, config hash, checksums, versions, the experiment manifest."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from wsss.hashing import config_hash
from wsss.provenance import git_state, iso_time, package_versions, without_keys
from wsss.stages.common import DatasetIndex
from wsss.stages.provenance import MANIFEST_FORMAT, job_span, run_record_provenance

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@needs_git
def test_git_state_commit_and_dirty_flag(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("1")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "one")
    state = git_state(tmp_path)
    assert len(state["commit"]) == 40 and state["dirty"] is False
    (tmp_path / "a.txt").write_text("2")
    assert git_state(tmp_path) == {"commit": state["commit"], "dirty": True}


@needs_git
def test_git_state_outside_a_repository_is_no_error(tmp_path: Path) -> None:
    state = git_state(tmp_path)
    assert state["commit"] is None and state["dirty"] is None
    assert str(tmp_path) in state["error"]


def test_config_hash_follows_values_not_key_order() -> None:
    a = {"train": {"lr": 0.01, "steps": 10}, "seed": 0}
    b = {"seed": 0, "train": {"steps": 10, "lr": 0.01}}
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash({"train": {"lr": 0.02, "steps": 10}, "seed": 0})
    assert config_hash(a) != config_hash({**a, "seed": 1})
    assert without_keys({"root": "/x", "lr": 1}, ["root"]) == {"lr": 1}


def test_package_versions_and_times() -> None:
    versions = package_versions()
    for name in ("python", "wsss", "torch", "numpy", "snakemake"):
        assert versions[name], name
    assert package_versions(["no-such-distribution-xyz"])["no-such-distribution-xyz"] is None
    assert iso_time(0) == "1970-01-01T00:00:00.000+00:00"


def test_job_span_reads_start_device_and_end(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text(
        "2026-01-02 03:04:05,678 wsss.utils.runtime INFO: job started (threads 1, seed 0)\n"
        "2026-01-02 03:04:06,000 wsss.utils.runtime INFO: using device cuda:0 (NVIDIA H200)\n"
    )
    out = tmp_path / "out.csv"
    out.write_text("x")
    span = job_span(log, [out, tmp_path / "missing"])
    assert span["device"] == "cuda:0 (NVIDIA H200)"
    assert span["started"].endswith("+00:00") and span["finished"] >= iso_time(out.stat().st_mtime)
    assert job_span(tmp_path / "none.log") == {"started": None, "finished": None, "device": None}


def _fake_experiment(tmp_path: Path, lr: float = 0.01, root: str = "data") -> dict:
    """A VOC-layout root with split files, an index, and one trained + one inferred stage."""
    data = tmp_path / root
    (data / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    (data / "ImageSets" / "Segmentation" / "train.txt").write_text("a\nb\n")
    index = tmp_path / "index.json"
    DatasetIndex.write(
        index,
        classes=["background", "x"],
        splits={"train": ["a", "b"]},
        labels={"a": np.array([1.0]), "b": np.array([0.0])},
    )
    logs = tmp_path / "logs"
    logs.mkdir(exist_ok=True)
    (logs / "train.log").write_text("2026-01-02 03:04:05,678 wsss INFO: job started\n")
    maps = tmp_path / "maps"
    maps.mkdir(exist_ok=True)
    (maps / "manifest.json").write_text(json.dumps({"stage": "infer_cam", "device": "cpu"}))
    (logs / "infer.log").write_text(
        "2026-01-02 03:05:00,000 wsss INFO: job started\n"
        "2026-01-02 03:05:01,000 wsss INFO: using device cpu\n"
    )
    stages = {
        "exp/train_cam": {
            "rule": "train_cam",
            "params": {"root": str(data), "train": {"lr": lr}, "seed": 0},
            "log": str(logs / "train.log"),
            "outputs": [],
        },
        "exp/infer_cam": {
            "rule": "infer_cam",
            "params": {"root": str(data), "infer": {"scales": [1.0]}},
            "log": str(logs / "infer.log"),
            "outputs": [str(maps)],
        },
    }
    return dict(index=index, stages=stages, root=data)


def _manifest(tmp_path: Path, **kwargs) -> dict:
    fake = _fake_experiment(tmp_path, **kwargs)
    return run_record_provenance(
        tmp_path / "out" / "manifest.json",
        fake["index"],
        dataset="toy",
        experiment="exp",
        run="exp",
        seed=0,
        stages=fake["stages"],
        dataset_stages={},
        repo=tmp_path,
        device="auto",
        root=fake["root"],
    )


def test_manifest_has_every_field(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    written = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert written == json.loads(json.dumps(manifest))
    assert manifest["format"] == MANIFEST_FORMAT
    for key in ("git", "packages", "device", "data", "seed", "config_hash", "started", "finished"):
        assert manifest[key] is not None, key
    assert {"commit", "dirty"} <= set(manifest["git"])
    assert manifest["stage_order"] == ["exp/train_cam", "exp/infer_cam"]
    train = manifest["stages"]["exp/train_cam"]
    assert train["params"]["train"] == {"lr": 0.01}
    assert manifest["stages"]["exp/infer_cam"]["artifacts"][str(tmp_path / "maps")]["device"]
    assert manifest["device"]["used"] == ["cpu"]
    split = manifest["data"]["splits"]["train"]
    assert split["count"] == 2 and split["ids_sha256"] == split["file_sha256"]
    assert manifest["started"] <= manifest["finished"]


def test_config_hash_changes_with_a_parameter_not_with_the_root(tmp_path: Path) -> None:
    base = _manifest(tmp_path / "a")
    moved = _manifest(tmp_path / "b", root="elsewhere")
    changed = _manifest(tmp_path / "c", lr=0.02)
    assert base["config_hash"] == moved["config_hash"]
    assert base["config_hash"] != changed["config_hash"]
    stage = "exp/train_cam"
    assert base["stages"][stage]["config_hash"] != changed["stages"][stage]["config_hash"]
    assert (
        base["stages"]["exp/infer_cam"]["config_hash"]
        == (changed["stages"]["exp/infer_cam"]["config_hash"])
    )
