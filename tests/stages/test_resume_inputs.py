"""A resume checkpoint is used only when everything the stage reads is unchanged (issue 21)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

import wsss.stages.seg as seg_stage
from tests.stages.conftest import CPU, TINY_TRAIN
from tests.stages.test_seg import SEG_MODEL_CONFIGS
from wsss.data.voc import voc_palette
from wsss.io import load_checkpoint, load_label_png, save_label_png
from wsss.stages.common import content_digest, input_digest, write_manifest

TRAIN = {**TINY_TRAIN, "steps": 4, "checkpoint_every": 2}


def _pseudo_masks(source: Path, out: Path, *, shift: int) -> None:
    """A pseudo-mask folder as a stage writes it: every mask's foreground classes moved by
    ``shift`` (0: the masks as given), then its manifest with the same settings each time."""
    out.mkdir(exist_ok=True)
    for png in sorted(source.glob("*.png")):
        mask = load_label_png(png)
        fg = (mask > 0) & (mask < 255)
        mask = np.where(fg, (mask.astype(np.int64) - 1 + shift) % 4 + 1, mask).astype(np.uint8)
        save_label_png(out / png.name, mask, voc_palette())
    write_manifest(out, stage="make_pseudo_labels", count=len(list(out.glob("*.png"))))


def _train(index: Path, root: Path, masks: Path, out: Path, crash_after: int | None = None):
    real = seg_stage.seg_loss_fn

    def loss_factory(*args, **kwargs):
        inner, calls = real(*args, **kwargs), {"n": 0}

        def loss(net, batch):
            calls["n"] += 1
            if crash_after is not None and calls["n"] > crash_after:
                raise KeyboardInterrupt  # stands in for SIGKILL or a preemption
            return inner(net, batch)

        return loss

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seg_stage, "seg_loss_fn", loss_factory)
        seg_stage.run_train_seg(
            index, root, out / "seg.pt", out / "loss.csv", split="train_aug",
            mask_dir=masks, model_name="deeplab", model=SEG_MODEL_CONFIGS["deeplab"],
            train=TRAIN, seed=0, device=CPU,
        )  # fmt: skip
    return load_checkpoint(out / "seg.pt")["state_dict"]


def test_changed_pseudo_masks_start_training_afresh(
    synth_root: Path, synth_index: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gt, masks = synth_root / "SegmentationClassAug", tmp_path / "masks"
    run, fresh = tmp_path / "run", tmp_path / "fresh"
    run.mkdir(), fresh.mkdir()
    _pseudo_masks(gt, masks, shift=0)
    with pytest.raises(KeyboardInterrupt):
        _train(synth_index, synth_root, masks, run, crash_after=3)  # after the step-2 checkpoint
    assert (run / "seg.pt.resume").is_file()
    before = (masks / "manifest.json").read_bytes()
    _pseudo_masks(gt, masks, shift=1)  # the upstream stage reran with other settings
    assert (masks / "manifest.json").read_bytes() != before  # only the content digest differs
    with caplog.at_level(logging.INFO, logger="wsss.training.loop"):
        resumed = _train(synth_index, synth_root, masks, run)
    assert "belongs to a different configuration" in caplog.text
    assert "resuming" not in caplog.text
    reference = _train(synth_index, synth_root, masks, fresh)
    assert reference.keys() == resumed.keys()
    for key, value in reference.items():
        assert torch.equal(value, resumed[key]), key


def test_content_digest_covers_names_and_bytes_and_is_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.png").write_bytes(b"xy")
    (folder / "sub" / "b.png").write_bytes(b"z")
    (folder / ".snakemake_timestamp").write_bytes(b"ignored")
    write_manifest(folder, stage="s")
    naive = hashlib.sha256(b"a.png\0" + b"2\0" + b"xy" + b"sub/b.png\0" + b"1\0" + b"z")
    assert content_digest(folder) == naive.hexdigest()
    assert input_digest(folder) == naive.hexdigest()  # read from the manifest
    (folder / "a.png").write_bytes(b"xz")  # a change after writing: the manifest is what counts
    assert input_digest(folder) == naive.hexdigest()
    assert content_digest(folder) != naive.hexdigest()
    (folder / "manifest.json").unlink()  # a folder without manifest (ground truth): hashed now
    assert input_digest(folder) == content_digest(folder)
    assert input_digest(None) is None  # no input
    with pytest.raises(FileNotFoundError, match="absent"):  # a wrong path is no "no input"
        input_digest(tmp_path / "absent")


@pytest.mark.parametrize("threads", [1, 2])
def test_training_weights_do_not_depend_on_the_jobs_threads(
    synth_root: Path, synth_index: Path, tmp_path: Path, threads: int
) -> None:
    """``train.threads`` fixes torch's intra-op threads while training (issue 21 item 4): the
    job's own setting (its --cores) does not change the weights, and is restored after."""
    weights = []
    for ambient in (1, 2):
        torch.set_num_threads(ambient)
        out = tmp_path / f"ambient{ambient}"
        out.mkdir()
        seg_stage.run_train_seg(
            synth_index, synth_root, out / "seg.pt", out / "loss.csv", split="train_aug",
            mask_dir="SegmentationClassAug", model_name="deeplab",
            model=SEG_MODEL_CONFIGS["deeplab"], train={**TRAIN, "threads": threads}, seed=0,
            device=CPU,
        )  # fmt: skip
        assert torch.get_num_threads() == ambient
        weights.append(load_checkpoint(out / "seg.pt")["state_dict"])
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key
