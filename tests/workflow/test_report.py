"""One tiny run (baseline, oracle, ccnet) shared by the report, manifest and export checks."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXPERIMENTS = ["baseline", "oracle", "ccnet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, workflow) -> Path:
    workdir = tmp_path_factory.mktemp("report")
    subset = workflow.overlay(
        workdir / "subset.yaml", {"datasets": {"synth": {"experiments": EXPERIMENTS}}}
    )
    args = ("--configfile", str(workflow.tiny), str(subset))
    result = workflow.run(workdir, "--cores", "2", *args)
    assert result.returncode == 0, result.stderr[-4000:]
    report = workflow.run(workdir, *args, "--report", "results/synth/report.html")
    assert report.returncode == 0, report.stderr[-4000:]
    return workdir


class _Scripts(HTMLParser):
    """The text of every ``<script id=...>`` element."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: dict[str, str] = {}
        self._current: str | None = None

    def handle_starttag(self, tag, attrs):
        ident = dict(attrs).get("id")
        if tag == "script" and ident:
            self._current = ident
            self.scripts[ident] = ""

    def handle_endtag(self, tag):
        if tag == "script":
            self._current = None

    def handle_data(self, data):
        if self._current:
            self.scripts[self._current] += data


def _report_results(path: Path) -> dict:
    parser = _Scripts()
    parser.feed(path.read_text())
    text = parser.scripts["results"].strip()
    return json.loads(text.removeprefix("var results =").strip().rstrip(";"))


def _decoded(entry: dict) -> bytes:
    return base64.b64decode(entry["data_uri"].split(",", 1)[1])


def test_report_holds_the_table_and_the_gallery(run):
    results = _report_results(run / "results" / "synth" / "report.html")
    table = results["results/synth/report/metrics.html"]
    page = _decoded(table).decode()
    assert "<table id='metrics'>" in page and "<table id='per-class'>" in page
    assert page.count("<tr>") + page.count('<tr class="summary">') == 2 * (6 + 1)
    assert "background threshold swept on this ground truth" in page  # the oracle CAM row
    assert "trained on ground-truth masks (full supervision" in page  # the oracle seg row
    assert "results/synth/miou.csv" in results
    gallery = {k: v for k, v in results.items() if "/report/gallery/" in k}
    assert sorted(v["labels"]["experiment"] for v in gallery.values()) == sorted(EXPERIMENTS)
    assert all(_decoded(v).startswith(b"\x89PNG") for v in gallery.values())
    for figure in ("per_class_iou", "threshold_curves", "loss_curves"):
        assert f"results/synth/report/{figure}.png" in results, figure


def test_manifests_record_every_stage(run):
    results = run / "results" / "synth"
    for name in EXPERIMENTS:
        manifest = json.loads((results / name / "manifest.json").read_text())
        for key in ("git", "packages", "device", "data", "seed", "config_hash"):
            assert manifest[key] is not None, (name, key)
        assert manifest["started"] <= manifest["finished"] <= manifest["written"]
        assert set(manifest["git"]) >= {"commit", "dirty"}
        assert manifest["device"]["used"] == ["cpu"] or manifest["device"]["host"]["gpus"]
        splits = manifest["data"]["splits"]
        assert {"train_aug", "train", "val"} <= set(splits)
        assert all(len(s["file_sha256"]) == 64 for s in splits.values())
        assert set(manifest["dataset_stages"]) == {"make_synthetic_voc", "check_dataset"}
    ccnet = json.loads((results / "ccnet" / "manifest.json").read_text())
    assert ccnet["stage_order"] == [
        "baseline/train_cam",
        "baseline/infer_cam",
        "baseline/make_pseudo_labels",
        "ccnet/train_seg",
        "ccnet/infer_seg",
        "ccnet/eval_seg",
    ]  # the CAMs and masks it trains on come from baseline
    train = ccnet["stages"]["ccnet/train_seg"]
    assert train["params"]["model_name"] == "ccnet" and train["params"]["seed"] == 0


def test_config_hash_follows_a_parameter(run, workflow, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(run, workdir, symlinks=True)
    target = "results/synth/oracle/manifest.json"
    before = json.loads((workdir / target).read_text())
    faster = workflow.overlay(
        workdir / "lr.yaml", {"datasets": {"synth": {"seg": {"train": {"lr": 0.002}}}}}
    )
    args = ("--configfile", str(workflow.tiny), str(workdir / "subset.yaml"), str(faster))
    result = workflow.run(workdir, "--cores", "2", target, *args)
    assert result.returncode == 0, result.stderr[-4000:]
    after = json.loads((workdir / target).read_text())
    assert after["stages"]["oracle/train_seg"]["params"]["train"]["lr"] == 0.002
    assert before["config_hash"] != after["config_hash"]
    changed = [k for k in after["stages"] if after["stages"][k] != before["stages"][k]]
    assert "oracle/train_seg" in changed
    for key in ("oracle/infer_seg", "oracle/eval_seg"):
        assert after["stages"][key]["config_hash"] == before["stages"][key]["config_hash"]


def test_export_verify_round_trip_and_tampering(run, workflow, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(run, workdir, symlinks=True)
    args = ("--configfile", str(workflow.tiny), str(workdir / "subset.yaml"))
    targets = ("exports/synth/baseline.verified", "exports/synth.verified")
    result = workflow.run(workdir, "--cores", "1", *targets, *args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "OK:" in (workdir / targets[0]).read_text()
    with tarfile.open(workdir / "exports" / "synth.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"synth/SHA256SUMS", "synth/miou.csv", "synth/ccnet/manifest.json"} <= names
    assert "synth/report/metrics.html" in names
    assert not any(n.startswith("synth/dataset/") for n in names)

    # a received copy with one file altered fails verification and names the file
    received = workdir / "received"
    received.mkdir()
    with tarfile.open(workdir / "exports" / "synth" / "baseline.tar.gz") as tar:
        members = [(m, tar.extractfile(m).read() if m.isfile() else None) for m in tar]
    with tarfile.open(received / "baseline.tar.gz", "w:gz") as tar:
        for member, data in members:
            if member.name.endswith("seg/eval/metrics.csv"):
                data = data.replace(b"0.", b"9.", 1)
            tar.addfile(member, None if data is None else io.BytesIO(data))
    result = workflow.run(workdir, "--cores", "1", "received/baseline.verified", *args)
    assert result.returncode != 0
    assert "altered: seg/eval/metrics.csv" in result.stderr
    assert not (received / "baseline.verified").exists()
