"""The embedded synthetic WSSS benchmark: a small VOC-format tree with controllable difficulty."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from wsss.data._synthetic_draw import BACKGROUND_TEXTURES, SHAPE_FAMILIES, draw_image
from wsss.data._synthetic_voc import NEUTRAL, check_knobs
from wsss.data.voc import voc_palette, write_image_labels
from wsss.io import save_label_png, write_ids, write_json

__all__ = ["SHAPE_FAMILIES", "BACKGROUND_TEXTURES", "default_class_names", "generate"]

logger = logging.getLogger(__name__)


def default_class_names(k: int) -> list[str]:
    """The first ``k`` shape-family names, used as class names."""
    if not 1 <= k <= len(SHAPE_FAMILIES):
        raise ValueError(f"k={k} classes requested; 1..{len(SHAPE_FAMILIES)} are available")
    return list(SHAPE_FAMILIES[:k])


def _with_border(label: np.ndarray, width: int) -> np.ndarray:
    """VOC-style copy of ``label``: 255 on pixels within ``width`` px of a different label."""
    if width <= 0:
        return label.copy()
    kernel = np.ones((2 * width + 1, 2 * width + 1), np.uint8)
    out = label.copy()
    out[cv2.dilate(label, kernel) != cv2.erode(label, kernel)] = 255
    return out


def _check(p: dict) -> None:
    (lo_s, hi_s), (lo_a, hi_a) = p["scale_range"], p["aspect_range"]
    lo_i, hi_i = p["image_size_range"]
    names = p["fg_class_names"]
    if not 1 <= len(names) <= len(SHAPE_FAMILIES) or len(set(names)) != len(names):
        raise ValueError(
            f"{len(names)} fg_class_names given {names}; need 1..{len(SHAPE_FAMILIES)} distinct "
            f"names (one per shape family {SHAPE_FAMILIES})"
        )
    rules = {
        "num_train_aug": p["num_train_aug"] >= 1,
        "num_val": p["num_val"] >= 0,
        "num_train": 0 <= p["num_train"] <= p["num_train_aug"],
        "image_size_range": 32 <= lo_i <= hi_i,
        "scale_range": 0 < lo_s <= hi_s <= 1,
        "aspect_range": 0 < lo_a <= hi_a <= 1,
        "part_fraction": 0 < p["part_fraction"] < 1,
        "context_bias": 0 <= p["context_bias"] <= 1,
        "max_objects": p["max_objects"] >= 1,
        "min_visible": 0 <= p["min_visible"] <= 1,
        "border_width": p["border_width"] >= 0,
        "clutter": p["clutter"] >= 0,
        "body_contrast": p["body_contrast"] >= 0,
        "body_tint": 0 <= p["body_tint"] <= 1,
        "noise_std": p["noise_std"] >= 0,
        "saliency_noise": 0 <= p["saliency_noise"] <= 1,
        "jpeg_quality": 1 <= p["jpeg_quality"] <= 100,
    }
    for key, ok in rules.items():
        if not ok:
            raise ValueError(f"invalid synthetic-data parameter {key}={p[key]!r}")
    if lo_s * lo_i < 12:
        raise ValueError(
            f"scale_range {p['scale_range']} with images of {lo_i} px allows objects "
            "smaller than 12 px; raise scale_range[0] or image_size_range[0]"
        )


def generate(
    root: str | os.PathLike,
    *,
    seed: int,
    fg_class_names: Sequence[str] = SHAPE_FAMILIES,
    num_train_aug: int = 300,
    num_train: int = 100,
    num_val: int = 100,
    image_size_range: tuple[int, int] = (80, 112),
    max_objects: int = 3,
    scale_range: tuple[float, float] = (0.15, 0.75),
    aspect_range: tuple[float, float] = (0.6, 1.0),
    part_fraction: float = 0.22,
    body_contrast: float = 0.06,
    body_tint: float = 0.0,
    context_bias: float = 0.7,
    clutter: float = 8.0,
    min_visible: float = 0.3,
    border_width: int = 1,
    noise_std: float = 3.0,
    jpeg_quality: int = 95,
    saliency_noise: float = 0.5,
    body_parts: int = 1,
    body_texture: float = 0.0,
    edge_blend: float = 0.0,
    occluders: float = 0.0,
    overwrite: bool = False,
) -> None:
    """Write a synthetic VOC-format WSSS benchmark under ``root`` (deterministic in all arguments).

    Class c (named ``fg_class_names[c]``) is drawn as shape ``SHAPE_FAMILIES[c]``. Every object is a
    bland body plus a small class-specific textured part; the knobs below set how hard each WSSS
    failure mode is. Tree: ``JPEGImages/*.jpg``; ``SegmentationClass/*.png`` (palette PNG, 255 band
    on boundaries) for ``train``+``val``; ``SegmentationClassAug/*.png`` ("L" PNG, no band) for all
    ids; ``SALImages/*.png`` (saliency, "L" PNG 0..255) for all ids;
    ``ImageSets/Segmentation/{train_aug,train,val}.txt``; ``cls_labels.csv`` (image-level
    labels, see :func:`wsss.data.voc.read_image_labels`); ``synthetic.json`` (every argument plus,
    per image, its size, background texture and objects with their scale and areas).

    Args:
        root: output folder; built as a temporary sibling and renamed onto ``root`` at the end.
        seed: image i of each split uses child i of ``SeedSequence(seed)``, so it does not depend on
            how many images come before it.
        fg_class_names: K ≤ ``len(SHAPE_FAMILIES)`` class names (default: the shape names).
        num_train_aug, num_train, num_val: split sizes; ``train`` = first ``num_train`` of
            ``train_aug``; ``val`` is disjoint.
        image_size_range: inclusive range of height and width, each drawn uniformly (px).
        max_objects: 1..max_objects objects per image, classes uniform (repeats allowed).
        scale_range: **scale variation** — an object's longest extent as a fraction of the image's
            shorter side, log-uniform; wider ranges give tinier and larger instances.
        aspect_range: minor/major axis ratio of the shapes (uniform).
        part_fraction: **partial activation** — area fraction of each object covered by its
            discriminative part (a blob around a random interior point or a band at one end).
            The rest is a body shared by all classes, so a classifier needs only the part and CAMs
            cover about this fraction; smaller values make CAMs more partial.
        body_contrast: shading amplitude of the bland body (fraction of 255; noise std is a quarter
            of it). Bodies are bright, desaturated colours, clearly apart from every background,
            so CRF/affinity methods can recover the full extent; larger values make them busier.
        body_tint: **partial activation** — how much of a class-specific pastel hue is mixed into
            the body (0 = bodies carry no class information, the hardest setting; 1 = a clearly
            class-coloured body). A weak cue lets a segmentation network name a body without
            seeing its part, while the part stays by far the most discriminative region.
        context_bias: **context bias** — probability that the background is the preferred texture
            ``BACKGROUND_TEXTURES[c % 6]`` of one of the image's classes c (else uniform). High
            values let CAMs leak onto class-correlated background.
        clutter: background distractor marks (short lines, small blobs, label 0) per 100×100 px.
        min_visible: an object is re-drawn (up to 30 times, then dropped) if a later one would
            leave less than this fraction of an earlier object's area or part visible.
        border_width: half-width (px) of the 255 band in ``SegmentationClass``; 0 disables it.
        noise_std: global Gaussian pixel noise (grey levels), after a σ = 0.5 px blur.
        jpeg_quality: JPEG quality (4:4:4 chroma).
        saliency_noise: **saliency quality** of ``SALImages/*.png``, the maps EPS and SMAF learn
            from: 0 = the blurred ground-truth foreground; larger values miss small objects and
            fire on busy background texture more
            (:func:`wsss.data._synthetic_saliency.imitate_saliency`).
        body_parts: **VOC-like extent** — the body is split into this many regions (a Voronoi
            split around random body pixels), each a mid-tone colour of a palette shared by all
            classes with its own texture; 1 (neutral) keeps ``synth``'s one bright body.
        body_texture: **VOC-like extent** — peak-to-peak amplitude (fraction of 255) of each
            body region's random texture (noise, stripes, checker or blotches).
        edge_blend: **low-contrast edges** — width (px) of a linear ramp over which an object
            fades into what lies behind it at its outline (its label keeps the full extent).
        occluders: **occlusion** — mean number (Poisson) of background-labelled bars and blobs
            painted in front of the objects; they reduce each object's visible area.
        The four VOC-like knobs run only when one differs from its neutral value; knobs at their
        neutral value are left out of ``synthetic.json``, so ``synth`` trees stay byte-identical.
        overwrite: replace an existing ``root``; otherwise an existing ``root`` is an error.

    Raises:
        FileExistsError: ``root`` exists and ``overwrite`` is False.
        ValueError: an argument out of range (names the argument).
    """
    p = {
        "seed": int(seed),
        "fg_class_names": [str(n) for n in fg_class_names],
        "num_train_aug": int(num_train_aug),
        "num_train": int(num_train),
        "num_val": int(num_val),
        "image_size_range": [int(v) for v in image_size_range],
        "max_objects": int(max_objects),
        "scale_range": [float(v) for v in scale_range],
        "aspect_range": [float(v) for v in aspect_range],
        "part_fraction": float(part_fraction),
        "body_contrast": float(body_contrast),
        "body_tint": float(body_tint),
        "context_bias": float(context_bias),
        "clutter": float(clutter),
        "min_visible": float(min_visible),
        "border_width": int(border_width),
        "noise_std": float(noise_std),
        "jpeg_quality": int(jpeg_quality),
        "saliency_noise": float(saliency_noise),
    }
    knobs = {
        "body_parts": body_parts,
        "body_texture": body_texture,
        "edge_blend": edge_blend,
        "occluders": occluders,
    }
    check_knobs(knobs)
    p.update({key: value for key, value in knobs.items() if value != NEUTRAL[key]})
    _check(p)
    root = Path(root)
    if root.exists() and not overwrite:
        raise FileExistsError(f"synthetic dataset root {root} exists; pass overwrite=True")
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.", suffix=".tmp", dir=root.parent))
    try:
        os.chmod(tmp, 0o755)
        _write_tree(tmp, p)
        if root.exists():
            old = tmp.with_name(tmp.name + ".old")
            os.replace(root, old)
            os.replace(tmp, root)
            shutil.rmtree(old)
        else:
            os.replace(tmp, root)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    logger.info("wrote synthetic data (%d train_aug, %d val) to %s", num_train_aug, num_val, root)


def _write_tree(out: Path, p: dict) -> None:
    n_aug, k = p["num_train_aug"], len(p["fg_class_names"])
    ids = [f"synth_{i:06d}" for i in range(n_aug + p["num_val"])]
    streams = np.random.SeedSequence(p["seed"]).spawn(2)
    seeds = streams[0].spawn(n_aug) + streams[1].spawn(p["num_val"])
    with_gt = set(ids[: p["num_train"]]) | set(ids[n_aug:])
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationClassAug", "SALImages"):
        (out / sub).mkdir()
    palette, labels, records = voc_palette(), {}, {}
    for image_id, child in zip(ids, seeds, strict=True):
        image, label, saliency, records[image_id] = draw_image(np.random.default_rng(child), p)
        Image.fromarray(image).save(
            out / "JPEGImages" / f"{image_id}.jpg", quality=p["jpeg_quality"], subsampling=0
        )
        Image.fromarray(label).save(out / "SegmentationClassAug" / f"{image_id}.png")
        Image.fromarray(saliency).save(out / "SALImages" / f"{image_id}.png")
        if image_id in with_gt:
            border = _with_border(label, p["border_width"])
            save_label_png(out / "SegmentationClass" / f"{image_id}.png", border, palette)
        labels[image_id] = np.isin(np.arange(1, k + 1), label).astype(np.float32)
    split_dir = out / "ImageSets" / "Segmentation"
    write_ids(split_dir / "train_aug.txt", ids[:n_aug])
    write_ids(split_dir / "train.txt", ids[: p["num_train"]])
    write_ids(split_dir / "val.txt", ids[n_aug:])
    write_image_labels(out / "cls_labels.csv", labels, p["fg_class_names"])
    preferred = {
        name: BACKGROUND_TEXTURES[c % len(BACKGROUND_TEXTURES)]
        for c, name in enumerate(p["fg_class_names"])
    }
    write_json(
        out / "synthetic.json",
        {
            "params": p,
            "shape_families": list(SHAPE_FAMILIES),
            "preferred_background": preferred,
            "images": records,
        },
    )
