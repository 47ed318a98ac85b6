"""Every rule script whose stage takes a mixed-precision mode passes the dataset's ``amp`` to it
(the stages default to float32, so a missing argument silently trains in float32 on a GPU)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "workflow" / "scripts").glob("*.py"))


def _stage_calls(path: Path) -> list[tuple[object, set[str]]]:
    """(stage function, keywords it is called with) for every wsss.stages function the script
    calls directly or hands to run_stage."""
    tree = ast.parse(path.read_text())
    imported = {
        alias.asname or alias.name: (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("wsss.stages")
        for alias in node.names
    }
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        names = [node.func] + list(node.args[:1])  # stage(...) or run_stage(stage, ...)
        for name in names:
            if isinstance(name, ast.Name) and name.id in imported:
                module, attr = imported[name.id]
                function = getattr(importlib.import_module(module), attr)
                calls.append((function, {k.arg for k in node.keywords}))
    return calls


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_a_stage_that_takes_amp_gets_the_configured_mode(script):
    for function, keywords in _stage_calls(script):
        if "amp" in inspect.signature(function).parameters:
            assert "amp" in keywords, f"{script.name} calls {function.__name__} without amp="


def test_the_rules_pass_the_datasets_amp_and_the_schema_defaults_it_to_auto():
    rules = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    with_amp = [s.stem for s in SCRIPTS if "amp=snakemake.params.amp" in s.read_text()]
    assert len(with_amp) == 7  # train/infer CAM, train SMAF, train/infer seg, affinity, walk
    assert rules.count('amp=section("amp"),') == len(with_amp)
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    dataset = schema["$defs"]["dataset"]["properties"]
    assert dataset["amp"]["default"] == "auto"
