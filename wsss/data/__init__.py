"""Datasets: VOC-format trees (real VOC 2012 + SBD, or the embedded synthetic benchmark) and
the Cityscapes / ADE20K folder layouts."""

from __future__ import annotations

from wsss.data.ade20k import ADE20K_CLASSES, ade20k_to_train_ids, list_ade20k
from wsss.data.cityscapes import (
    CITYSCAPES_CLASSES,
    cityscapes_palette,
    label_ids_to_train_ids,
    list_cityscapes,
)
from wsss.data.dataset import VOCSegmentation
from wsss.data.pairs import ImagePair, PairedSegmentation
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
    "ADE20K_CLASSES",
    "BACKGROUND_TEXTURES",
    "CITYSCAPES_CLASSES",
    "IGNORE_INDEX",
    "SHAPE_FAMILIES",
    "VOC_CLASSES",
    "VOCSegmentation",
    "ImagePair",
    "PairedSegmentation",
    "ade20k_to_train_ids",
    "cityscapes_palette",
    "label_ids_to_train_ids",
    "list_ade20k",
    "list_cityscapes",
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
