"""Fetching what real runs start from: ImageNet weights (downloaded, converted to wsss names,
checked key for key) and dataset archives (checked and laid out), with checksums, atomic
renames and one-line errors. :mod:`wsss.fetch.catalog` is the table of every source."""

from wsss.fetch.catalog import ARCHIVES, RECIPES, WEIGHTS, imagenet_name, resolve_source
from wsss.fetch.download import ChecksumError, FetchError, Source, obtain
from wsss.fetch.pretrained import pretrained_file, scratch_entries

__all__ = [
    "ARCHIVES",
    "RECIPES",
    "WEIGHTS",
    "ChecksumError",
    "FetchError",
    "Source",
    "imagenet_name",
    "obtain",
    "pretrained_file",
    "resolve_source",
    "scratch_entries",
]
