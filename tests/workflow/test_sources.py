"""wsss.workflow.sources: where a dataset's files come from, on small trees in tmp_path, with the
one-line errors of what is missing (no Snakemake)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from wsss.workflow import Plan, sources


def _config(root: Path | None, **spec) -> dict:
    dataset = {
        "root": None if root is None else str(root),
        "splits": {"train": "SegmentationClassAug", "val": "SegmentationClass"},
        "stage_splits": {"train": "train", "eval_train": "train", "eval_val": "val"},
        "labels_file": "cls_labels.csv",
        "saliency_source": None,
        "saliency_dir": "SALImages",
        "cam": {"loss": None},
        "cam_methods": {
            "eps": {"loss": {"tau": 0.4, "lam": 0.5}},
            "smaf": {"loss": {"denoise": "none"}},
        },
        **spec,
    }
    return {
        "downloads": {"sources": {}, "cache": None},
        "experiments": {
            "base": {"supervision": "weak", "refine": "crf", "seg_model": "deeplab"},
            "eps": {"supervision": "weak", "cam_method": "eps", "refine": "crf"},
            "smaf": {"supervision": "weak", "cam_method": "smaf", "teacher": "eps"},
        },
        "datasets": {"real": dataset},
    }


def test_a_voc_tree_is_read_through_its_split_lists_and_label_file(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert sources.dataset_sources(config, "real") == [
        str(tmp_path / "ImageSets/Segmentation/train.txt"),
        str(tmp_path / "ImageSets/Segmentation/val.txt"),
        f"{tmp_path}/cls_labels.csv",
    ]


def test_a_cityscapes_tree_is_read_through_its_folders(tmp_path: Path) -> None:
    config = _config(tmp_path, layout="cityscapes", splits={"val": "gtFine"}, labels_file=None)
    assert sources.dataset_sources(config, "real") == [
        str(tmp_path / "leftImg8bit/val"),
        str(tmp_path / "gtFine/val"),
    ]


def test_generated_and_fetched_trees(tmp_path: Path) -> None:
    synthetic = _config(tmp_path / "made", synthetic={})
    assert sources.dataset_sources(synthetic, "real") == str(tmp_path / "made")
    fetched = _config(tmp_path / "absent", fetch="voc_sbd")
    assert sources.dataset_sources(fetched, "real") == "results/real/fetched.json"
    assert sources.fetch_destination(fetched, "real") == str(tmp_path / "absent")
    assert sources.download_cache(fetched, "real") == f"{tmp_path / 'absent'}/.downloads"
    fetched["downloads"]["cache"] = "/cache"
    assert sources.download_cache(fetched, "real") == "/cache"


@pytest.mark.parametrize("root", [None, "absent"])
def test_a_missing_root_is_named(tmp_path: Path, root: str | None) -> None:
    config = _config(None if root is None else tmp_path / root)
    state = "not set" if root is None else f"'{tmp_path / root}', which is not a folder"
    with pytest.raises(ValueError, match=rf"^datasets\.real\.root is {state}: set it"):
        sources.dataset_sources(config, "real")


def test_fetch_inputs_refuse_what_cannot_be_fetched(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^datasets\.real\.fetch is null: nothing to fetch$"):
        sources.fetch_inputs(_config(tmp_path), "real")
    with pytest.raises(ValueError, match=r"^datasets\.real\.root is not set: set it to the"):
        sources.fetch_inputs(_config(None, fetch="voc_sbd"), "real")
    with pytest.raises(ValueError, match="Cityscapes needs a login"):
        sources.fetch_inputs(_config(tmp_path, fetch="cityscapes"), "real")
    config = _config(tmp_path, fetch="voc_sbd")
    local = {"voc2012_trainval": {"path": "/archives/voc.tar"}}
    config["downloads"]["sources"] = local
    assert sources.fetch_inputs(config, "real") == ["/archives/voc.tar"]  # sbd has a URL


def test_saliency_inputs(tmp_path: Path) -> None:
    config = _config(tmp_path)
    plan = Plan(config)
    assert sources.saliency_input(plan, "real", "base") == []  # needs none
    with pytest.raises(ValueError, match=rf"^experiment 'eps' needs saliency maps in {tmp_path}"):
        sources.saliency_input(plan, "real", "eps")
    (tmp_path / "SALImages").mkdir()
    assert sources.saliency_input(plan, "real", "eps") == str(tmp_path / "SALImages")
    archive = copy.deepcopy(config)
    archive["datasets"]["real"]["saliency_source"] = "pfan_voc"
    archive["downloads"]["sources"] = {"pfan_voc": {"path": "/archives/pfan.zip"}}
    assert sources.saliency_input(Plan(archive), "real", "eps") == "results/real/saliency.json"
    assert sources.saliency_fetch_inputs(archive, "real") == [
        str(tmp_path / "ImageSets/Segmentation/train.txt"),
        "/archives/pfan.zip",
    ]
