"""Provenance facts about a run: git state, package versions, host device, timestamps.

Pure helpers (no files written). :mod:`wsss.stages.provenance` assembles them (with the digests
of :mod:`wsss.hashing`) into the ``manifest.json`` of an experiment directory.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import wsss

__all__ = [
    "PACKAGES",
    "git_state",
    "host_device",
    "iso_time",
    "package_versions",
    "without_keys",
]

# distributions whose versions every manifest records (besides python and wsss itself)
PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "pandas",
    "pillow",
    "opencv-python-headless",
    "scikit-image",
    "pydensecrf2",
    "snakemake",
    "matplotlib",
)


def git_state(repo: str | os.PathLike) -> dict:
    """The commit checked out in ``repo`` and whether the work tree differs from it.

    Returns:
        ``{"commit": <40 hex>, "dirty": bool}``; when ``repo`` is no git work tree or git is
        missing, ``{"commit": None, "dirty": None, "error": <why>}`` instead of raising.
        "Dirty" counts modified tracked files and untracked files that are not ignored.
    """

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain").strip())
    except FileNotFoundError:
        return {"commit": None, "dirty": None, "error": "git is not installed"}
    except subprocess.CalledProcessError as exc:
        reason = " ".join(exc.stderr.split()) or f"git exited with {exc.returncode}"
        return {"commit": None, "dirty": None, "error": f"{repo}: {reason}"}
    return {"commit": commit, "dirty": dirty}


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """``{"python": ..., "wsss": ..., <distribution>: version or None if not installed}``."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "wsss": wsss.__version__,
    }
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def host_device() -> dict:
    """The machine the calling process runs on: OS, CPU architecture, torch's CUDA build and
    the names of the GPUs torch sees (empty without CUDA)."""
    import torch  # only here: the rest of the module is cheap to import

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "torch_cuda": torch.version.cuda,
        "cuda_available": torch.cuda.is_available(),
        "gpus": gpus,
    }


def without_keys(params: Mapping, keys: Sequence[str]) -> dict:
    """A copy of ``params`` without the top-level ``keys`` (e.g. the machine-specific dataset
    ``root``, which must not change the config hash of an otherwise identical run)."""
    return {k: v for k, v in params.items() if k not in keys}


def iso_time(timestamp: float | datetime) -> str:
    """A POSIX timestamp (or an aware datetime) as ISO 8601 UTC, e.g.
    ``2026-05-09T07:35:25.123+00:00`` (milliseconds always shown, so the strings sort in time
    order)."""
    if not isinstance(timestamp, datetime):
        timestamp = datetime.fromtimestamp(timestamp, tz=UTC)
    return timestamp.astimezone(UTC).isoformat(timespec="milliseconds")
