"""CDA's instance bank filter and instance pasting, on hand-made images and masks."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from wsss.data.cda import (
    CDAPairTransform,
    InstanceBank,
    extract_instance,
    paste_instance,
    pick_absent_class,
)


def _image(h=10, w=12, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_extract_instance_crops_the_object_box():
    image, mask = _image(), np.zeros((10, 12), np.uint8)
    mask[2:6, 3:9] = 4  # 24 of 120 px = 0.2
    mask[3, 3] = 0  # a hole does not change the box
    cls, crop, crop_mask = extract_instance(image, mask)
    assert cls == 4
    assert np.array_equal(crop, image[2:6, 3:9]) and np.array_equal(crop_mask, mask[2:6, 3:9])


# (rows, cols, value) rectangles painted on a 10×12 background mask → kept?
FILTER_CASES = {
    "ratio 0.1 (kept)": ([(0, 1, 0, 12, 3)], True),
    "ratio below 0.1": ([(0, 1, 0, 11, 3)], False),
    "ratio 0.7 (kept)": ([(0, 7, 0, 12, 3)], True),
    "ratio above 0.7": ([(0, 8, 0, 12, 3)], False),
    "two classes": ([(0, 1, 0, 1, 1), (1, 5, 0, 12, 2)], False),
    "ignore label is a third value": ([(0, 5, 0, 12, 2), (9, 10, 9, 10, 255)], False),
    "background only": ([], False),
}


@pytest.mark.parametrize("name", sorted(FILTER_CASES))
def test_extract_instance_filters(name):
    rects, kept = FILTER_CASES[name]
    mask = np.zeros((10, 12), np.uint8)
    for r0, r1, c0, c1, value in rects:
        mask[r0:r1, c0:c1] = value
    assert (extract_instance(_image(), mask) is not None) == kept


def test_pick_absent_class():
    rng = np.random.default_rng(0)
    picks = {pick_absent_class([1, 3], [1, 2, 3, 4], rng) for _ in range(50)}
    assert picks == {2, 4}
    assert pick_absent_class([1, 2], [1, 2], rng) is None


@pytest.mark.parametrize("mode", ["fixed", "faithful"])
def test_paste_keeps_the_image_outside_the_pasted_mask(mode):
    image = _image(40, 50)
    inst = np.full((30, 20, 3), 7, np.uint8)
    inst_mask = np.zeros((30, 20), np.uint8)
    inst_mask[5:25, 4:16] = 2
    for seed in range(5):
        out, pasted = paste_instance(image, inst, inst_mask, np.random.default_rng(seed), mode=mode)
        assert out.shape == image.shape and pasted.shape == image.shape[:2]
        assert np.array_equal(out[~pasted], image[~pasted])  # untouched outside
        assert pasted.any()
        rows, cols = np.flatnonzero(pasted.any(1)), np.flatnonzero(pasted.any(0))
        # the size cap: at most 0.7 × the image's height and width
        assert rows[-1] - rows[0] + 1 <= round(0.7 * 40) and cols[-1] - cols[0] + 1 <= round(
            0.7 * 50
        )
    assert image.max() > 7  # the original was not modified in place


def test_fixed_paste_without_rotation_copies_the_instance_pixels():
    class NoTurn:  # angle 0, position (1, 2)
        def __init__(self):
            self.calls = iter([0, 1, 2])

        def integers(self, *args):
            return next(self.calls)

    image = np.zeros((20, 20, 3), np.uint8)
    inst = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) + 1
    inst_mask = np.ones((4, 5), np.uint8)
    inst_mask[0, 0] = 0
    out, pasted = paste_instance(image, inst, inst_mask, NoTurn())
    expected = np.zeros((20, 20), bool)
    expected[1:5, 2:7] = inst_mask != 0
    assert np.array_equal(pasted, expected)
    assert np.array_equal(out[1:5, 2:7][inst_mask != 0], inst[inst_mask != 0])


def test_bad_arguments():
    with pytest.raises(ValueError, match="sizes differ"):
        extract_instance(_image(), np.zeros((3, 3), np.uint8))
    with pytest.raises(ValueError, match="paste mode"):
        paste_instance(_image(), _image(4, 4), np.ones((4, 4)), np.random.default_rng(0), mode="x")


class _Script:
    """An rng whose integers() returns the given values in turn (angle, top, left)."""

    def __init__(self, *values):
        self.values = iter(values)

    def integers(self, low, high):
        value = next(self.values)
        assert low <= value < high
        return value


def _release_rotation_paste(origin_img, fg_img, fg_seg, degree, row, col):
    """CDA's data_aug_rotation (misc/imutils.py) re-derived: ndimage.rotate with its defaults
    (cubic, reshape, zero fill) on the uint8 crops; the 0.7 cap on the height, then on the
    width; scipy.misc.imresize((int(h), int(w))) = PIL bilinear on the uint8 array, whose
    values it leaves unscaled; paste where the resized ids are non-zero."""
    bg_img = origin_img.copy()
    fg_img, fg_seg = ndimage.rotate(fg_img, degree), ndimage.rotate(fg_seg, degree)
    fg_height, fg_width = fg_img.shape[:2]
    aspect = fg_width / fg_height
    if bg_img.shape[0] * 0.7 < fg_height:
        fg_height = bg_img.shape[0] * 0.7
        fg_width = fg_height * aspect
    if bg_img.shape[1] * 0.7 < fg_width:
        fg_width = bg_img.shape[1] * 0.7
        fg_height = fg_width / aspect
    h, w = int(fg_height), int(fg_width)

    def imresize(arr):  # misc.imresize: toimage (uint8 kept as is), PIL bilinear, fromimage
        return np.array(Image.fromarray(arr).resize((w, h), Image.BILINEAR))

    fg_img, fg_seg = imresize(fg_img), imresize(fg_seg)
    mask = fg_seg != 0
    bg_img[row : row + h, col : col + w][mask] = fg_img[mask]
    pasted = np.zeros(bg_img.shape[:2], bool)
    pasted[row : row + h, col : col + w] = mask
    return bg_img, pasted


@pytest.mark.parametrize("class_id", [1, 5])
@pytest.mark.parametrize("angle", [45, -30, 0])
def test_faithful_paste_matches_the_release(class_id, angle):
    image = _image(60, 70, seed=1)
    inst = _image(30, 24, seed=2)
    inst_mask = np.zeros((30, 24), np.uint8)
    inst_mask[3:27, 4:20] = class_id
    inst_mask[10:14, 2:4] = class_id  # a thin arm: its rim depends on the id
    got, pasted = paste_instance(
        image, inst, inst_mask, _Script(angle, 3, 5), mode="faithful", max_angle=90
    )
    want, want_pasted = _release_rotation_paste(image, inst, inst_mask, angle, 3, 5)
    np.testing.assert_array_equal(pasted, want_pasted)
    np.testing.assert_array_equal(got, want)


def test_faithful_rim_depends_on_the_id_and_not_on_a_0_255_scale():
    """The released mask is the resized *id* crop ≠ 0: a rotated id 1 keeps fewer rim pixels
    than id 20, and both fewer than the earlier 0/255 scaling gave."""
    image = np.zeros((40, 40, 3), np.uint8)
    inst = np.full((30, 30, 3), 9, np.uint8)
    areas = {}
    for class_id in (1, 20, 255):  # 255 plays the old byte-scaled mask
        inst_mask = np.zeros((30, 30), np.uint8)
        inst_mask[5:25, 5:25] = class_id
        _, pasted = paste_instance(image, inst, inst_mask, _Script(45, 0, 0), mode="faithful")
        areas[class_id] = int(pasted.sum())
    assert areas[1] < areas[20] < areas[255]


def _bank(tmp_path, classes=(0, 2)):
    """A bank with one solid 6×4 instance per class (colour 50·(c+1))."""
    instances = {}
    for c in classes:
        folder = tmp_path / str(c)
        folder.mkdir()
        Image.fromarray(np.full((6, 4, 3), 50 * (c + 1), np.uint8)).save(folder / "a.png")
        Image.fromarray(np.full((6, 4), c + 1, np.uint8)).save(folder / "a_mask.png")
        instances[str(c)] = ["a"]
    (tmp_path / "index.json").write_text(json.dumps({"instances": instances}))
    return InstanceBank(tmp_path)


def _as_tensors(sample, rng):  # no augmentation: the pair's pixels stay comparable
    return {
        "image": torch.from_numpy(sample["image"].copy()),
        "labels": torch.from_numpy(sample["labels"]),
    }


def test_pair_pastes_one_absent_class_and_ors_the_label(tmp_path):
    bank = _bank(tmp_path)
    image = np.full((20, 20, 3), 7, np.uint8)
    sample = {"image": image, "labels": np.array([1, 0, 0], np.float32)}
    transform = CDAPairTransform(_as_tensors, bank, max_angle=0)
    out = transform(sample, np.random.default_rng(0))
    assert out["image"].shape == (2, 20, 20, 3)
    assert np.array_equal(out["image"][0].numpy(), image)  # the original is untouched
    assert out["labels"][0].tolist() == [1, 0, 0]
    assert out["labels"][1].tolist() == [1, 0, 1]  # class 0 present → class 2 is pasted
    changed = (out["image"][1].numpy() != image).any(axis=2)
    assert changed.sum() == 6 * 4  # the whole 6×4 instance, unrotated, unscaled
    assert np.all(out["image"][1].numpy()[changed] == 150)


def test_pair_without_an_absent_class_repeats_the_original(tmp_path):
    bank = _bank(tmp_path, classes=(1,))
    sample = {"image": np.zeros((10, 10, 3), np.uint8), "labels": np.array([0, 1, 0], np.float32)}
    out = CDAPairTransform(_as_tensors, bank)(sample, np.random.default_rng(0))
    assert torch.equal(out["image"][0], out["image"][1])
    assert torch.equal(out["labels"][0], out["labels"][1])


def test_empty_bank_is_refused(tmp_path):
    (tmp_path / "index.json").write_text(json.dumps({"instances": {"0": []}}))
    with pytest.raises(ValueError, match="holds no instances"):
        InstanceBank(tmp_path)
