"""Running the repository's workflow from tests, and the one tiny pipeline run (plus one sharded,
repeated rerun) that every end-to-end assertion shares."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "workflow" / "tiny.yaml"

# The shared run: every experiment of tiny.yaml, the oracle at two seeds (mean/std rows).
SEEDS = {"experiments": {"oracle": {"seeds": [0, 1]}}}
# The rerun repeats one experiment of each kind (CAM methods, CDA, SMAF's teacher chain, a random
# walk, full supervision at two seeds) with every per-image stage in two shards: a whole second
# DAG would double CI time for little more.
REPEATED = ("baseline", "oracle", "seam", "cda", "eps", "smaf", "irn")
SHARDED = {"infer_cam": 2, "pseudo_labels": 2, "infer_seg": 2}


class Workflow:
    """``run`` the workflow in a folder holding its own config.yaml copy; write overlays;
    list the jobs of a dry-run printout."""

    snakemake = Path(sys.executable).with_name("snakemake")
    tiny = TINY

    def run(self, workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
        if not (workdir / "config.yaml").exists():
            shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
        cmd = [str(self.snakemake), "--snakefile", str(REPO / "Snakefile")]
        cmd += ["--directory", str(workdir), *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    @staticmethod
    def overlay(path: Path, overlay: dict) -> Path:
        path.write_text(yaml.safe_dump(overlay))
        return path

    @staticmethod
    def jobs(stdout: str) -> list[tuple[str, str]]:
        """``(rule, block text)`` for every job a ``snakemake -n`` printout lists."""
        blocks = stdout.split("\nrule ")[1:]
        return [(b.split(":", 1)[0].strip(), b) for b in blocks]


@pytest.fixture(scope="session")
def workflow() -> Workflow:
    return Workflow()


@dataclass(frozen=True)
class TinyRun:
    """A finished workflow run: its folder and the config arguments it was run with."""

    workdir: Path
    args: tuple[str, ...]

    @property
    def results(self) -> Path:
        return self.workdir / "results" / "synth"


def _run_tiny(workflow: Workflow, workdir: Path, overlay: dict) -> TinyRun:
    workdir.mkdir(parents=True)
    extra = workflow.overlay(workdir / "overlay.yaml", overlay)
    args = ("--configfile", str(workflow.tiny), str(extra))
    result = workflow.run(workdir, "--cores", "2", *args)
    assert result.returncode == 0, result.stderr[-4000:]
    return TinyRun(workdir, args)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, workflow) -> TinyRun:
    """The whole tiny pipeline (``snakemake --cores 2`` with tests/workflow/tiny.yaml and
    :data:`SEEDS`) and its HTML report, once per test session. Tests must not change it: copy
    the folder to run more jobs in it."""
    run = _run_tiny(workflow, tmp_path_factory.mktemp("tiny") / "first", SEEDS)
    report = workflow.run(run.workdir, *run.args, "--report", "results/synth/report.html")
    assert report.returncode == 0, report.stderr[-4000:]
    return run


@pytest.fixture(scope="session")
def tiny_rerun(tmp_path_factory, workflow) -> TinyRun:
    """A second run in a fresh folder of the :data:`REPEATED` experiments, per-image stages in
    two shards each (:data:`SHARDED`)."""
    overlay = {**SEEDS, "datasets": {"synth": {"experiments": list(REPEATED)}}, "shards": SHARDED}
    return _run_tiny(workflow, tmp_path_factory.mktemp("tiny") / "second", overlay)
