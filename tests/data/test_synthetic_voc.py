"""The VOC-like knobs of the synthetic generator (synth_voc), measured on the drawn images, and
synth's own output pinned to the bytes the code wrote before the knobs existed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from wsss.data._synthetic_draw import draw_image
from wsss.data._synthetic_voc import _REGION_PALETTE
from wsss.data.synthetic import generate

# sha256 over (relative path, bytes) of every file of generate(seed=3, 6/2/2 images), written
# by the generator on main before the VOC-like knobs were added (same environment).
SYNTH_DIGEST = "60425d5e80fe2b96b627cb52e85fd27666e2374a382c99c2f837edaf3a711663"

BASE = {
    "fg_class_names": ["ellipse", "rectangle", "triangle", "star", "cross", "crescent"],
    "image_size_range": [320, 500],
    "max_objects": 3,
    "scale_range": [0.3, 0.8],
    "aspect_range": [0.6, 1.0],
    "part_fraction": 0.15,
    "body_contrast": 0.0,
    "body_tint": 0.0,
    "context_bias": 0.7,
    "clutter": 0.0,
    "min_visible": 0.3,
    "noise_std": 0.0,
    "saliency_noise": 0.5,
}


def _draw(seed: int, **knobs):
    return draw_image(np.random.default_rng(seed), {**BASE, **knobs})


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.is_file():
            h.update(str(f.relative_to(root)).encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def test_synth_is_byte_identical_to_before_the_knobs(tmp_path: Path) -> None:
    generate(tmp_path / "ds", seed=3, num_train_aug=6, num_train=2, num_val=2)
    assert _tree_digest(tmp_path / "ds") == SYNTH_DIGEST


def test_voc_scale_images(tmp_path: Path) -> None:
    generate(
        tmp_path / "ds",
        seed=0,
        num_train_aug=6,
        num_train=2,
        num_val=2,
        image_size_range=(320, 500),
        body_parts=3,
    )
    sizes = [Image.open(f).size for f in (tmp_path / "ds" / "JPEGImages").glob("*.jpg")]
    assert len(sizes) == 8
    assert all(320 <= s <= 500 for size in sizes for s in size)
    text = (tmp_path / "ds" / "synthetic.json").read_text()
    assert '"body_parts": 3' in text and '"occluders"' not in text  # neutral knobs left out


def _palette_colours_per_object(image: np.ndarray, label: np.ndarray) -> list[int]:
    """How many region-palette colours cover ≥ 5 % of each object's interior (eroded 3 px:
    no blur, no edge)."""
    counts = []
    for c in np.unique(label[label > 0]):
        inside = cv2.erode((label == c).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
        pixels = image[inside].astype(np.int64)
        if len(pixels) < 200:
            continue
        hits = [(pixels == colour.astype(np.int64)).all(1).mean() for colour in _REGION_PALETTE]
        counts.append(sum(h >= 0.05 for h in hits))
    return counts


def _colour_counts(**knobs) -> list[int]:
    counts = []
    for s in range(16):
        image, label, _, record = _draw(s, **knobs)
        classes = [o["class"] for o in record["objects"]]
        if len(set(classes)) == len(classes):  # one object per label value
            counts += _palette_colours_per_object(image, label)
    return counts


def test_body_parts_give_several_colours() -> None:
    one = _colour_counts(body_parts=1, occluders=1e-9)  # a non-neutral knob, ~never an occluder
    four = _colour_counts(body_parts=4)
    assert one and set(one) == {1}
    assert max(four) <= 4 and np.mean(four) >= 2.0


def test_body_texture_raises_interior_variation() -> None:
    def local_std(texture: float) -> float:
        """Mean over images of the median 5×5 grey-level std inside the objects (eroded)."""
        values = []
        for s in range(6):
            image, label = _draw(s, body_parts=2, body_texture=texture)[:2]
            grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
            mean = cv2.blur(grey, (5, 5))
            std = np.sqrt(np.maximum(cv2.blur(grey * grey, (5, 5)) - mean * mean, 0))
            inside = cv2.erode((label > 0).astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
            values.append(np.median(std[inside]))
        return float(np.mean(values))

    flat, textured = local_std(0.0), local_std(0.3)
    assert flat < 1.0  # flat regions (no noise, no shading): only part and region edges vary
    assert textured > 8.0


def test_edge_blend_lowers_edge_contrast_only_at_the_rim() -> None:
    checked = 0
    for s in range(8):
        sharp, label, _, record = _draw(s, body_parts=2, edge_blend=0.0)
        classes = [o["class"] for o in record["objects"]]
        if len(set(classes)) != len(classes):  # same-class overlaps hide an outline in the label
            continue
        checked += 1
        soft, label_soft = _draw(s, body_parts=2, edge_blend=6.0)[:2]
        np.testing.assert_array_equal(label, label_soft)  # the label keeps the full extent
        fg = (label > 0).astype(np.uint8)
        kernel = np.ones((3, 3), np.uint8)
        outlines = cv2.dilate(label, kernel) != cv2.erode(label, kernel)  # every label change
        away = cv2.distanceTransform((~outlines).astype(np.uint8), cv2.DIST_L2, 5) > 8
        np.testing.assert_array_equal(sharp[away], soft[away])
        edge = cv2.dilate(fg, kernel) != cv2.erode(fg, kernel)  # object / background edges

        def gradient(img: np.ndarray, edge: np.ndarray = edge) -> float:
            g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
            gx, gy = cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1)
            return float(np.hypot(gx, gy)[edge].mean())

        assert gradient(soft) < 0.7 * gradient(sharp)
    assert checked >= 3


def test_occluders_hide_parts_of_objects() -> None:
    hidden = 0
    for s in range(10):
        _, plain, _, rec_plain = _draw(s, body_parts=2)
        _, occluded, _, rec = _draw(s, body_parts=2, occluders=3.0)
        assert not ((occluded > 0) & (occluded != plain)).any()  # occluders are background only
        hidden += int(((plain > 0) & (occluded == 0)).sum())
        visible = sum(o["visible_area"] for o in rec["objects"])
        assert visible == int((occluded > 0).sum())  # the record counts what the label shows
        assert sum(o["visible_area"] for o in rec_plain["objects"]) == int((plain > 0).sum())
    assert hidden > 0


@pytest.mark.parametrize(
    ("knob", "value"),
    [("body_parts", 0), ("body_parts", 2.5), ("edge_blend", -1.0), ("occluders", 50)],
)
def test_refusals(knob: str, value: float, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=f"invalid synthetic-data parameter {knob}="):
        generate(tmp_path / "ds", seed=0, num_train_aug=2, num_train=1, num_val=1, **{knob: value})
