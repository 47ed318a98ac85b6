"""Sharded per-image stages: id slices against a naive split, K = 3 shards merged against the
unsharded run (byte for byte), resuming an interrupted shard, and the CRF process pool."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

import wsss.stages.pseudo as pseudo_stage
from tests.conftest import IRN_CRF_KERNELS
from tests.stages.conftest import (
    CPU,
    SPLITS,
    SYNTH_CLASSES,
    TINY_RESNET_W4,
    check_synth_tree,
    write_gt_cams,
)
from wsss.data import synthetic
from wsss.io import load_cam_npz, save_checkpoint
from wsss.models import build_affinity_model, build_cam_model, build_seg_model
from wsss.stages.affinity import run_random_walk
from wsss.stages.cam import run_infer_cam
from wsss.stages.common import DatasetIndex
from wsss.stages.dataset import run_check_dataset
from wsss.stages.pseudo import run_make_pseudo_labels
from wsss.stages.seg import run_infer_seg
from wsss.stages.sharding import merge_shards, parse_shard, shard_ids

CRF = {"unary": "softmax", **IRN_CRF_KERNELS, "iterations": 3}
WALK = {"radius": 3, "beta": 10.0, "exp_times": 3, "bg_threshold": 0.25}


def _naive_shards(ids: list[str], n: int) -> list[list[str]]:
    """Deal sorted ids out as np.array_split does: n contiguous runs, the longer ones first."""
    return [list(part) for part in np.array_split(np.array(sorted(ids), dtype=object), n)]


@pytest.mark.parametrize("count", [0, 1, 5, 7, 12, 100])
@pytest.mark.parametrize("n", [1, 2, 3, 8])
def test_shard_ids_cover_every_id_once(count: int, n: int) -> None:
    rng = np.random.default_rng(count * 10 + n)
    ids = [f"{2007 + i % 5}_{rng.integers(10**6):06d}_{i}" for i in range(count)]
    rng.shuffle(ids)
    shards = [shard_ids(ids, k, n) for k in range(1, n + 1)]
    assert shards == _naive_shards(ids, n)
    assert sorted(i for shard in shards for i in shard) == sorted(ids)
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shards == [shard_ids(list(reversed(ids)), k, n) for k in range(1, n + 1)]


@pytest.mark.parametrize("k, n", [(0, 3), (4, 3), (1, 0)])
def test_shard_ids_rejects_bad_shards(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="shard"):
        shard_ids(["a"], k, n)


def test_parse_shard() -> None:
    assert parse_shard(None) == (1, 1)
    assert parse_shard("2-of-5") == (2, 5)
    for bad in ("0-of-2", "3-of-2", "2of5", "a-of-b"):
        with pytest.raises(ValueError, match=bad):
            parse_shard(bad)


def _checkpoint(path: Path, build: Callable, name: str, **kwargs: object) -> Path:
    torch.manual_seed(0)
    net = build(name, **kwargs)
    state = {"model_name": name, "build_kwargs": net.build_kwargs, "state_dict": net.state_dict()}
    save_checkpoint(path, state | {"classes": SYNTH_CLASSES})
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A generated tree (7 train_aug, 4 val images), its index, blurred ground-truth CAMs and
    untrained CAM, boundary and DeepLab checkpoints."""
    base = tmp_path_factory.mktemp("sharding")
    root, index = base / "voc", base / "index.json"
    synthetic.generate(
        root,
        seed=2,
        num_train_aug=7,
        num_train=3,
        num_val=4,
        image_size_range=(40, 56),
        scale_range=(0.3, 0.8),
    )
    check_synth_tree(root, index, check_pixels=False)
    cams = base / "cams"
    write_gt_cams(root, DatasetIndex(index).ids("train_aug"), cams)
    nfg = len(SYNTH_CLASSES) - 1
    return {
        "root": root,
        "index": index,
        "cams": cams,
        "base": base,
        "cam": _checkpoint(
            base / "cam.pt", build_cam_model, "cam", num_fg_classes=nfg, backbone=TINY_RESNET_W4
        ),
        "irn": _checkpoint(
            base / "irn.pt", build_affinity_model, "irn", backbone=TINY_RESNET_W4, channels=8
        ),
        "seg": _checkpoint(
            base / "seg.pt",
            build_seg_model,
            "deeplab",
            num_classes=len(SYNTH_CLASSES),
            backbone=TINY_RESNET_W4,
            head="v3",
            aspp_channels=8,
            atrous_rates=[2, 4],
        ),
    }


