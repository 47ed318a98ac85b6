"""The tiny end-to-end run (tests/workflow/tiny.yaml), shared by every assertion on it: complete,
repeatable, sharded = unsharded, seeds, provenance, report, export."""

from __future__ import annotations

import base64
import io
import json
import shutil
import tarfile
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.workflow.conftest import REPEATED, REPO

pytestmark = pytest.mark.slow  # one module: `--dist loadfile` keeps it on one worker

SHARDED_FOLDERS = [  # (experiment, folder) written by a sharded stage: CAMs, CRF, walk, seg
    ("baseline", "cam/maps"),
    ("baseline", "pseudo_labels/masks"),
    ("irn", "pseudo_labels/masks"),
    ("baseline", "seg/predictions"),
]


def _files(folder: Path) -> dict[str, bytes]:
    """A folder's files (not Snakemake's hidden .snakemake_timestamp) and their bytes."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def _manifest(experiment: Path) -> dict:
    return json.loads((experiment / "manifest.json").read_text())


def test_every_experiment_writes_its_rows(tiny_run):
    table = pd.read_csv(tiny_run.results / "miou.csv", dtype={"seed": str})
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    classes = config["datasets"]["synth"]["classes"]
    expected_columns = [
        "dataset",
        "experiment",
        "seed",
        "stage",
        "split",
        "threshold",
        "bg_threshold",
        "miou",
        "pixel_acc",
    ] + [f"iou_{c}" for c in classes]
    assert list(table.columns) == expected_columns
    keys = set(zip(table.experiment, table.stage, table.split, table.threshold, strict=True))
    assert keys == {
        ("baseline", "cam", "train", "fixed"),
        ("baseline", "cam", "train", "oracle"),
        ("baseline", "pseudo", "train", "fixed"),
        ("baseline", "seg", "val", "none"),
        ("oracle", "seg", "val", "none"),
        ("ccnet", "seg", "val", "none"),  # masks_from baseline: seg rows only
        ("pcaa", "seg", "val", "none"),
        ("oracle_ccnet", "seg", "val", "none"),
        ("oracle_pcaa", "seg", "val", "none"),
        ("affinitynet", "pseudo", "train", "fixed"),  # cams_from baseline: no cam rows
        ("affinitynet", "seg", "val", "none"),
        ("irn", "pseudo", "train", "fixed"),
        ("irn", "seg", "val", "none"),
    } | {  # SEAM, CPN, CDA, EPS and SMAF classifiers: their own CAM, pseudo and seg rows
        (method, stage, split, threshold)
        for method in ("seam", "cpn", "cda", "eps", "smaf")
        for stage, split, threshold in [
            ("cam", "train", "fixed"),
            ("cam", "train", "oracle"),
            ("pseudo", "train", "fixed"),
            ("seg", "val", "none"),
        ]
    }
    numbers = table[~table.seed.isin(["mean", "std"])]
    assert numbers.miou.between(0, 1).all() and numbers.pixel_acc.between(0, 1).all()
    # every experiment at the dataset's seed, the oracle also at seed 1 with mean and std rows
    assert (table[table.experiment != "oracle"].seed == "0").all()
    assert list(table[table.experiment == "oracle"].seed) == ["0", "1", "mean", "std"]

    exp = tiny_run.results / "baseline"
    train_ids = tiny_run.results / "dataset/ImageSets/Segmentation/train_aug.txt"
    n_train = len(train_ids.read_text().split())
    assert len(list((exp / "cam" / "maps").glob("*.npz"))) == n_train
    assert len(list((exp / "pseudo_labels" / "masks").glob("*.png"))) == n_train
    assert (exp / "cam" / "eval" / "threshold_curve.csv").is_file()
    assert len(pd.read_csv(exp / "seg" / "train_log.csv")) > 0
    # No temporary or resume files left behind by the atomic writers.
    leftovers = [
        p
        for p in (tiny_run.workdir / "results").rglob("*")
        if ".tmp" in p.name or p.name.endswith(".resume")
    ]
    assert leftovers == []


def test_rerun_is_byte_identical_and_shards_equal_one_job(tiny_run, tiny_rerun):
    # Same seeds, same machine: byte-identical rows (seed 1 and the mean/std rows included).
    first, second = (run.results / "miou.csv" for run in (tiny_run, tiny_rerun))
    repeated = [
        line for line in first.read_text().splitlines()[1:] if line.split(",")[1] in REPEATED
    ]
    assert second.read_text().splitlines()[1:] == repeated
    assert {line.split(",")[1] for line in repeated} == set(REPEATED)
    # Sharded (rerun) vs unsharded (first run): identical per-image files and config hash.
    for experiment, folder in SHARDED_FOLDERS:
        one, two = (run.results / experiment for run in (tiny_run, tiny_rerun))
        assert len(_files(one / folder)) > 1, (experiment, folder)
        assert _files(two / folder) == _files(one / folder), (experiment, folder)
        assert _manifest(two)["config_hash"] == _manifest(one)["config_hash"], experiment
    shards = tiny_rerun.results / "shards/baseline/cam/maps"
    assert sorted(p.name for p in shards.iterdir()) == ["1-of-2", "2-of-2"]
    stages = _manifest(tiny_rerun.results / "baseline")["stages"]
    assert stages["baseline/infer_cam"]["log"] == "logs/infer_cam/synth/baseline/1-of-2.log"
    assert not (tiny_run.results / "shards").exists()


def test_each_seed_is_its_own_run(tiny_run):
    # seed 0 is the dataset's seed: the plain folder; seed 1 beside it
    models = [tiny_run.results / run / "seg" / "model.pt" for run in ("oracle", "oracle@1")]
    assert models[0].read_bytes() != models[1].read_bytes()
    manifest = _manifest(tiny_run.results / "oracle@1")
    assert (manifest["experiment"], manifest["run"], manifest["seed"]) == ("oracle", "oracle@1", 1)
    assert manifest["stages"]["oracle@1/train_seg"]["params"]["seed"] == 1


def test_manifests_record_every_stage(tiny_run):
    table = pd.read_csv(tiny_run.results / "miou.csv")
    for name in set(table.experiment):
        manifest = _manifest(tiny_run.results / name)
        for key in ("git", "packages", "device", "data", "seed", "config_hash"):
            assert manifest[key] is not None, (name, key)
        assert manifest["started"] <= manifest["finished"] <= manifest["written"]
        assert set(manifest["git"]) >= {"commit", "dirty"}
        assert manifest["device"]["used"] == ["cpu"] or manifest["device"]["host"]["gpus"]
        splits = manifest["data"]["splits"]
        assert {"train_aug", "train", "val"} <= set(splits)
        assert all(len(s["file_sha256"]) == 64 for s in splits.values())
        assert set(manifest["dataset_stages"]) == {"make_synthetic_voc", "check_dataset"}
    ccnet = _manifest(tiny_run.results / "ccnet")
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


def test_report_holds_the_table_and_the_gallery(tiny_run):
    results = _report_results(tiny_run.results / "report.html")
    table = results["results/synth/report/metrics.html"]
    page = _decoded(table).decode()
    assert "<table id='metrics'>" in page and "<table id='per-class'>" in page
    rows = pd.read_csv(tiny_run.results / "miou.csv")
    # a header and a row per miou.csv row, in the metrics and the per-class table
    assert page.count("<tr>") + page.count('<tr class="summary">') == 2 * (len(rows) + 1)
    assert "background threshold swept on this ground truth" in page  # the oracle CAM row
    assert "trained on ground-truth masks (full supervision" in page  # the oracle seg row
    assert "results/synth/miou.csv" in results
    gallery = {k: v for k, v in results.items() if "/report/gallery/" in k}
    runs = sorted({*rows.experiment, "oracle@1"})
    assert sorted(v["labels"]["experiment"] for v in gallery.values()) == runs
    assert all(_decoded(v).startswith(b"\x89PNG") for v in gallery.values())
    for name in runs:
        assert (tiny_run.results / "report" / "gallery" / f"{name}.png").is_file(), name
    for figure in ("per_class_iou", "threshold_curves", "loss_curves"):
        assert f"results/synth/report/{figure}.png" in results, figure


def test_config_hash_follows_a_parameter(tiny_run, workflow, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run.workdir, workdir, symlinks=True)
    target = "results/synth/oracle/manifest.json"
    before = json.loads((workdir / target).read_text())
    faster = workflow.overlay(
        workdir / "lr.yaml", {"datasets": {"synth": {"seg": {"train": {"lr": 0.002}}}}}
    )
    result = workflow.run(workdir, "--cores", "2", target, *tiny_run.args, str(faster))
    assert result.returncode == 0, result.stderr[-4000:]
    after = json.loads((workdir / target).read_text())
    assert after["stages"]["oracle/train_seg"]["params"]["train"]["lr"] == 0.002
    assert before["config_hash"] != after["config_hash"]
    changed = [k for k in after["stages"] if after["stages"][k] != before["stages"][k]]
    assert "oracle/train_seg" in changed
    for key in ("oracle/infer_seg", "oracle/eval_seg"):
        assert after["stages"][key]["config_hash"] == before["stages"][key]["config_hash"]


def test_export_verify_round_trip_and_tampering(tiny_run, workflow, tmp_path):
    workdir = tmp_path / "copy"
    shutil.copytree(tiny_run.workdir, workdir, symlinks=True)
    targets = ("exports/synth/baseline.verified", "exports/synth.verified")
    result = workflow.run(workdir, "--cores", "1", *targets, *tiny_run.args)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "OK:" in (workdir / targets[0]).read_text()
    with tarfile.open(workdir / "exports" / "synth.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"synth/SHA256SUMS", "synth/miou.csv", "synth/ccnet/manifest.json"} <= names
    assert "synth/report/metrics.html" in names
    assert {"synth/cost.csv", "synth/benchmarks/ccnet/train_seg.tsv"} <= names
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
    result = workflow.run(workdir, "--cores", "1", "received/baseline.verified", *tiny_run.args)
    assert result.returncode != 0
    assert "altered: seg/eval/metrics.csv" in result.stderr
    assert not (received / "baseline.verified").exists()


TRAINING = {
    "train_cam": "cam",
    "train_smaf": "cam",
    "train_affinity": "affinity",
    "train_seg": "seg",
}


def test_every_job_left_its_cost_and_training_its_event_file(tiny_run, tiny_rerun):
    # The jobs of every run, from the manifests (each stage that wrote a run's inputs).
    jobs = set()
    for manifest in map(_manifest, (p.parent for p in tiny_run.results.glob("*/manifest.json"))):
        jobs |= {tuple(key.split("/")) for key in manifest["stages"]}
    assert ("baseline", "make_pseudo_labels") in jobs and ("oracle@1", "train_seg") in jobs
    bench = tiny_run.results / "benchmarks"
    for run, rule in jobs:
        assert (bench / run / f"{rule}.tsv").is_file(), (run, rule)
    assert (bench / "_dataset" / "check_dataset.tsv").is_file()
    cost = pd.read_csv(tiny_run.results / "cost.csv", keep_default_na=False)
    rows = set(zip(cost.experiment, cost.rule, strict=True))
    dataset_jobs = {("_dataset", "check_dataset"), ("_dataset", "make_synthetic_voc")}
    assert rows == jobs | dataset_jobs
    assert len(cost) == len(rows) and set(cost.shard) == {""}
    assert (pd.to_numeric(cost.wall_s) > 0).all() and (cost.repeats == 1).all()
    # Sharded jobs: one benchmark file and one row per shard.
    rerun = pd.read_csv(tiny_rerun.results / "cost.csv", keep_default_na=False)
    shards = rerun[(rerun.experiment == "baseline") & (rerun.rule == "infer_cam")]
    assert sorted(shards.shard) == ["1-of-2", "2-of-2"]
    # Each training job left a TensorBoard event file outside its run folder.
    for run, rule in jobs:
        if rule in TRAINING:
            folder = tiny_run.results / "tensorboard" / run / TRAINING[rule]
            assert list(folder.glob("events.out.tfevents.*")), (run, rule)


def test_report_holds_the_cost_table(tiny_run):
    results = _report_results(tiny_run.results / "report.html")
    assert "results/synth/cost.csv" in results
