"""fetch_dataset / fetch_saliency on small archives served over HTTP: VOC 2012 + SBD become
SegmentationClassAug and train_aug, which check_dataset accepts; saliency maps per id."""

from __future__ import annotations

import hashlib
import io
import zipfile

import numpy as np
import pytest

from tests.fetch.voc_archives import SBD_TRAIN, SBD_VAL, VOC_TRAIN, VOC_VAL, build_voc_archives
from wsss.data.voc import VOC_CLASSES
from wsss.fetch.download import FetchError
from wsss.io import load_label_png, read_ids, read_json
from wsss.stages.dataset import run_check_dataset
from wsss.stages.fetch import run_fetch_dataset, run_fetch_saliency


@pytest.fixture
def voc_sources(server):
    archives = build_voc_archives()
    server.files["/voc.tar"] = archives.voc_tar
    server.files["/benchmark.tgz"] = archives.sbd_tgz
    overrides = {
        "voc2012_trainval": {
            "url": server.url("/voc.tar"),
            "digest": "md5:" + hashlib.md5(archives.voc_tar).hexdigest(),
        },
        "sbd_benchmark": {
            "url": server.url("/benchmark.tgz"),
            "digest": "md5:" + hashlib.md5(archives.sbd_tgz).hexdigest(),
        },
    }
    return archives, overrides


def test_voc_and_sbd_become_segmentation_class_aug_and_train_aug(tmp_path, voc_sources, server):
    archives, overrides = voc_sources
    root = tmp_path / "data" / "voc"
    out = tmp_path / "fetched.json"
    run_fetch_dataset(
        "voc", "voc_sbd", root, out, overrides=overrides, cache=tmp_path / "dl", keep_archives=False
    )
    # (SBD train ∪ SBD val ∪ VOC train) − VOC val, written out by hand
    assert read_ids(root / "ImageSets/Segmentation/train_aug.txt") == [
        "2007_000032",
        "2007_000039",
        "2008_000002",
        "2008_000008",
        "2008_000015",
        "2010_000003",
    ]
    for image_id in set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL):
        aug = load_label_png(root / "SegmentationClassAug" / f"{image_id}.png")
        expected = archives.voc_masks.get(image_id, archives.sbd_masks.get(image_id))
        np.testing.assert_array_equal(aug, expected, err_msg=image_id)  # VOC's mask wins
    assert read_json(out)["train_aug"] == 6
    assert sorted(p.name for p in root.iterdir()) == [
        "Annotations",
        "ImageSets",
        "JPEGImages",
        "SegmentationClass",
        "SegmentationClassAug",
    ]  # no scratch folder, no archives left
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == []

    index = tmp_path / "index.json"
    run_check_dataset(
        root,
        index,
        dataset="voc",
        classes=list(VOC_CLASSES),
        splits={
            "train_aug": "SegmentationClassAug",
            "train": "SegmentationClass",
            "val": "SegmentationClass",
        },
        labels_file=None,
        check_pixels=True,
    )
    assert read_json(index)["splits"]["val"] == VOC_VAL

    requests = len(server.requests)
    run_fetch_dataset(
        "voc", "voc_sbd", root, out, overrides=overrides, cache=tmp_path / "dl", keep_archives=False
    )
    assert len(server.requests) == requests  # present: nothing downloaded again
    assert read_json(out)["archives"] == {"voc2012_trainval": "present", "sbd_benchmark": "present"}


def test_interrupted_run_leaves_nothing_accepted_and_a_rerun_completes(
    tmp_path, voc_sources, server
):
    _, overrides = voc_sources
    root = tmp_path / "voc"
    server.drop.add("/benchmark.tgz")
    with pytest.raises(FetchError, match="checksum mismatch for sbd_benchmark"):
        run_fetch_dataset(
            "voc",
            "voc_sbd",
            root,
            tmp_path / "f.json",
            overrides=overrides,
            cache=tmp_path / "dl",
            keep_archives=False,
        )
    assert not (tmp_path / "f.json").exists()
    assert not (root / "SegmentationClassAug").exists()
    assert not (root / "ImageSets/Segmentation/train_aug.txt").exists()
    assert (root / "JPEGImages").is_dir()  # the VOC part is complete and kept
    server.drop.clear()
    run_fetch_dataset(
        "voc",
        "voc_sbd",
        root,
        tmp_path / "f.json",
        overrides=overrides,
        cache=tmp_path / "dl",
        keep_archives=False,
    )
    assert read_json(tmp_path / "f.json")["archives"]["voc2012_trainval"] == "present"
    assert len(read_ids(root / "ImageSets/Segmentation/train_aug.txt")) == 6


def test_archive_with_unexpected_layout_names_what_is_missing(tmp_path, server):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ADEChallengeData2016/images/training/a.jpg", b"x")
        zf.writestr("ADEChallengeData2016/annotations/training/a.png", b"x")
    server.files["/ade.zip"] = buf.getvalue()
    with pytest.raises(FetchError, match="missing ADEChallengeData2016/images/validation/"):
        run_fetch_dataset(
            "ade20k",
            "ade20k",
            tmp_path / "ade",
            tmp_path / "f.json",
            overrides={"ade20k": {"url": server.url("/ade.zip"), "digest": None}},
            cache=tmp_path / "dl",
            keep_archives=False,
        )
    assert not (tmp_path / "ade" / "images").exists()


def _saliency_zip(ids: list[str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for image_id in ids:
            zf.writestr(f"EPS_saliency/SALImages/{image_id}.png", image_id.encode())
    return buf.getvalue()


def test_saliency_maps_one_per_train_aug_id(tmp_path, server):
    root = tmp_path / "voc"
    ids = ["2007_000032", "2008_000008"]
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/train_aug.txt").write_text("\n".join(ids) + "\n")
    server.files["/sal.zip"] = _saliency_zip(ids[:1])
    kwargs = dict(
        overrides={"url": server.url("/sal.zip")}, cache=tmp_path / "dl", keep_archives=False
    )
    with pytest.raises(
        FetchError, match=r"lacks saliency maps \(pfan_voc\) for 1 of 2 .* 2008_000008"
    ):
        run_fetch_saliency(
            "voc", root, "SALImages", "train_aug", "pfan_voc", tmp_path / "s.json", **kwargs
        )
    assert not (root / "SALImages").exists()
    assert not (tmp_path / "dl" / "pfan_voc_saliency").exists()  # not reused by the rerun
    server.files["/sal.zip"] = _saliency_zip(ids + ["2011_000001"])
    run_fetch_saliency(
        "voc", root, "SALImages", "train_aug", "pfan_voc", tmp_path / "s.json", **kwargs
    )
    assert sorted(p.name for p in (root / "SALImages").iterdir()) == [f"{i}.png" for i in ids]
    assert (root / "SALImages" / "2008_000008.png").read_bytes() == b"2008_000008"
