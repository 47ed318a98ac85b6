"""Tests for the imitation saliency maps of the synthetic benchmark (hand-made scenes)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from wsss.data._synthetic_saliency import imitate_saliency
from wsss.data.synthetic import generate


def _scene(busy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    image = np.full((64, 64, 3), 80, np.uint8)
    if busy:  # 2-px black/white stripes on the right half: high local contrast
        image[:, 40:][:, ::4] = 0
        image[:, 40:][:, 1::4] = 0
        image[:, 40:][:, 2::4] = 255
        image[:, 40:][:, 3::4] = 255
    mask = np.zeros((64, 64), bool)
    mask[8:28, 8:28] = True
    image[mask] = 220
    return image, mask


def test_noise_free_map_is_the_blurred_foreground():
    image, mask = _scene()
    sal = imitate_saliency(image, [(mask, 0.9)], noise=0.0, blur=0.0)
    assert np.array_equal(sal, np.where(mask, 255, 0).astype(np.uint8))
    blurred = imitate_saliency(image, [(mask, 0.9)], noise=0.0, blur=2.0)
    inner, outer = np.zeros_like(mask), np.ones_like(mask)
    inner[11:25, 11:25], outer[5:31, 5:31] = True, False  # 3 px from the square's edge
    assert (blurred[inner] > 200).all() and (blurred[outer] < 55).all()


def test_small_objects_fade_linearly_with_noise():
    image, mask = _scene()
    for scale, miss in ((0.6, 0.0), (0.375, 0.5), (0.2, 1.0)):
        sal = imitate_saliency(image, [(mask, scale)], noise=0.8, blur=0.0)
        assert sal[18, 18] == round(255 * (1 - 0.8 * miss))


def test_busy_background_fires_flat_background_does_not():
    image, mask = _scene(busy=True)
    sal = imitate_saliency(image, [(mask, 0.9)], noise=0.5, blur=0.0)
    assert sal[40:60, 50:60].min() == round(255 * 0.5)  # deep inside the stripes: full response
    assert sal[40:60, 5:20].max() == 0  # flat grey
    quiet = imitate_saliency(image, [(mask, 0.9)], noise=0.0, blur=0.0)
    assert quiet[~mask].max() == 0


def test_noise_out_of_range_is_refused():
    image, mask = _scene()
    with pytest.raises(ValueError, match="saliency noise"):
        imitate_saliency(image, [(mask, 0.5)], noise=1.5)


def test_generator_writes_saliency_for_every_image(tmp_path):
    root = tmp_path / "voc"
    generate(root, seed=1, num_train_aug=6, num_train=2, num_val=2, saliency_noise=0.0)
    ids = (root / "ImageSets/Segmentation/train_aug.txt").read_text().split()
    ids += (root / "ImageSets/Segmentation/val.txt").read_text().split()
    for image_id in ids:
        sal = np.asarray(Image.open(root / "SALImages" / f"{image_id}.png"))
        fg = np.asarray(Image.open(root / "SegmentationClassAug" / f"{image_id}.png")) > 0
        assert sal.dtype == np.uint8 and sal.shape == fg.shape
        assert ((sal > 127) == fg).mean() > 0.95  # noise 0: only the blurred rim differs
