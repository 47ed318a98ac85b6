"""envs/wsss.yaml (cluster users' conda env) pins the same packages as pyproject.toml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[ ]", spec, maxsplit=1)[0].lower()


def test_conda_env_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {_name(s): s.replace(" ", "") for s in project["dependencies"]}
    wanted.update({_name(s): s for s in project["optional-dependencies"]["workflow"]})
    env = yaml.safe_load((REPO / "envs" / "wsss.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    got = {_name(s): s.replace(" ", "") for s in pip if not s.startswith("-e ")}
    assert got == wanted
    assert [s for s in pip if s.startswith("-e ")] == ["-e ${WSSS_REPO}"]  # wsss itself


CONDA = shutil.which("mamba") or shutil.which("conda")


@pytest.mark.slow
@pytest.mark.skipif(CONDA is None, reason="needs conda or mamba on PATH")
def test_conda_env_creates_and_imports_wsss(tmp_path):
    """What `snakemake --sdm conda` does with envs/wsss.yaml (a copy elsewhere, as Snakemake
    keeps it under .snakemake/conda/), then the import the rule scripts need."""
    env_file = tmp_path / "wsss.yaml"
    shutil.copy(REPO / "envs" / "wsss.yaml", env_file)
    prefix = tmp_path / "env"
    environ = {**os.environ, "WSSS_REPO": str(REPO)}
    create = [CONDA, "env", "create", "--quiet", "--file", str(env_file), "--prefix", str(prefix)]
    subprocess.run(create, check=True, env=environ, timeout=3600)
    out = subprocess.run(
        [str(prefix / "bin" / "python"), "-c", "import wsss, snakemake; print(wsss.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert Path(out.stdout.strip()).resolve() == (REPO / "wsss" / "__init__.py").resolve()
