"""Up-front check that the workflow can write where its outputs go (a read-only subfolder
otherwise fails late, after hours of work, as a traceback)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["first_unwritable_folder", "unwritable_message"]


def first_unwritable_folder(root: str | os.PathLike, depth: int = 3) -> Path | None:
    """The first folder this process cannot create files in: ``root`` (or, when it does not
    exist yet, its nearest existing parent, where it will be made) and its subfolders down to
    ``depth`` levels (``results/<dataset>/<experiment>/<stage>``: enough to see the stage
    folders without listing their thousands of files). None when all are writable."""
    path = Path(root)
    if not path.is_dir():
        parent = path.parent
        while not parent.is_dir() and parent != parent.parent:
            parent = parent.parent
        return None if _writable(parent) else parent
    level = [path]
    for step in range(depth + 1):
        for folder in level:
            if not _writable(folder):
                return folder
        if step == depth:
            break
        level = [
            Path(entry.path)
            for folder in level
            for entry in sorted(os.scandir(folder), key=lambda e: e.name)
            if entry.is_dir(follow_symlinks=False) and not entry.name.startswith(".")
        ]
    return None


def unwritable_message(root: str | os.PathLike, depth: int = 3) -> str | None:
    """One line naming the first unwritable folder under ``root``, or None."""
    folder = first_unwritable_folder(root, depth)
    if folder is None:
        return None
    return f"cannot write in {folder}: make it writable (chmod u+w) or remove it, then rerun"


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)
