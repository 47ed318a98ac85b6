"""On-disk artifact formats and atomic writes: label PNGs, CAM archives, checkpoints, manifests.

Every writer goes through :func:`atomic_path`, so an interrupted stage never leaves a
half-written file that a later stage could mistake for a finished one.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

__all__ = [
    "UnreadableFileError",
    "atomic_path",
    "read_ids",
    "write_ids",
    "load_image",
    "image_size",
    "save_label_png",
    "load_label_png",
    "save_cam_npz",
    "load_cam_npz",
    "save_checkpoint",
    "load_checkpoint",
    "write_json",
    "read_json",
]


class UnreadableFileError(ValueError):
    """An artifact that cannot be read safely: truncated, corrupt, or holding pickled objects
    (which are never loaded). The message names the file and what to do."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it onto ``path`` only if the block succeeds.

    The temporary name keeps the suffix so that writers choosing a format by extension
    (PIL, numpy) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; results are shared
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_ids(path: str | os.PathLike) -> list[str]:
    """Read an id list (one id per line; blank lines ignored).

    Raises:
        FileNotFoundError: naming ``path`` when it does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"split file not found: {path}")
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def write_ids(path: str | os.PathLike, ids: Sequence[str]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{i}\n" for i in ids))


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Load an image as uint8 RGB ``(H, W, 3)``; ``ValueError`` naming the file if unreadable."""
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except Exception as exc:  # PIL raises several unrelated types for corrupt files
        raise ValueError(f"unreadable image {path}: {exc}") from exc


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(H, W)`` of an image from its header (the pixels are not decoded)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
    except FileNotFoundError:
        raise FileNotFoundError(f"image not found: {path}") from None
    except Exception as exc:
        raise ValueError(f"unreadable image {path}: {exc}") from exc
    return height, width


def save_label_png(path: str | os.PathLike, label: np.ndarray, palette: np.ndarray) -> None:
    """Write a ``(H, W)`` uint8 label map as a palette ("P" mode) PNG.

    Args:
        label: values are palette indices (0..K-1 classes, 255 ignore).
        palette: ``(256, 3)`` uint8 RGB table.
    """
    if label.ndim != 2:
        raise ValueError(f"label must be 2-D, got shape {label.shape} for {path}")
    img = Image.fromarray(np.asarray(label, dtype=np.uint8), mode="P")
    img.putpalette(np.asarray(palette, dtype=np.uint8).reshape(-1).tolist())
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")


def load_label_png(path: str | os.PathLike) -> np.ndarray:
    """Read a label PNG as ``(H, W)`` uint8 indices.

    Palette PNGs decode to their indices; grayscale ("L") PNGs to their values (the SBD
    ``SegmentationClassAug`` convention). RGB label images are refused, because colours
    would silently become wrong class ids.
    """
    try:
        with Image.open(path) as img:
            if img.mode not in ("P", "L"):
                raise ValueError(f"label PNG {path} has mode {img.mode!r}; expected 'P' or 'L'")
            return np.asarray(img, dtype=np.uint8).copy()
    except FileNotFoundError:
        raise FileNotFoundError(f"label file not found: {path}") from None


def load_saliency(path: str | os.PathLike) -> np.ndarray:
    """Read a saliency map (grey or RGB PNG/JPEG, 255 = salient) as ``(H, W)`` float32 in [0, 1];
    colour maps are averaged over their channels, as EPS does with PFAN's."""
    try:
        with Image.open(path) as img:
            values = np.asarray(img.convert("RGB") if img.mode != "L" else img, dtype=np.float32)
    except FileNotFoundError:
        raise FileNotFoundError(f"saliency map not found: {path}") from None
    return (values.mean(axis=2) if values.ndim == 3 else values) / 255.0


def save_cam_npz(
    path: str | os.PathLike, *, keys: np.ndarray, high_res: np.ndarray, **extra: np.ndarray
) -> None:
    """Write one image's CAMs: ``keys`` (K,) int64 fg-class indices, ``high_res`` (K, H, W)."""
    keys = np.asarray(keys, dtype=np.int64)
    high_res = np.asarray(high_res, dtype=np.float32)
    if high_res.ndim != 3 or high_res.shape[0] != keys.shape[0]:
        raise ValueError(f"cams {high_res.shape} do not match keys {keys.shape} for {path}")
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, keys=keys, high_res=high_res, **extra)


def load_cam_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a CAM archive written by :func:`save_cam_npz` (no pickles).

    Raises:
        FileNotFoundError: naming ``path``.
        UnreadableFileError: one line naming ``path`` when it is truncated, corrupt or holds
            pickled objects (refused, never loaded).
    """
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise FileNotFoundError(f"CAM file not found: {path}") from None
    except ValueError as exc:  # numpy's refusal of object arrays / pickled data
        pickled = "pickle" in str(exc)
        reason = "holds pickled objects, which are never loaded" if pickled else _corrupt(exc)
        raise UnreadableFileError(_unreadable(path, reason, _RERUN_FOLDER)) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UnreadableFileError(_unreadable(path, _corrupt(exc), _RERUN_FOLDER)) from None


def save_checkpoint(path: str | os.PathLike, payload: Mapping) -> None:
    """Atomically save a plain-dict checkpoint (tensors, numbers, strings, lists, dicts only).

    Saved through an open file, not a path: given a path, ``torch.save`` names the archive's
    records after it, and the random temporary name would make equal checkpoints differ in bytes.
    """
    import torch  # here, not at the top: jobs that read no checkpoint start faster without it

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(dict(payload), f)


def load_checkpoint(
    path: str | os.PathLike,
    map_location: str | torch.device = "cpu",
    *,
    remedy: str = "delete it and rerun the rule that writes it",
) -> dict:
    """Load a checkpoint without unpickling arbitrary objects (``weights_only=True``).

    Raises:
        FileNotFoundError: naming ``path``.
        UnreadableFileError: one line naming ``path``, why, and ``remedy``, when the file is
            truncated or corrupt or holds objects other than tensors and plain values (PyTorch's
            own message, which suggests the unsafe ``weights_only=False``, is not passed on).
    """
    import torch  # see save_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(exc))
        reason = (
            f"holds a pickled {found.group(1)}, which is never loaded"
            if found
            else "is not a weights-only checkpoint (corrupt, or pickled objects, never loaded)"
        )
        raise UnreadableFileError(_unreadable(path, reason, remedy)) from None
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UnreadableFileError(_unreadable(path, _corrupt(exc), remedy)) from None


_RERUN_FOLDER = "delete its folder and rerun the rule that writes it"


def _corrupt(exc: BaseException) -> str:
    return f"is truncated or corrupt ({type(exc).__name__})"


def _unreadable(path: str | os.PathLike, reason: object, remedy: str) -> str:
    return f"{path} {reason}: {remedy}"


def write_json(path: str | os.PathLike, obj: object) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike) -> object:
    return json.loads(Path(path).read_text())
