"""The table of everything the workflow can fetch: ImageNet weights and dataset archives.

Each entry names its URL, its checksum and where that checksum comes from, and (weights) the
converter and the backbone the weights fit. ``config.yaml`` overrides any entry by name
(``weights.sources.<name>`` / ``downloads.sources.<name>``: a mirror or ``file://`` ``url``, a
local ``path`` used in place, a ``digest``); :func:`resolve_source` merges the two.

Checksums are the published ones only:

- torchvision: the sha256 prefix in the file name of the weight enum's URL (torch.hub's
  convention), read from torchvision at run time together with the URL;
- open-mmlab: the sha256 prefix in the file name (the same convention);
- VOC 2012 and SBD: the MD5s torchvision's ``VOCSegmentation`` and ``SBDataset`` hold;
- ADE20K: the SHA-1 GluonCV's download script publishes for ``ADEChallengeData2016.zip``.

Nothing is published for MIT CSAIL's ResNet-101, the ResNet-38 MXNet file, Cityscapes, the COCO
zips or the PFAN saliency maps (``digest=None``). Those are accepted after structural checks
(a weights file must convert and fit its backbone key for key and shape for shape; an archive
must open and hold the expected layout; saliency maps must cover every ``train_aug`` id), and
the sha256 of what was fetched is logged and written to the fetch manifest, so a site can pin
it with ``digest: sha256:<hex>``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from wsss.fetch.download import Source

__all__ = [
    "ARCHIVES",
    "Archive",
    "PLACED",
    "RECIPES",
    "WEIGHTS",
    "WeightsEntry",
    "architecture",
    "imagenet_name",
    "missing_archives",
    "resolve_source",
]


@dataclass(frozen=True)
class WeightsEntry:
    """One ImageNet weight file.

    Args:
        url: the download URL (None: taken from ``torchvision``'s enum).
        digest: ``"<algorithm>:<hex>"`` or None (none published; see the module docstring).
        converter: a key of :data:`wsss.fetch.convert.CONVERTERS`.
        backbone: the architecture the weights fit (:func:`architecture` form).
        size_mb: approximate download size.
        origin: who publishes it (messages, README).
        torchvision: ``"<Enum>.<member>"`` of ``torchvision.models`` supplying URL and digest.
    """

    url: str | None
    digest: str | None
    converter: str
    backbone: Mapping
    size_mb: float
    origin: str
    torchvision: str | None = None


_MMLAB = "https://download.openmmlab.com/pretrain/third_party"
_DRIVE = "https://drive.google.com/file/d/{}/view"

WEIGHTS: dict[str, WeightsEntry] = {
    # IRN's and DeepLab's ImageNet ResNets (IMAGENET1K_V1: the original torchvision weights)
    "torchvision_resnet50": WeightsEntry(
        None, None, "torchvision", {"name": "resnet", "depth": 50}, 98,
        "torchvision", torchvision="ResNet50_Weights.IMAGENET1K_V1",
    ),
    "torchvision_resnet101": WeightsEntry(
        None, None, "torchvision", {"name": "resnet", "depth": 101}, 171,
        "torchvision", torchvision="ResNet101_Weights.IMAGENET1K_V1",
    ),
    # PCAA's backbones (mmseg's open-mmlab://resnet50_v1c / resnet101_v1c)
    "openmmlab_resnet50_v1c": WeightsEntry(
        f"{_MMLAB}/resnet50_v1c-2cccc1ad.pth", "sha256:2cccc1ad", "mmcv_v1c",
        {"name": "resnet", "depth": 50, "deep_stem": True}, 100, "open-mmlab",
    ),
    "openmmlab_resnet101_v1c": WeightsEntry(
        f"{_MMLAB}/resnet101_v1c-e67eebb6.pth", "sha256:e67eebb6", "mmcv_v1c",
        {"name": "resnet", "depth": 101, "deep_stem": True}, 171, "open-mmlab",
    ),
    # CCNet's README: MIT CSAIL's deep-stem ResNet-101 (stem 64-64-128); no checksum published
    "csail_resnet101": WeightsEntry(
        "http://sceneparsing.csail.mit.edu/model/pretrained_resnet/resnet101-imagenet.pth",
        None, "csail_deep_stem",
        {"name": "resnet", "depth": 101, "deep_stem": True, "stem_width": 128}, 171, "MIT CSAIL",
    ),
    # PSA/SEAM/CPN/EPS/SMAF: ilsvrc-cls_rna-a1_cls1000_ep-0001.params (ademxapp's Model A1) as
    # the EPS README links it (its original CloudStor link is gone); no checksum published
    "resnet38_ilsvrc": WeightsEntry(
        _DRIVE.format("1WvSkPfAtfPzyxcgG58a1RlRayMYb3FBc"), None, "resnet38",
        {"name": "resnet38", "width": 1.0}, 420, "ademxapp (University of Adelaide), via EPS",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class Archive:
    """One dataset archive.

    Args:
        url: download URL, None where a login is needed (a local ``path`` must be configured).
        digest: ``"<algorithm>:<hex>"`` or None (none published).
        size_mb: approximate size (None: not published).
        layout: members the archive must hold (folders end in ``/``).
        how_to_get: for archives without a URL: what the user must do.
        torchvision: ``"voc2012"`` / ``"sbd"``: URL and MD5 read from torchvision.
    """

    url: str | None
    digest: str | None
    size_mb: float | None
    layout: tuple[str, ...]
    filename: str
    how_to_get: str | None = None
    torchvision: str | None = None


_VOC = "VOCdevkit/VOC2012/"
_CS_LOGIN = (
    "Cityscapes needs a login: download {file} from https://www.cityscapes-dataset.com/downloads/ "
    "and set downloads.sources.{name}.path to it"
)
_COCO = "http://images.cocodataset.org"

ARCHIVES: dict[str, Archive] = {
    "voc2012_trainval": Archive(
        None, None, 2000,
        tuple(f"{_VOC}{p}" for p in ("JPEGImages/", "SegmentationClass/",
                                     "ImageSets/Segmentation/train.txt",
                                     "ImageSets/Segmentation/val.txt")),
        "VOCtrainval_11-May-2012.tar", torchvision="voc2012",
    ),
    "sbd_benchmark": Archive(
        None, None, 1400,
        ("benchmark_RELEASE/dataset/cls/", "benchmark_RELEASE/dataset/train.txt",
         "benchmark_RELEASE/dataset/val.txt"),
        "benchmark.tgz", torchvision="sbd",
    ),
    "ade20k": Archive(
        "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip",
        "sha1:219e1696abb36c8ba3a3afe7fb2f4b4606a897c7", 923,
        tuple(f"ADEChallengeData2016/{k}/{s}/" for k in ("images", "annotations")
              for s in ("training", "validation")),
        "ADEChallengeData2016.zip",
    ),
    "cityscapes_gtfine": Archive(
        None, None, 241, ("gtFine/train/", "gtFine/val/"), "gtFine_trainvaltest.zip",
        how_to_get=_CS_LOGIN.format(file="gtFine_trainvaltest.zip", name="cityscapes_gtfine"),
    ),
    "cityscapes_leftimg8bit": Archive(
        None, None, 11000, ("leftImg8bit/train/", "leftImg8bit/val/"),
        "leftImg8bit_trainvaltest.zip",
        how_to_get=_CS_LOGIN.format(file="leftImg8bit_trainvaltest.zip",
                                    name="cityscapes_leftimg8bit"),
    ),
    "coco2014_train": Archive(
        f"{_COCO}/zips/train2014.zip", None, 13000, ("train2014/",), "train2014.zip"
    ),
    "coco2014_val": Archive(f"{_COCO}/zips/val2014.zip", None, 6200, ("val2014/",), "val2014.zip"),
    "coco2014_annotations": Archive(
        f"{_COCO}/annotations/annotations_trainval2014.zip", None, 241,
        ("annotations/instances_train2014.json", "annotations/instances_val2014.json"),
        "annotations_trainval2014.zip",
    ),
    # PFAN salient-object maps of VOC train_aug, as the EPS README links them; the archive's
    # inner folder is found by its contents (one <id>.png per train_aug id)
    "pfan_voc": Archive(
        _DRIVE.format("19AjSmgdMlIZH4FXVZ5zjlUZcoZZCkwrI"), None, None, (), "pfan_voc_saliency"
    ),
}  # fmt: skip

# datasets.<name>.fetch → the archives its recipe lays out (wsss.fetch.datasets)
RECIPES: dict[str, tuple[str, ...]] = {
    "voc_sbd": ("voc2012_trainval", "sbd_benchmark"),
    "ade20k": ("ade20k",),
    "cityscapes": ("cityscapes_gtfine", "cityscapes_leftimg8bit"),
    "coco2014": ("coco2014_train", "coco2014_val", "coco2014_annotations"),
}

SEG = "ImageSets/Segmentation"
# archive → (folder inside the archive whose entries go to the root, what the root then holds)
PLACED: dict[str, tuple[str, tuple[str, ...]]] = {
    "voc2012_trainval": (
        "VOCdevkit/VOC2012",
        ("JPEGImages", "SegmentationClass", f"{SEG}/train.txt", f"{SEG}/val.txt"),
    ),
    "sbd_benchmark": ("", ("SegmentationClassAug", f"{SEG}/train_aug.txt")),
    "ade20k": (
        "ADEChallengeData2016",
        tuple(f"{k}/{s}" for k in ("images", "annotations") for s in ("training", "validation")),
    ),
    "cityscapes_gtfine": ("", ("gtFine/train", "gtFine/val")),
    "cityscapes_leftimg8bit": ("", ("leftImg8bit/train", "leftImg8bit/val")),
    "coco2014_train": ("", ("train2014",)),
    "coco2014_val": ("", ("val2014",)),
    "coco2014_annotations": (
        "",
        ("annotations/instances_train2014.json", "annotations/instances_val2014.json"),
    ),
}


def missing_archives(recipe: str, root: str | os.PathLike) -> list[str]:
    """The archives of ``recipe`` whose content ``root`` does not hold yet."""
    if recipe not in RECIPES:
        raise KeyError(f"unknown fetch recipe {recipe!r}; valid: {sorted(RECIPES)}")
    root = Path(root)
    return [
        name for name in RECIPES[recipe] if not all((root / p).exists() for p in PLACED[name][1])
    ]


# the torch.hub convention: <name>-<sha256 prefix>.<ext>
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")


def _torchvision_weights(spec: str) -> tuple[str, str | None, float | None]:
    import torchvision.models as tvm

    enum_name, member = spec.split(".")
    weights = getattr(getattr(tvm, enum_name), member)
    match = _HASH_IN_NAME.search(PurePosixPath(weights.url).name)
    size = weights.meta.get("_file_size")
    return weights.url, f"sha256:{match.group(1)}" if match else None, size


def _torchvision_archive(which: str) -> tuple[str, str]:
    if which == "voc2012":
        from torchvision.datasets.voc import DATASET_YEAR_DICT

        entry = DATASET_YEAR_DICT["2012"]
        return entry["url"], f"md5:{entry['md5']}"
    from torchvision.datasets import SBDataset

    return SBDataset.url, f"md5:{SBDataset.md5}"


def resolve_source(name: str, overrides: Mapping | None = None) -> Source:
    """The :class:`~wsss.fetch.download.Source` of a weights or archive entry, with the config's
    override (``url``, ``path``, ``digest``) applied.

    Raises:
        KeyError: naming the valid names when ``name`` is in neither table.
    """
    overrides = dict(overrides or {})
    if name in WEIGHTS:
        entry = WEIGHTS[name]
        url, digest, size = entry.url, entry.digest, entry.size_mb
        if entry.torchvision:
            url, digest, size = _torchvision_weights(entry.torchvision)
        filename = f"{name}.orig"
        via = "hub"
        if "drive.google.com" in (overrides.get("url") or url or ""):
            via = "torchvision"  # torch.hub cannot follow Google Drive's confirmation page
    elif name in ARCHIVES:
        entry = ARCHIVES[name]
        url, digest, size = entry.url, entry.digest, entry.size_mb
        if entry.torchvision:
            url, digest = _torchvision_archive(entry.torchvision)
        filename, via = entry.filename, "torchvision"
    else:
        raise KeyError(
            f"{name!r} is not a weights or archive name; weights: {sorted(WEIGHTS)}, "
            f"archives: {sorted(ARCHIVES)}"
        )
    source = Source(name, filename, url=url, digest=digest, size_mb=size, via=via)
    return replace(source, **{k: v for k, v in overrides.items() if k in ("url", "path", "digest")})


def architecture(backbone: Mapping) -> dict:
    """The keys of a backbone config that decide its parameter names and shapes (ResNet:
    depth, base width, stem kind and width; ResNet-38: width), defaults filled in."""
    if backbone["name"] == "resnet38":
        return {"name": "resnet38", "width": float(backbone.get("width", 1.0))}
    base = backbone.get("base_width", 64)
    deep = bool(backbone.get("deep_stem", False))
    return {
        "name": "resnet",
        "depth": backbone["depth"],
        "base_width": base,
        "deep_stem": deep,
        "stem_width": backbone.get("stem_width", base),
    }


def imagenet_name(backbone: Mapping) -> str | None:
    """The table name whose weights fit ``backbone`` (what ``pretrained: imagenet`` means), or
    None when no table entry fits it."""
    arch = architecture(backbone)
    for name, entry in WEIGHTS.items():
        if architecture(entry.backbone) == arch:
            return name
    return None
