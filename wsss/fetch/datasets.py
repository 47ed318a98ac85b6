"""Laying out dataset archives under a dataset root (rules ``fetch_dataset``, ``fetch_saliency``).

Recipes (``datasets.<name>.fetch``, :data:`wsss.fetch.catalog.RECIPES`):

- ``voc_sbd``: VOC 2012 trainval, then SBD's ``benchmark.tgz`` turned into
  ``SegmentationClassAug/`` (palette PNGs from ``cls/<id>.mat``, ``GTcls.Segmentation``; VOC's
  own ``SegmentationClass`` mask wins where both exist, the usual recipe) and
  ``ImageSets/Segmentation/train_aug.txt`` = (SBD train ∪ SBD val ∪ VOC train) − VOC val
  (10,582 ids on the real data);
- ``ade20k``: ``ADEChallengeData2016/*`` into root; ``cityscapes``: the two ``*_trainvaltest.zip``
  (local files: Cityscapes needs a login) into root; ``coco2014``: the three official zips into
  the COCO folder that ``convert_coco`` reads.

Each archive is extracted into a hidden folder under the destination and its entries are then
renamed into place one by one, never over an existing entry; a component counts as present when
its folders and list files exist (``check_dataset`` then checks every file). So an interrupted
run leaves either a complete entry or none, and a rerun fills in only what is missing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import scipy.io

from wsss.data.voc import voc_palette
from wsss.fetch.catalog import ARCHIVES, PLACED, RECIPES, SEG, missing_archives
from wsss.fetch.download import (
    FetchError,
    Source,
    archive_members,
    check_digest,
    obtain,
    require_members,
    safe_extract,
)
from wsss.io import read_ids, save_label_png, write_ids

__all__ = [
    "fetch_saliency",
    "lay_out",
    "missing_archives",
    "missing_saliency",
    "read_sbd_mask",
    "train_aug_ids",
]

log = logging.getLogger(__name__)

WORK = ".wsss-fetch"  # scratch folder under the destination (same file system: atomic renames)


def read_sbd_mask(path: str | os.PathLike, num_classes: int = 21) -> np.ndarray:
    """``GTcls.Segmentation`` of an SBD ``cls/<id>.mat`` as ``(H, W)`` uint8 class ids.

    Raises:
        ValueError: naming the file when the struct or the field is missing or the values are
            no VOC class ids.
    """
    try:
        mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
        seg = np.asarray(mat["GTcls"].Segmentation)
    except (KeyError, AttributeError, ValueError, OSError, TypeError) as exc:
        raise ValueError(f"{path}: no GTcls.Segmentation field ({exc})") from exc
    if seg.ndim != 2 or seg.size == 0:
        raise ValueError(f"{path}: GTcls.Segmentation has shape {seg.shape}, expected (H, W)")
    bad = np.setdiff1d(np.unique(seg), [*range(num_classes), 255])
    if bad.size:
        raise ValueError(f"{path}: values {bad.tolist()[:5]} are no VOC class ids")
    return seg.astype(np.uint8)


def train_aug_ids(
    sbd_train: Sequence[str],
    sbd_val: Sequence[str],
    voc_train: Sequence[str],
    voc_val: Sequence[str],
) -> list[str]:
    """(SBD train ∪ SBD val ∪ VOC train) − VOC val, sorted: the ``train_aug`` split."""
    return sorted((set(sbd_train) | set(sbd_val) | set(voc_train)) - set(voc_val))


def _place(src_dir: Path, dest: Path) -> None:
    """Rename every entry of ``src_dir`` into ``dest``; folders that exist are merged into,
    existing files are kept."""
    dest.mkdir(parents=True, exist_ok=True)
    for entry in sorted(src_dir.iterdir()):
        target = dest / entry.name
        if not target.exists():
            os.replace(entry, target)
        elif entry.is_dir() and target.is_dir():
            _place(entry, target)


def _work_dir(dest: Path, name: str) -> Path:
    work = dest / WORK / name
    if work.exists():
        shutil.rmtree(work)  # leftovers of an interrupted run
    work.mkdir(parents=True)
    return work


def _unpack(archive: Path, name: str, dest: Path) -> Path:
    """Check ``archive``'s layout, extract it under ``dest``'s scratch folder; return the folder
    holding the entries that go to ``dest``."""
    required = ARCHIVES[name].layout
    try:
        require_members(archive, archive_members(archive), required)
    except FetchError as exc:
        raise FetchError(f"{name}: {exc}") from None
    work = _work_dir(dest, name)
    safe_extract(archive, work)
    return work / PLACED[name][0]


def _build_sbd(sbd_root: Path, root: Path) -> int:
    """``SegmentationClassAug/`` and ``train_aug.txt`` from the extracted SBD ``dataset/``
    folder and the VOC tree at ``root``; returns the number of train_aug ids."""
    lists = {s: read_ids(sbd_root / f"{s}.txt") for s in ("train", "val")}
    voc = {s: read_ids(root / SEG / f"{s}.txt") for s in ("train", "val")}
    ids = sorted(set(lists["train"]) | set(lists["val"]) | set(voc["train"]) | set(voc["val"]))
    missing = [
        i for i in set(lists["train"]) | set(lists["val"])
        if not (sbd_root / "cls" / f"{i}.mat").is_file()
    ]  # fmt: skip
    if missing:
        raise FetchError(
            f"sbd_benchmark lacks benchmark_RELEASE/dataset/cls/<id>.mat for {len(missing)} "
            f"listed ids, e.g. {sorted(missing)[0]}.mat"
        )
    out = sbd_root.parent / "SegmentationClassAug"
    out.mkdir()
    palette = voc_palette()
    for image_id in ids:
        voc_mask = root / "SegmentationClass" / f"{image_id}.png"
        if voc_mask.is_file():  # VOC's own annotation wins
            shutil.copyfile(voc_mask, out / f"{image_id}.png")
        else:
            save_label_png(
                out / f"{image_id}.png",
                read_sbd_mask(sbd_root / "cls" / f"{image_id}.mat"),
                palette,
            )
    augmented = train_aug_ids(lists["train"], lists["val"], voc["train"], voc["val"])
    _place_entry(out, root / "SegmentationClassAug")
    write_ids(root / SEG / "train_aug.txt", augmented)
    return len(augmented)


@contextlib.contextmanager
def _dropped_when_broken(archive: Path, source: Source) -> Iterator[None]:
    """Delete a downloaded archive that fails its structural checks (a later run downloads it
    again instead of reusing it); local files are never deleted."""
    try:
        yield
    except FetchError as exc:
        if source.path is None:
            archive.unlink(missing_ok=True)
            raise FetchError(f"{exc} (download deleted; rerun to fetch it again)") from None
        raise


def _place_entry(src: Path, dest: Path) -> None:
    if dest.exists():
        _place(src, dest)
    else:
        os.replace(src, dest)


def lay_out(
    recipe: str,
    root: str | os.PathLike,
    sources: Mapping[str, Source],
    cache: str | os.PathLike,
    *,
    keep_archives: bool = False,
) -> dict:
    """Fetch and lay out what ``root`` lacks of ``recipe``; return the manifest (per archive:
    source and sha256, or ``"present"``; the train_aug count for ``voc_sbd``).

    Raises:
        FetchError / ChecksumError (ValueError): one line naming the archive and the problem.
    """
    root = Path(root)
    manifest: dict = {"recipe": recipe, "root": str(root), "archives": {}}
    todo = set(missing_archives(recipe, root))
    for name in RECIPES[recipe]:
        if name not in todo:
            manifest["archives"][name] = "present"
            continue
        source = sources[name]
        if source.url is None and source.path is None:
            raise FetchError(ARCHIVES[name].how_to_get or f"{name}: no URL or local path")
        archive = obtain(source, cache, space_factor=2.2)  # archive + its extracted files
        with _dropped_when_broken(archive, source):
            inner = _unpack(archive, name, root)
            if name == "sbd_benchmark":
                manifest["train_aug"] = _build_sbd(inner / "benchmark_RELEASE" / "dataset", root)
            else:
                _place(inner, root)
        manifest["archives"][name] = {
            "source": source.path or source.url,
            "sha256": check_digest(archive, None),
        }
        shutil.rmtree(root / WORK / name)
        if source.path is None and not keep_archives:
            archive.unlink()
    shutil.rmtree(root / WORK, ignore_errors=True)
    still = missing_archives(recipe, root)
    if still:
        raise FetchError(f"{root} still lacks the content of {', '.join(still)} after fetching")
    if recipe == "voc_sbd" and "train_aug" not in manifest:
        manifest["train_aug"] = len(read_ids(root / SEG / "train_aug.txt"))
    return manifest


def missing_saliency(folder: str | os.PathLike, ids: Sequence[str]) -> list[str]:
    """The ids of ``ids`` without ``<folder>/<id>.png``."""
    folder = Path(folder)
    return [i for i in ids if not (folder / f"{i}.png").is_file()]


def _find_map_folder(top: Path, probe: str) -> Path | None:
    for folder, _, files in os.walk(top):
        if f"{probe}.png" in files:
            return Path(folder)
    return None


def fetch_saliency(
    root: str | os.PathLike,
    saliency_dir: str,
    ids: Sequence[str],
    source: Source,
    cache: str | os.PathLike,
    *,
    keep_archives: bool = False,
    describe: Callable[[], str] = lambda: "saliency maps",
) -> dict:
    """Put one saliency map ``<id>.png`` per id of ``ids`` under ``<root>/<saliency_dir>``
    from ``source``'s archive (its inner folder found by its contents); maps already there are
    kept. Returns the manifest.

    Raises:
        FetchError: naming how many ids the archive lacks maps for, with an example.
    """
    root = Path(root)
    dest = root / saliency_dir
    if not ids:
        raise FetchError(f"no ids to fetch {describe()} for")
    manifest: dict = {"folder": str(dest), "maps": len(ids)}
    if not missing_saliency(dest, ids):
        manifest["source"] = "present"
        return manifest
    archive = obtain(source, cache, space_factor=2.2)
    work = _work_dir(root, "saliency")
    with _dropped_when_broken(archive, source):
        safe_extract(archive, work)
        folder = _find_map_folder(work, ids[0])
        lacking = missing_saliency(folder, ids) if folder is not None else list(ids)
        if lacking:
            raise FetchError(
                f"{source.name} ({source.path or source.url}) lacks {describe()} for "
                f"{len(lacking)} of {len(ids)} train_aug ids, e.g. {lacking[0]}.png"
            )
    dest.mkdir(parents=True, exist_ok=True)
    for image_id in ids:
        target = dest / f"{image_id}.png"
        if not target.exists():
            os.replace(folder / f"{image_id}.png", target)
    manifest.update(source=source.path or source.url, sha256=check_digest(archive, None))
    shutil.rmtree(root / WORK, ignore_errors=True)
    if source.path is None and not keep_archives:
        archive.unlink()
    return manifest
