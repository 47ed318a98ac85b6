"""Shareable results in the workflow: manifests, exports, seeds, COCO conversion, the report."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TINY = REPO / "tests" / "workflow" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` (holding its own config.yaml copy)."""
    if not (workdir / "config.yaml").exists():
        shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    return subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=timeout)


def write_overlay(path: Path, overlay: dict) -> Path:
    path.write_text(yaml.safe_dump(overlay))
    return path


def dry_run_jobs(stdout: str) -> list[tuple[str, str]]:
    """``(rule, block text)`` for every job a ``snakemake -n`` printout lists."""
    blocks = stdout.split("\nrule ")[1:]
    return [(b.split(":", 1)[0].strip(), b) for b in blocks]


def test_export_and_verify_are_planned(tmp_path):
    result = snakemake(tmp_path, "-n", "exports/synth/ccnet.verified", "exports/synth.tar.gz")
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = dry_run_jobs(result.stdout)
    rules = {rule for rule, _ in jobs}
    assert {"export", "export_dataset", "verify", "record_provenance"} <= rules
    export = next(block for rule, block in jobs if rule == "export")
    assert "results/synth/ccnet/manifest.json" in export.split("output:")[0]
    manifests = [block for rule, block in jobs if rule == "record_provenance"]
    assert any("experiment=ccnet" in block for block in manifests)
