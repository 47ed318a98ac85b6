"""The SLURM profile: per-rule resources from config in a dry run, and a run on a real
one-node SLURM cluster (.ci/local-slurm.sh) with fake GPUs."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from wsss.data.synthetic import generate

REPO = Path(__file__).resolve().parents[2]
PROFILES = REPO / "workflow" / "profiles"
CLUSTER = REPO / ".ci" / "local-slurm.sh"
GPU_RULES = ("train_cam", "infer_cam", "train_seg", "infer_seg")  # of the baseline experiment
CPU_KEYS = ("cpus_per_task", "cpus_per_gpu")
RUN_TIMEOUT = 900  # seconds; a broken status query makes snakemake wait forever


def _resources(block: str) -> dict[str, str]:
    line = next(x for x in block.splitlines() if x.strip().startswith("resources:"))
    return dict(item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))


def _config_resources() -> dict[str, dict]:
    return yaml.safe_load((REPO / "config.yaml").read_text())["resources"]


def test_every_resources_line_names_a_configurable_rule():
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    allowed = set(schema["properties"]["resources"]["propertyNames"]["enum"])
    rules = {}  # rule -> the names its resources: lines pass to rule_resources
    for path in (REPO / "workflow" / "rules").glob("*.smk"):
        for block in re.split(r"^(?=rule )", path.read_text(), flags=re.M)[1:]:
            name = re.match(r"rule (\w+):", block).group(1)
            rules[name] = re.findall(
                r'^    resources:\s+\*\*rule_resources\("(\w+)"\),?$', block, re.M
            )  # snakefmt's layout: the unpacking on its own line
    assert rules and all(lines == [name] for name, lines in rules.items()), rules
    assert allowed == set(rules) | {"default"}
    assert set(_config_resources()) - {"default"} <= set(rules)


def test_unknown_rule_in_resources_is_named(tmp_path, workflow):
    overlay = workflow.overlay(tmp_path / "bad.yaml", {"resources": {"train_cma": {"gpu": 1}}})
    result = workflow.run(tmp_path, "-n", "--configfile", str(overlay))
    assert result.returncode != 0
    assert "train_cma" in result.stdout + result.stderr


def test_make_setup_links_the_profile_for_the_literal_command(tmp_path, workflow):
    """`make slurm-profile` (part of `make setup`) installs ~/.config/snakemake/slurm, after which
    `snakemake --profile slurm results/voc/miou.csv` from the repository root finds it; the GPU
    rules then request what config.yaml's resources: say (here changed by an overlay)."""
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg"), "SBATCH_ACCOUNT": "proj42"}
    make = ["make", "-s", "-C", str(REPO), "slurm-profile"]
    subprocess.run(make, env=env, check=True, capture_output=True)
    link = tmp_path / "cfg" / "snakemake" / "slurm"
    assert link.resolve() == (PROFILES / "slurm").resolve()

    root = tmp_path / "VOC2012"
    generate(root, seed=1, num_train_aug=6, num_train=3, num_val=3)
    overlay = workflow.overlay(
        tmp_path / "voc.yaml",
        {
            "datasets": {"voc": {"root": str(root)}},
            "resources": {
                "train_cam": {"mem_mb": 12345, "runtime": 77, "cpus_per_gpu": 3},
                "train_seg": {"gpu": 2},
            },
        },
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.yaml").write_text((REPO / "config.yaml").read_text())
    cmd = [str(workflow.snakemake), "-n", "--profile", "slurm", "results/voc/miou.csv"]
    cmd += ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    result = subprocess.run(
        [*cmd, "--configfile", str(overlay)], cwd=REPO, env=env, capture_output=True, text=True
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "Using profile slurm for setting" in out  # found through the link: XDG_CONFIG_HOME
    jobs = {rule: _resources(block) for rule, block in workflow.jobs(result.stdout)}
    config = yaml.safe_load((REPO / "config.yaml").read_text())["resources"]
    assert jobs["train_cam"]["mem_mb"] == "12345" and jobs["train_cam"]["runtime"] == "77"
    assert jobs["train_cam"]["gpu"] == "1" and jobs["train_cam"]["cpus_per_gpu"] == "3"
    assert jobs["train_seg"]["gpu"] == "2"
    for rule in ("infer_cam", "infer_seg"):
        assert jobs[rule]["gpu"] == str(config[rule]["gpu"])
        assert jobs[rule]["mem_mb"] == str(config[rule]["mem_mb"])
        assert "cpus_per_task" not in jobs[rule]
    default = config["default"]
    assert jobs["eval_cam"]["mem_mb"] == str(default["mem_mb"])
    assert jobs["eval_cam"]["cpus_per_task"] == str(default["cpus_per_task"])
    assert "gpu" not in jobs["eval_cam"]
    assert all(resources["slurm_account"] == "proj42" for resources in jobs.values())


def test_make_setup_keeps_an_existing_profile(tmp_path):
    existing = tmp_path / "cfg" / "snakemake" / "slurm"
    existing.mkdir(parents=True)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    make = ["make", "-s", "-C", str(REPO), "slurm-profile"]
    result = subprocess.run(make, env=env, check=True, capture_output=True, text=True)
    assert existing.is_dir() and not existing.is_symlink()
    assert result.stdout.strip().splitlines() == [
        f"{existing} exists: left as it is (this repository's: --profile workflow/profiles/slurm)"
    ]


# ---- a real SLURM cluster -------------------------------------------------------------------


@pytest.fixture(scope="session")
def slurm_cluster():
    """A one-node SLURM with 2 fake GPUs for the session; skipped where it cannot run."""
    if not Path("/usr/bin/apt-get").exists() and not Path("/usr/sbin/slurmctld").exists():
        pytest.skip("local SLURM: needs a Debian/Ubuntu machine (apt-get)")
    env = {**os.environ, "SLURM_CI_GPUS": "2"}
    try:
        try:
            cmd = ["bash", str(CLUSTER), "start"]
            start = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            pytest.skip("local SLURM: .ci/local-slurm.sh start took over 600 s")
        if start.returncode == 77:
            pytest.skip(f"local SLURM cannot run here: {start.stderr.strip().splitlines()[-1]}")
        assert start.returncode == 0, start.stdout + start.stderr
        yield env
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop"], env=env, capture_output=True, timeout=120)


def _run_with_hard_timeout(cmd: list[str], log: Path, timeout: int) -> int:
    """Run ``cmd``; past ``timeout`` send SIGINT (snakemake cancels its SLURM jobs), then kill."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            pytest.fail(f"snakemake under SLURM ran past {timeout}s:\n{log.read_text()[-3000:]}")


def _scontrol(job_id: str) -> str:
    result = subprocess.run(
        ["scontrol", "show", "job", "-d", job_id], capture_output=True, text=True, timeout=10
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_baseline_runs_through_slurm(slurm_cluster, tmp_path, workflow):
    """Every job but the local collect_metrics goes through sbatch; the GPU rules get a fake GPU
    and the memory and time limits of config resources:, and run on CPU there (no CUDA)."""
    # a 2-CPU node: shrink every entry of config.yaml (the overlay merges key by key)
    small = {
        rule: {"mem_mb": 1000, "runtime": 10, **{k: 1 for k in CPU_KEYS if k in entry}}
        for rule, entry in _config_resources().items()
    }
    small["train_cam"].update(mem_mb=900, runtime=7)
    overlay = workflow.overlay(
        tmp_path / "slurm.yaml",
        {
            "datasets": {"synth": {"experiments": ["baseline"]}},
            "resources": {**small, "default": {"cpus_per_task": 1, "mem_mb": 1000, "runtime": 10}},
        },
    )
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "config.yaml").write_text((REPO / "config.yaml").read_text())
    cmd = [str(workflow.snakemake), "--profile", str(PROFILES / "slurm-ci")]
    cmd += ["--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["results/synth/miou.csv", "--configfile", str(workflow.tiny), str(overlay)]
    log = tmp_path / "snakemake.log"
    rc = _run_with_hard_timeout(cmd, log, RUN_TIMEOUT)
    out = log.read_text()
    assert rc == 0, out[-4000:]

    table = pd.read_csv(workdir / "results" / "synth" / "miou.csv")
    rows = set(zip(table.experiment, table.stage, table.split, table.threshold, strict=True))
    assert rows == {
        ("baseline", "cam", "train", "fixed"),
        ("baseline", "cam", "train", "oracle"),
        ("baseline", "pseudo", "train", "fixed"),
        ("baseline", "seg", "val", "none"),
    }
    assert table.miou.between(0, 1).all()

    # per-rule SLURM logs (<logdir>/rule_<rule>/<wildcards>/<job id>.log), one job each
    paths = sorted(workdir.glob("logs/slurm/rule_*/*/*.log"))
    logs = {path.parent.parent.name.removeprefix("rule_"): path for path in paths}
    assert len(logs) == len(paths), paths  # no rule needed a second attempt
    sbatch_rules = {"make_synthetic_voc", "check_dataset", "eval_cam", "make_pseudo_labels"}
    sbatch_rules |= {"eval_pseudo_labels", "eval_seg", *GPU_RULES}
    assert sbatch_rules <= set(logs), sorted(logs)
    assert "collect_metrics" not in logs and "localrule collect_metrics" in out
    for path in logs.values():
        assert f"submitted with SLURM jobid {path.stem} (log: {path})" in out

    # what SLURM itself recorded: the GPU rules had a GPU (fake, index 0 or 1), the others none;
    # memory and time limits are config resources: values
    for rule in GPU_RULES:
        job = _scontrol(logs[rule].stem)
        assert re.search(r"JOB_GRES=gpu:fake:1\b", job), (rule, job)
        assert "JobState=COMPLETED" in job
    train_cam = _scontrol(logs["train_cam"].stem)
    assert "TimeLimit=00:07:00" in train_cam and "MinMemoryNode=900M" in train_cam
    for rule in ("check_dataset", "eval_cam"):
        job = _scontrol(logs[rule].stem)
        assert not re.search(r"gres[:/]gpu|JOB_GRES=gpu", job), (rule, job)
        assert "TimeLimit=00:10:00" in job and "MinMemoryNode=1000M" in job
    # a fake GPU has no CUDA behind it: the stages fell back to the CPU
    train_log = (workdir / "logs" / "train_cam" / "synth" / "baseline.log").read_text()
    assert "using device cpu" in train_log
