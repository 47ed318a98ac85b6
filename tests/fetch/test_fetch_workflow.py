"""The workflow end to end: an empty VOC root → fetch_dataset (VOC + SBD over HTTP) →
check_dataset → fetch_weights (torchvision format over HTTP) → a dry run of the whole VOC
pipeline; and the one-line refusal of scratch training on a real dataset."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision
import yaml

from tests.fetch.voc_archives import build_voc_archives

REPO = Path(__file__).resolve().parents[2]
SNAKEMAKE = Path(sys.executable).with_name("snakemake")


def snakemake(workdir: Path, overlay: dict, *args: str) -> subprocess.CompletedProcess:
    if not (workdir / "config.yaml").exists():
        shutil.copy(REPO / "config.yaml", workdir / "config.yaml")
    (workdir / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    cmd = [str(SNAKEMAKE), "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += [*args, "--configfile", str(workdir / "overlay.yaml")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900)


def jobs(stdout: str) -> list[str]:
    return sorted(block.split(":", 1)[0].strip() for block in stdout.split("\nrule ")[1:])


@pytest.mark.slow
def test_empty_root_to_checked_dataset_and_converted_weights(tmp_path, server):
    archives = build_voc_archives()
    server.files["/voc.tar"] = archives.voc_tar
    server.files["/benchmark.tgz"] = archives.sbd_tgz
    buf = io.BytesIO()
    source = torchvision.models.resnet50(weights=None).state_dict()
    torch.save(source, buf)
    server.files["/resnet50.pth"] = buf.getvalue()
    root = tmp_path / "data" / "VOC2012"  # does not exist yet
    md5 = {k: hashlib.md5(v).hexdigest() for k, v in server.files.items()}
    sha = hashlib.sha256(server.files["/resnet50.pth"]).hexdigest()
    overlay = {
        "datasets": {"voc": {"root": str(root)}},
        "downloads": {
            "sources": {
                "voc2012_trainval": {
                    "url": server.url("/voc.tar"),
                    "digest": f"md5:{md5['/voc.tar']}",
                },
                "sbd_benchmark": {
                    "url": server.url("/benchmark.tgz"),
                    "digest": f"md5:{md5['/benchmark.tgz']}",
                },
            }
        },
        "weights": {
            "sources": {
                "torchvision_resnet50": {
                    "url": server.url("/resnet50.pth"),
                    "digest": f"sha256:{sha[:10]}",
                }
            }
        },
    }
    work = tmp_path / "work"
    work.mkdir()
    dry = snakemake(work, overlay, "-n", "results/voc/miou.csv")
    assert dry.returncode == 0, dry.stderr[-3000:]
    planned = jobs(dry.stdout)
    assert planned.count("fetch_dataset") == 1 and planned.count("fetch_saliency") == 1
    assert planned.count("fetch_weights") == 4  # torchvision R-50, ResNet-38, CSAIL, v1c R-101

    run = snakemake(
        work,
        overlay,
        "--cores",
        "1",
        "results/voc/dataset_index.json",
        "weights/torchvision_resnet50.pth",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    index = json.loads((work / "results/voc/dataset_index.json").read_text())
    assert len(index["splits"]["train_aug"]) == 6 and len(index["splits"]["val"]) == 2
    state = torch.load(work / "weights/torchvision_resnet50.pth", weights_only=True)
    assert torch.equal(state["layer4.2.conv3.weight"], source["layer4.2.conv3.weight"])

    again = snakemake(work, overlay, "-n", "results/voc/miou.csv")
    assert again.returncode == 0, again.stderr[-3000:]
    planned = jobs(again.stdout)
    assert "fetch_dataset" not in planned and "check_dataset" not in planned
    assert planned.count("fetch_weights") == 3  # the fetched one is not planned again


def test_real_dataset_with_pretrained_none_stops_at_dag_time(tmp_path):
    overlay = {
        "datasets": {
            "voc": {
                "root": str(tmp_path / "voc"),
                "seg": {"models": {"deeplab": {"pretrained": "none"}}},
            }
        }
    }
    result = snakemake(tmp_path, overlay, "-n", "results/voc/miou.csv")
    assert result.returncode != 0
    out = result.stdout + result.stderr
    lines = [line for line in out.splitlines() if "pretrained is none" in line]
    assert lines == [
        "datasets.voc.seg.models.deeplab.pretrained is none: datasets.voc would train from random "
        "weights, far below every paper; name ImageNet weights (e.g. imagenet = "
        "torchvision_resnet50; rule fetch_weights downloads them: snakemake "
        "weights/torchvision_resnet50.pth), or set datasets.voc.allow_scratch: true to train "
        "from scratch"
    ]
    overlay["datasets"]["voc"]["allow_scratch"] = True
    result = snakemake(tmp_path, overlay, "-n", "results/voc/miou.csv")
    assert result.returncode == 0, result.stderr[-2000:]
