"""Small VOC 2012 and SBD archives in the real layouts (a tar with ``VOCdevkit/VOC2012/…``, a
tgz with ``benchmark_RELEASE/dataset/cls/<id>.mat`` in SBD's MATLAB struct layout)."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field

import numpy as np
import scipy.io
import scipy.sparse
from PIL import Image

from wsss.data.voc import voc_palette

VOC_TRAIN = ["2007_000032", "2007_000039", "2008_000002"]
VOC_VAL = ["2007_000033", "2009_000010"]
SBD_TRAIN = ["2008_000008", "2008_000015", "2007_000032", "2007_000033"]  # overlaps VOC
SBD_VAL = ["2010_000003", "2007_000039"]


def _size(image_id: str) -> tuple[int, int]:
    n = int(image_id[-2:])
    return 20 + n % 7, 24 + n % 5


@dataclass
class VocArchives:
    voc_tar: bytes
    sbd_tgz: bytes
    voc_masks: dict[str, np.ndarray] = field(default_factory=dict)
    sbd_masks: dict[str, np.ndarray] = field(default_factory=dict)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _png(mask: np.ndarray) -> bytes:
    img = Image.fromarray(mask, mode="P")
    img.putpalette(voc_palette().reshape(-1).tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(h: int, w: int, seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG")
    return buf.getvalue()


def _mat(mask: np.ndarray) -> bytes:
    """SBD's ``GTcls`` struct: Segmentation (uint8 H×W), Boundaries (cell of sparse maps per
    class), CategoriesPresent."""
    present = np.unique(mask[(mask > 0) & (mask < 255)]).astype(np.uint8)
    boundaries = np.empty((20, 1), dtype=object)
    for c in range(20):
        boundaries[c, 0] = scipy.sparse.csc_matrix((mask == c + 1).astype(np.uint8))
    buf = io.BytesIO()
    scipy.io.savemat(
        buf,
        {
            "GTcls": {
                "Segmentation": mask,
                "Boundaries": boundaries,
                "CategoriesPresent": present.reshape(-1, 1),
            }
        },
    )
    return buf.getvalue()


def build_voc_archives(seed: int = 0) -> VocArchives:
    rng = np.random.default_rng(seed)
    all_ids = sorted(set(VOC_TRAIN + VOC_VAL + SBD_TRAIN + SBD_VAL))
    out = VocArchives(b"", b"")
    voc = io.BytesIO()
    with tarfile.open(fileobj=voc, mode="w") as tar:
        root = "VOCdevkit/VOC2012"
        for i, image_id in enumerate(all_ids):
            _add(tar, f"{root}/JPEGImages/{image_id}.jpg", _jpeg(*_size(image_id), i))
        for image_id in VOC_TRAIN + VOC_VAL:
            mask = rng.integers(0, 21, _size(image_id), dtype=np.uint8)
            mask[0, :] = 255  # VOC's boundary band
            out.voc_masks[image_id] = mask
            _add(tar, f"{root}/SegmentationClass/{image_id}.png", _png(mask))
        seg = f"{root}/ImageSets/Segmentation"
        for split, ids in (
            ("train", VOC_TRAIN),
            ("val", VOC_VAL),
            ("trainval", VOC_TRAIN + VOC_VAL),
        ):
            _add(tar, f"{seg}/{split}.txt", "".join(f"{i}\n" for i in ids).encode())
        _add(tar, f"{root}/Annotations/{VOC_TRAIN[0]}.xml", b"<annotation/>")
    out.voc_tar = voc.getvalue()
    sbd = io.BytesIO()
    with tarfile.open(fileobj=sbd, mode="w:gz") as tar:
        root = "benchmark_RELEASE/dataset"
        for image_id in SBD_TRAIN + SBD_VAL:
            mask = rng.integers(0, 21, _size(image_id), dtype=np.uint8)  # no 255 in SBD
            out.sbd_masks[image_id] = mask
            _add(tar, f"{root}/cls/{image_id}.mat", _mat(mask))
            _add(tar, f"{root}/img/{image_id}.jpg", b"jpeg")
        for split, ids in (("train", SBD_TRAIN), ("val", SBD_VAL)):
            _add(tar, f"{root}/{split}.txt", "".join(f"{i}\n" for i in ids).encode())
    out.sbd_tgz = sbd.getvalue()
    return out