def _stage(tiny: dict[str, Path], name: str) -> Callable[..., None]:
    """``run(out_dir, **kwargs)`` for one sharded stage on the tiny data."""
    root, index, cams = tiny["root"], tiny["index"], tiny["cams"]
    if name == "infer_cam":
        return lambda out, **kw: run_infer_cam(
            index,
            root,
            tiny["cam"],
            out,
            split="train_aug",
            scales=[1.0, 0.5],
            flip=True,
            device=CPU,
            **kw,
        )
    if name == "pseudo":
        return lambda out, **kw: run_make_pseudo_labels(
            index,
            root,
            cams,
            out,
            split="train_aug",
            bg_threshold=0.3,
            crf=CRF,
            ignore_disagreement=True,
            **kw,
        )
    if name == "random_walk":
        return lambda out, **kw: run_random_walk(
            index,
            root,
            cams,
            tiny["irn"],
            out,
            split="train_aug",
            method="irn",
            walk=WALK,
            device=CPU,
            **kw,
        )
    return lambda out, **kw: run_infer_seg(
        index, root, tiny["seg"], out, split="val", scales=[1.0], flip=True, device=CPU, **kw
    )


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("name", ["infer_cam", "pseudo", "random_walk", "infer_seg"])
def test_three_shards_merged_equal_the_unsharded_run(tiny: dict[str, Path], name: str) -> None:
    run, base = _stage(tiny, name), tiny["base"] / name
    run(base / "whole")
    shards = [base / "shards" / f"{k}-of-3" for k in (1, 2, 3)]
    for k, folder in enumerate(shards, start=1):
        run(folder, shard=(k, 3))
        (folder / ".snakemake_timestamp").touch()  # as Snakemake marks directory outputs
    merge_shards(shards, base / "merged")
    whole = _contents(base / "whole")
    split = "val" if name == "infer_seg" else "train_aug"
    ids = DatasetIndex(tiny["index"]).ids(split)
    suffix = ".npz" if name == "infer_cam" else ".png"
    assert sorted(whole) == sorted([f"{i}{suffix}" for i in ids] + ["manifest.json"])
    assert _contents(base / "merged") == whole
    for k, folder in enumerate(shards, start=1):  # each shard holds its slice only
        assert sorted(os.listdir(folder)) == sorted(
            [f"{i}{suffix}" for i in shard_ids(ids, k, 3)]
            + ["manifest.json", ".snakemake_timestamp"]
        )
    assert sorted(os.listdir(base)) == ["merged", "shards", "whole"]  # no side folders left
    assert (base / "merged" / f"{ids[0]}{suffix}").stat().st_nlink == 2  # a hard link


def test_merge_refuses_shards_of_other_settings(tiny: dict[str, Path], tmp_path: Path) -> None:
    run = _stage(tiny, "infer_seg")
    run(tmp_path / "a", shard=(1, 2))
    run_infer_seg(
        tiny["index"],
        tiny["root"],
        tiny["seg"],
        tmp_path / "b",
        split="val",
        scales=[1.0],
        flip=False,
        device=CPU,
        shard=(2, 2),
    )
    with pytest.raises(ValueError, match="differs"):
        merge_shards([tmp_path / "a", tmp_path / "b"], tmp_path / "merged")
    with pytest.raises(ValueError, match="manifest says 4"):
        merge_shards([tmp_path / "a"], tmp_path / "merged")
    assert not (tmp_path / "merged").exists()


def test_crf_pool_of_two_equals_one_process(tiny: dict[str, Path], tmp_path: Path) -> None:
    run = _stage(tiny, "pseudo")
    run(tmp_path / "one", processes=1)
    run(tmp_path / "two", processes=2)
    assert len(_contents(tmp_path / "one")) == 8
    assert _contents(tmp_path / "two") == _contents(tmp_path / "one")


