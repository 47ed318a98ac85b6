"""Datasets: VOC-format trees (real VOC 2012 + SBD, or the embedded synthetic benchmark)."""

from __future__ import annotations

from wsss.data.dataset import VOCSegmentation
from wsss.data.synthetic import BACKGROUND_TEXTURES, SHAPE_FAMILIES, default_class_names, generate
from wsss.data.voc import (
    IGNORE_INDEX,
    VOC_CLASSES,
    image_labels,
    image_path,
    labels_from_mask,
    mask_path,
    read_image_labels,
    split_path,
    validate_split,
    voc_palette,
    write_image_labels,
)

__all__ = [
    "BACKGROUND_TEXTURES",
    "IGNORE_INDEX",
    "SHAPE_FAMILIES",
    "VOC_CLASSES",
    "VOCSegmentation",
    "default_class_names",
    "generate",
    "image_labels",
    "image_path",
    "labels_from_mask",
    "mask_path",
    "read_image_labels",
    "split_path",
    "validate_split",
    "voc_palette",
    "write_image_labels",
]
