"""Running the repository's workflow from tests (used by test_sharing and test_report)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "tests" / "workflow" / "tiny.yaml"


class Workflow:
    """``run`` the workflow in a folder holding its own config.yaml copy; write overlays;
    list the jobs of a dry-run printout."""

    snakemake = Path(sys.executable).with_name("snakemake")
    tiny = TINY

    def run(self, workdir: Path, *args: str, timeout: int = 1200) -> subprocess.CompletedProcess:
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
