"""The ImageNet stand-in corpus: the classes and labels it claims, measured on its images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wsss.data._synthetic_draw import _PARTS
from wsss.data.shape_corpus import (
    CORPUS_PALETTES,
    corpus_class,
    max_corpus_classes,
    read_corpus,
    write_corpus,
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.npz"
    write_corpus(path, seed=5, num_classes=120, images_per_class=2, image_size=40)
    return path


def test_classes_and_label_distribution(corpus: Path) -> None:
    images, labels, names = read_corpus(corpus)
    assert images.shape == (240, 40, 40, 3) and images.dtype == np.uint8
    assert len(names) == len(set(names)) == 120
    np.testing.assert_array_equal(np.bincount(labels, minlength=120), np.full(120, 2))
    assert max_corpus_classes() >= 120
    combos = {corpus_class(k) for k in range(max_corpus_classes())}
    assert len(combos) == max_corpus_classes()  # every class index is a different combination


def test_each_image_shows_its_class_colours(corpus: Path) -> None:
    """Every image holds pixels near its palette's fill and cap colours (noise σ = 4)."""
    images, labels, _ = read_corpus(corpus)
    for image, label in zip(images, labels, strict=True):
        _, pattern, palette = corpus_class(int(label))
        fill_a, fill_b, cap = (np.array(c) for c in CORPUS_PALETTES[palette])
        px = image.reshape(-1, 3).astype(np.int64)

        def share(colour: np.ndarray, px: np.ndarray = px) -> float:
            return float((np.abs(px - colour).max(1) <= 14).mean())

        assert share(cap) >= 0.005
        assert share(fill_a) + share(fill_b) >= 0.01
        if pattern == "solid":
            assert share(fill_b) < 0.005  # a solid fill shows colour a only


def test_palettes_differ_from_the_segmentation_parts() -> None:
    corpus_colours = np.array([c for palette in CORPUS_PALETTES for c in palette], np.int64)
    part_colours = np.array([c for _, a, b in _PARTS for c in (a, b)], np.int64)
    gaps = np.abs(corpus_colours[:, None] - part_colours[None]).max(-1)
    assert gaps.min() >= 30


def test_deterministic_by_seed(corpus: Path, tmp_path: Path) -> None:
    write_corpus(tmp_path / "same.npz", seed=5, num_classes=120, images_per_class=2, image_size=40)
    write_corpus(tmp_path / "other.npz", seed=6, num_classes=120, images_per_class=2, image_size=40)
    same, other = read_corpus(tmp_path / "same.npz")[0], read_corpus(tmp_path / "other.npz")[0]
    np.testing.assert_array_equal(same, read_corpus(corpus)[0])
    assert (same != other).any(axis=(1, 2, 3)).all()


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="corpus num_classes=1: need 2"):
        write_corpus(tmp_path / "c.npz", seed=0, num_classes=1, images_per_class=1, image_size=32)
    bad = tmp_path / "bad.npz"
    np.savez(bad, images=np.zeros((2, 32, 32, 3), np.uint8), labels=np.array([0, 3]),
             class_names=np.array(["a", "b"]))  # fmt: skip
    with pytest.raises(ValueError, match="bad.npz: 2 images, 2 labels in 0..3 for 2 classes"):
        read_corpus(bad)