def test_interrupted_shard_resumes_with_its_complete_images(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, ids = _stage(tiny, "pseudo"), shard_ids(DatasetIndex(tiny["index"]).ids("train_aug"), 1, 2)
    run(tmp_path / "clean", shard=(1, 2))
    real, calls = pseudo_stage.crf_pseudo_label, []

    def crf_failing_on_third(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    out = tmp_path / "pseudo" / "1-of-2"
    monkeypatch.setattr(pseudo_stage, "crf_pseudo_label", crf_failing_on_third)
    with pytest.raises(RuntimeError, match="killed"):
        run(out, shard=(1, 2))
    assert not out.exists()
    (side,) = out.parent.glob(".1-of-2.partial-*")
    done = sorted(side.iterdir())
    assert [p.name for p in done] == [f"{i}.png" for i in ids[:2]]
    stamps = {p.name: p.stat().st_mtime_ns for p in done}
    (side / f".{ids[2]}.x1y2.tmp.png").write_bytes(b"half a png")  # a write cut short
    (out.parent / ".1-of-2.partial-0123456789abcdef").mkdir()  # another configuration's
    calls.clear()
    run(out, shard=(1, 2))
    assert len(calls) == len(ids) - 2  # the two complete images were not recomputed
    assert {n: (out / n).stat().st_mtime_ns for n in stamps} == stamps
    assert _contents(out) == _contents(tmp_path / "clean")
    assert os.listdir(out.parent) == ["1-of-2"]


def test_changed_settings_do_not_reuse_partial_images(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run, calls = _stage(tiny, "pseudo"), []
    real = pseudo_stage.crf_pseudo_label

    def crf_failing_on_second(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(pseudo_stage, "crf_pseudo_label", crf_failing_on_second)
    with pytest.raises(RuntimeError):
        run(tmp_path / "masks")
    calls.clear()
    monkeypatch.setattr(
        pseudo_stage, "crf_pseudo_label", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    for out in ("masks", "clean"):
        run_make_pseudo_labels(
            tiny["index"],
            tiny["root"],
            tiny["cams"],
            tmp_path / out,
            split="train_aug",
            bg_threshold=0.45,
            crf=CRF,
            ignore_disagreement=True,
        )
    assert len(calls) == 2 * 7  # the image of the bg_threshold 0.3 run was not reused
    assert _contents(tmp_path / "masks") == _contents(tmp_path / "clean")
    assert sorted(os.listdir(tmp_path)) == ["clean", "masks"]


def test_batched_cam_inference_matches_single_images(tmp_path: Path) -> None:
    """Images of one size share a forward pass (with their mirrors); each image's maps are
    those of its own pass, for IRN's classifier and SEAM's PCM network. (Not always bit for
    bit on the CPU: oneDNN may pick other convolution kernels for another batch size.)"""
    root, index = tmp_path / "voc", tmp_path / "index.json"
    synthetic.generate(
        root,
        seed=4,
        num_train_aug=7,
        num_train=3,
        num_val=2,
        image_size_range=(48, 49),
        scale_range=(0.3, 0.8),
    )
    run_check_dataset(
        root,
        index,
        dataset="synth",
        classes=SYNTH_CLASSES,
        splits=SPLITS,
        labels_file="cls_labels.csv",
        check_pixels=False,
    )
    nfg = len(SYNTH_CLASSES) - 1
    pcm = {"feature_stages": ["layer2", "layer3", "layer4"], "embed_channels": [4, 4, 8]}
    models = {
        "cam": _checkpoint(
            tmp_path / "cam.pt", build_cam_model, "cam", num_fg_classes=nfg, backbone=TINY_RESNET_W4
        ),
        "seam": _checkpoint(
            tmp_path / "seam.pt",
            build_cam_model,
            "seam",
            num_fg_classes=nfg,
            backbone=TINY_RESNET_W4,
            **pcm,
        ),
    }
    for name, model in models.items():
        outputs = {}
        for batch in (1, 3):
            out = tmp_path / name / str(batch)
            run_infer_cam(
                index,
                root,
                model,
                out,
                split="train_aug",
                scales=[1.0, 0.5, 1.5],
                flip=True,
                device=CPU,
                batch_images=batch,
            )
            outputs[batch] = {p.name: load_cam_npz(p) for p in sorted(out.glob("*.npz"))}
        assert len(outputs[1]) == 7 and outputs[3].keys() == outputs[1].keys()
        for image, single in outputs[1].items():
            batched = outputs[3][image]
            np.testing.assert_array_equal(batched["keys"], single["keys"])
            np.testing.assert_allclose(batched["high_res"], single["high_res"], atol=1e-5)


def test_a_killed_crf_worker_fails_naming_its_image(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """multiprocessing.Pool waited forever for a worker the out-of-memory killer took."""
    victim = sorted(DatasetIndex(tiny["index"]).ids("train_aug"))[3]
    real = pseudo_stage.load_image_and_cams

    def load_or_die(root: Path, cam_dir: Path, image_id: str):  # noqa: ANN202
        if image_id == victim:
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer does
        return real(root, cam_dir, image_id)

    def too_slow(*_: object) -> None:
        raise TimeoutError("the pool hangs on its dead worker")

    monkeypatch.setattr(pseudo_stage, "load_image_and_cams", load_or_die)
    previous = signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(60)
    try:
        died = f"worker process died while computing (image |one of the images (.*, )?){victim}\\b"
        with pytest.raises(ChildProcessError, match=died):
            _stage(tiny, "pseudo")(tmp_path / "pseudo", processes=2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not (tmp_path / "pseudo").exists()
