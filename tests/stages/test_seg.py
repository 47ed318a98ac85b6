"""The segmentation stages: seg_loss_fn against a hand-written cross-entropy, train_seg and
infer_seg for DeepLab, CCNet and PCAA on a generated tree, eval_seg against a naive confusion."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from tests.oracles import naive_confusion, naive_cross_entropy, naive_miou
from tests.stages.conftest import (
    CLASSES4,
    CPU,
    SYNTH_CLASSES,
    TINY_PCAA,
    TINY_RESNET_W4,
    TINY_TRAIN,
    assert_checkpoint,
    assert_loss_log,
    close,
    split_ids,
    write_tree,
)
from wsss.data.voc import voc_palette
from wsss.io import save_label_png
from wsss.models import build_seg_model
from wsss.stages.seg import run_eval_seg, run_infer_seg, run_train_seg, seg_loss_fn


def test_eval_seg_matches_naive_confusion(tmp_path: Path) -> None:
    root, index_path = tmp_path / "voc", tmp_path / "index.json"
    rng = np.random.default_rng(5)
    images, total = {}, np.zeros((4, 4), dtype=np.int64)
    for image_id in ("s1", "s2"):
        gt = rng.choice(np.array([0, 1, 3, 255], np.uint8), size=(6, 5))
        pred = rng.choice(np.array([0, 1, 2, 3], np.uint8), size=(6, 5))
        images[image_id] = {"gt": gt}
        save_label_png(tmp_path / "pred" / f"{image_id}.png", pred, voc_palette())
        total += naive_confusion(pred, gt, 4)
    write_tree(root, index_path, classes=CLASSES4, split="val", images=images)
    out = tmp_path / "seg.csv"
    run_eval_seg(
        index_path,
        root,
        tmp_path / "pred",
        out,
        dataset="toy",
        experiment="exp",
        split="val",
        gt_dir="SegmentationClass",
    )
    (row,) = pd.read_csv(out).to_dict("records")
    assert row["stage"] == "seg" and row["threshold"] == "none"
    assert math.isnan(row["bg_threshold"])
    assert close(row["miou"], naive_miou(total))


SEG_MODEL_CONFIGS = {
    "deeplab": {  # no loss entry: plain cross-entropy
        "net": {
            "head": "v3",
            "aspp_channels": 8,
            "atrous_rates": [2, 4],
            "backbone": TINY_RESNET_W4,
        },
        "pretrained": None,
    },
    "ccnet": {
        "net": {
            "backbone": {**TINY_RESNET_W4, "deep_stem": True, "stem_pool_ceil": True},
            "inter_channels": 8,
            "aux_channels": 8,
            "reduction": 8,
            "recurrence": 2,
            "dropout": 0.1,
            "cca_impl": "auto",
        },
        "pretrained": None,
        "loss": {"aux_weight": 0.4, "ohem": {"thresh": 0.7, "min_kept": 100}},
    },
    "pcaa": TINY_PCAA,
}


def test_seg_loss_fn_follows_the_loss_entry() -> None:
    gen = torch.Generator().manual_seed(0)
    outputs = {"out": torch.randn(2, 3, 5, 6, generator=gen), "aux": torch.randn(2, 3, 5, 6)}
    mask = torch.randint(0, 3, (2, 5, 6), generator=gen)
    mask[0, 0, :4] = 255
    batch = {"image": torch.zeros(2, 3, 5, 6), "mask": mask}

    def model(image):
        return outputs

    plain = naive_cross_entropy(outputs["out"], mask)
    assert seg_loss_fn(None)(model, batch).item() == pytest.approx(plain, rel=1e-6)
    no_aux = seg_loss_fn({"aux_weight": 0.0, "ohem": None})(model, batch)
    assert no_aux.item() == pytest.approx(plain, rel=1e-6)
    with_aux = seg_loss_fn({"aux_weight": 0.25, "ohem": None})(model, batch)
    expected = plain + 0.25 * naive_cross_entropy(outputs["aux"], mask)
    assert with_aux.item() == pytest.approx(expected, rel=1e-6)
    keep_all = seg_loss_fn({"aux_weight": 0.0, "ohem": {"thresh": 0.0, "min_kept": 1000}})
    assert keep_all(model, batch).item() == pytest.approx(plain, rel=1e-6)
    with pytest.raises(ValueError, match="aux_weight"):
        seg_loss_fn({"ohem": None})


@pytest.mark.parametrize(
    "model_name, external_masks",
    [("deeplab", False), ("deeplab", True), ("ccnet", True), ("pcaa", True)],
)
def test_train_and_infer_seg_smoke(
    synth_root: Path, synth_index: Path, tmp_path: Path, model_name: str, external_masks: bool
) -> None:
    mask_dir: str | Path = "SegmentationClassAug"  # relative: resolved under root
    if external_masks:  # an absolute pseudo-mask folder outside the dataset tree
        mask_dir = tmp_path / "pseudo"
        shutil.copytree(synth_root / "SegmentationClassAug", mask_dir)
    model_cfg = SEG_MODEL_CONFIGS[model_name]
    ckpt = tmp_path / "seg.pt"
    run_train_seg(
        synth_index,
        synth_root,
        ckpt,
        tmp_path / "loss.csv",
        split="train_aug",
        mask_dir=mask_dir,
        model_name=model_name,
        model=model_cfg,
        train=TINY_TRAIN,
        seed=0,
        device=CPU,
    )
    model = assert_checkpoint(ckpt, build_seg_model, SYNTH_CLASSES)
    with torch.no_grad():
        assert model(torch.zeros(1, 3, 20, 28))["out"].shape == (1, len(SYNTH_CLASSES), 20, 28)
    assert_loss_log(tmp_path / "loss.csv", TINY_TRAIN["steps"])

    out = tmp_path / "pred"
    run_infer_seg(
        synth_index, synth_root, ckpt, out, split="val", scales=[1.0], flip=True, device=CPU
    )
    for image_id in split_ids(synth_root, "val"):
        with Image.open(synth_root / "JPEGImages" / f"{image_id}.jpg") as img:
            size = img.size
        with Image.open(out / f"{image_id}.png") as pred:
            assert pred.mode == "P" and pred.size == size
            assert np.array(pred).max() < len(SYNTH_CLASSES)
