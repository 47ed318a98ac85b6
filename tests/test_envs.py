"""envs/wsss.yaml (cluster users' conda env) pins the same packages as pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
    got = {_name(s): s.replace(" ", "") for s in pip}
    assert got == wanted
