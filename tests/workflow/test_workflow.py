"""The Snakemake workflow: lint, config errors, a VOC dry run, and a tiny end-to-end run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from wsss.data.synthetic import generate

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
TINY = REPO / "tests" / "workflow" / "tiny.yaml"


def snakemake(workdir: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` (which holds its own config.yaml copy)."""
    if not (workdir / "config.yaml").exists():
        shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    cmd = [
        str(SNAKEMAKE),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def write_overlay(path: Path, overlay: dict) -> Path:
    path.write_text(yaml.safe_dump(overlay))
    return path


def scratch_voc(root: Path) -> dict:
    """A VOC overlay that trains every model from scratch (no ImageNet weights to fetch)."""
    from wsss.fetch.pretrained import model_entries

    voc = yaml.safe_load((REPO / "config.yaml").read_text())["datasets"]["voc"]
    overlay: dict = {"root": str(root), "allow_scratch": True}
    for key, _ in model_entries(voc, "voc"):
        node = overlay
        for part in key.split(".")[1:]:
            node = node.setdefault(part, {})
        node["pretrained"] = "none"
    return {"datasets": {"voc": overlay}}


def test_lint_passes():
    result = subprocess.run([str(SNAKEMAKE), "--lint"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unknown_config_key_is_named(tmp_path):
    overlay = write_overlay(tmp_path / "bad.yaml", {"datasets": {"synth": {"cam": {"trian": {}}}}})
    result = snakemake(tmp_path, "-n", "--configfile", str(overlay))
    assert result.returncode != 0
    assert "trian" in result.stderr + result.stdout


def test_dangling_name_is_named(tmp_path):
    overlay = write_overlay(
        tmp_path / "bad.yaml", {"experiments": {"baseline": {"seg_model": "unet"}}}
    )
    result = snakemake(tmp_path, "-n", "--configfile", str(overlay))
    assert result.returncode != 0
    assert "experiments.baseline.seg_model: 'unet'" in result.stderr + result.stdout


def test_missing_voc_root_says_which_key(tmp_path):
    result = snakemake(tmp_path, "-n", "results/voc/miou.csv")
    assert result.returncode != 0
    out = result.stderr + result.stdout
    assert "datasets.voc.root is not set" in out
    assert "JPEGImages/" in out and "ImageSets/Segmentation" in out


def test_voc_dry_run_on_generated_tree(tmp_path):
    root = tmp_path / "VOC2012"
    generate(root, seed=1, num_train_aug=6, num_train=3, num_val=3)
    overlay = write_overlay(tmp_path / "voc.yaml", {"datasets": {"voc": {"root": str(root)}}})
    result = snakemake(tmp_path, "-n", "results/voc/miou.csv", "--configfile", str(overlay))
    assert result.returncode == 0, result.stderr + result.stdout
    for rule in (
        "check_dataset",
        "train_cam",
        "infer_cam",
        "eval_cam",
        "make_pseudo_labels",
        "eval_pseudo_labels",
        "train_seg",
        "infer_seg",
        "eval_seg",
        "collect_metrics",
    ):
        assert rule in result.stdout, rule


def test_missing_saliency_folder_is_named_before_any_work(tmp_path):
    root = tmp_path / "VOC2012"
    generate(root, seed=1, num_train_aug=6, num_train=3, num_val=3)
    shutil.rmtree(root / "SALImages")
    overlay = write_overlay(
        tmp_path / "voc.yaml", {"datasets": {"voc": {"root": str(root), "saliency_source": None}}}
    )
    result = snakemake(tmp_path, "-n", "results/voc/miou.csv", "--configfile", str(overlay))
    assert result.returncode != 0
    out = result.stderr + result.stdout
    assert f"needs saliency maps in {root}/SALImages: PFAN" in out
    assert "saliency_source: pfan_voc" in out
    assert "datasets.voc.experiments: ['baseline', 'oracle', 'ccnet', 'pcaa'" in out
    # with a source configured, the dry run schedules the fetch instead
    overlay = write_overlay(tmp_path / "voc.yaml", {"datasets": {"voc": {"root": str(root)}}})
    result = snakemake(tmp_path, "-n", "results/voc/miou.csv", "--configfile", str(overlay))
    assert result.returncode == 0, result.stderr
    assert "rule fetch_saliency:" in result.stdout


def test_missing_cityscapes_root_says_which_key(tmp_path):
    result = snakemake(tmp_path, "-n", "results/cityscapes/miou.csv")
    assert result.returncode != 0
    out = result.stderr + result.stdout
    assert "datasets.cityscapes.root is not set" in out
    assert "leftImg8bit/<split>/<city>/ and gtFine/train/<city>/" in out


def test_cityscapes_dry_run_on_generated_tree(tmp_path, cityscapes_tree):
    root = tmp_path / "cityscapes"
    cityscapes_tree(root)
    overlay = write_overlay(tmp_path / "cs.yaml", {"datasets": {"cityscapes": {"root": str(root)}}})
    result = snakemake(tmp_path, "-n", "results/cityscapes/miou.csv", "--configfile", str(overlay))
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = _dry_run_jobs(result.stdout)
    rules = sorted(rule for rule, _ in jobs)
    assert rules == sorted(
        ["fetch_dataset", "check_dataset", "collect_metrics"]
        + ["fetch_weights", "train_seg", "infer_seg", "eval_seg", "record_provenance"] * 2
    )
    weights = sorted(
        b.split("output:")[1].split(",")[0].strip() for r, b in jobs if r == "fetch_weights"
    )
    assert weights == ["weights/csail_resnet101.pth", "weights/openmmlab_resnet50_v1c.pth"]
    check = next(block for rule, block in jobs if rule == "check_dataset")
    assert "results/cityscapes/fetched.json" in check.split("output:")[0]
    collect = next(block for rule, block in jobs if rule == "collect_metrics")
    inputs = collect.split("input:")[1].split("output:")[0]
    assert sorted(p.strip() for p in inputs.split(",")) == sorted(
        f"results/cityscapes/{name}/{file}"
        for name in ("oracle_ccnet", "oracle_pcaa")
        for file in ("seg/eval/metrics.csv", "manifest.json")
    )


def _dry_run_jobs(stdout: str) -> list[tuple[str, str]]:
    """``(rule, block text)`` for every job a ``snakemake -n`` printout lists."""
    blocks = stdout.split("\nrule ")[1:]
    return [(b.split(":", 1)[0].strip(), b) for b in blocks]


def test_masks_from_experiment_reuses_masks(tmp_path):
    result = snakemake(tmp_path, "-n")
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = _dry_run_jobs(result.stdout)
    ccnet = {rule: block for rule, block in jobs if "experiment=ccnet" in block}
    # no CAM / pseudo-mask stages
    assert set(ccnet) == {"train_seg", "infer_seg", "eval_seg", "record_provenance"}
    assert "results/synth/baseline/pseudo/masks" in ccnet["train_seg"].split("output:")[0]
    cam_jobs = [block for rule, block in jobs if rule == "train_cam"]
    assert not any("experiment=ccnet" in block for block in cam_jobs)
    assert any("experiment=baseline" in block for block in cam_jobs)
    collect = next(block for rule, block in jobs if rule == "collect_metrics")
    assert "results/synth/ccnet/seg/eval/metrics.csv" in collect
    assert "results/synth/ccnet/cam" not in collect and "ccnet/pseudo" not in collect


@pytest.mark.parametrize("method", ["irn", "affinitynet"])
def test_cams_from_experiment_refines_the_baseline_cams(tmp_path, method):
    result = snakemake(tmp_path, "-n", "--configfile", str(TINY))
    assert result.returncode == 0, result.stderr + result.stdout
    jobs = {
        rule: block
        for rule, block in _dry_run_jobs(result.stdout)
        if f"experiment={method}" in block
    }
    assert set(jobs) == {
        "make_affinity_labels",
        "train_affinity",
        "random_walk",
        "eval_pseudo_labels",
        "train_seg",
        "infer_seg",
        "eval_seg",
        "record_provenance",
    }
    for rule in ("make_affinity_labels", "random_walk"):
        assert "results/synth/baseline/cam/maps" in jobs[rule].split("output:")[0]
    # init_from_cam: the affinity network starts from the baseline's CAM classifier
    assert "results/synth/baseline/cam/model.pt" in jobs["train_affinity"].split("output:")[0]
    assert f"results/synth/{method}/pseudo/masks" in jobs["random_walk"].split("log:")[0]


REPEATED = ("baseline", "oracle", "seam", "cda", "eps", "smaf", "irn")
SHARDED = {"infer_cam": 2, "pseudo_labels": 2, "infer_seg": 2}
SHARDED_FOLDERS = [  # (experiment, folder) written by a sharded stage: CAMs, CRF, walk, seg
    ("baseline", "cam/maps"),
    ("baseline", "pseudo/masks"),
    ("irn", "pseudo/masks"),
    ("baseline", "seg/predictions"),
]


def _files(folder: Path) -> dict[str, bytes]:
    """A folder's files (not Snakemake's hidden .snakemake_timestamp) and their bytes."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")]
    return {str(p.relative_to(folder)): p.read_bytes() for p in files}


def _manifest(experiment: Path) -> dict:
    return json.loads((experiment / "manifest.json").read_text())


@pytest.mark.slow
def test_tiny_end_to_end_run_is_complete_and_repeatable(tmp_path):
    runs = []
    # The second run repeats one experiment of each kind (CAM methods, CDA, SMAF's teacher chain,
    # a random walk, full supervision): a whole second DAG would double CI time for little more.
    # It also runs the per-image stages in two shards each: sharded outputs must equal unsharded.
    repeat = write_overlay(
        tmp_path / "repeat.yaml",
        {"datasets": {"synth": {"experiments": list(REPEATED)}}, "shards": SHARDED},
    )
    for name, extra in (("first", []), ("second", [str(repeat)])):
        workdir = tmp_path / name
        workdir.mkdir()
        result = snakemake(workdir, "--cores", "2", "--configfile", str(TINY), *extra)
        assert result.returncode == 0, result.stderr[-4000:]
        runs.append(workdir / "results" / "synth" / "miou.csv")

    table = pd.read_csv(runs[0])
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
    assert table.miou.between(0, 1).all() and table.pixel_acc.between(0, 1).all()
    assert (table.seed == 0).all()  # every experiment at the dataset's seed
    # Same seed, same machine: byte-identical rows.
    first = [
        line for line in runs[0].read_text().splitlines()[1:] if line.split(",")[1] in REPEATED
    ]
    assert runs[1].read_text().splitlines()[1:] == first
    assert {line.split(",")[1] for line in first} == set(REPEATED)
    # Sharded (second run) vs unsharded (first run): identical per-image files and config hash.
    for experiment, folder in SHARDED_FOLDERS:
        one, two = (tmp_path / run / "results/synth" / experiment for run in ("first", "second"))
        assert len(_files(one / folder)) > 1, (experiment, folder)
        assert _files(two / folder) == _files(one / folder), (experiment, folder)
        assert _manifest(two)["config_hash"] == _manifest(one)["config_hash"], experiment
    shards = tmp_path / "second/results/synth/shards/baseline/cam/maps"
    assert sorted(p.name for p in shards.iterdir()) == ["1-of-2", "2-of-2"]
    stages = _manifest(tmp_path / "second/results/synth/baseline")["stages"]
    assert stages["baseline/infer_cam"]["log"] == "logs/infer_cam/synth/baseline/1-of-2.log"
    assert not (tmp_path / "first/results/synth/shards").exists()

    results = tmp_path / "first" / "results" / "synth"
    for name in set(table.experiment):  # provenance and report for every experiment
        assert (results / name / "manifest.json").is_file(), name
        assert (results / "report" / "gallery" / f"{name}.png").is_file(), name
    assert (results / "report" / "metrics.html").is_file()

    exp = tmp_path / "first" / "results" / "synth" / "baseline"
    train_ids = tmp_path / "first" / "results/synth/dataset/ImageSets/Segmentation/train_aug.txt"
    n_train = len(train_ids.read_text().split())
    assert len(list((exp / "cam" / "maps").glob("*.npz"))) == n_train
    assert len(list((exp / "pseudo" / "masks").glob("*.png"))) == n_train
    assert (exp / "cam" / "eval" / "threshold_curve.csv").is_file()
    assert len(pd.read_csv(exp / "seg" / "train_log.csv")) > 0
    # No temporary or resume files left behind by the atomic writers.
    leftovers = [
        p
        for p in (tmp_path / "first" / "results").rglob("*")
        if ".tmp" in p.name or p.name.endswith(".resume")
    ]
    assert leftovers == []


def test_bad_dataset_stops_before_training_with_one_line(tmp_path):
    root = tmp_path / "VOC2012"
    generate(root, seed=2, num_train_aug=6, num_train=3, num_val=3)
    missing = (root / "ImageSets/Segmentation/train.txt").read_text().split()[1]
    (root / "JPEGImages" / f"{missing}.jpg").unlink()
    overlay = write_overlay(tmp_path / "voc.yaml", scratch_voc(root))
    result = snakemake(
        tmp_path, "--cores", "1", "results/voc/miou.csv", "--configfile", str(overlay)
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if "wsss ERROR" in line]
    assert len(errors) == 1 and f"{missing}.jpg" in errors[0], result.stderr[-3000:]
    assert not (tmp_path / "results" / "voc" / "baseline").exists()  # no training started
