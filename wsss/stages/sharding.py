"""Sharded, resumable per-image stages: id slices, side folders, a worker pool, shard merging."""

from __future__ import annotations

import contextlib
import glob
import logging
import multiprocessing
import os
import re
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import torch

from wsss.hashing import config_fingerprint, file_digest
from wsss.io import read_json, write_json
from wsss.stages.common import MANIFEST, atomic_dir, content_digest, write_manifest

__all__ = [
    "parse_shard",
    "shard_ids",
    "input_stamp",
    "resumable_dir",
    "map_images",
    "write_images",
    "merge_shards",
]

log = logging.getLogger(__name__)

_ITEM = re.compile(r"([0-9]+)-of-([0-9]+)")


def parse_shard(item: str | None) -> tuple[int, int]:
    """Snakemake's scatter item ``"k-of-n"`` → ``(k, n)``; ``None`` (an unsharded job) →
    ``(1, 1)``.

    Raises:
        ValueError: ``item`` is not ``k-of-n`` with 1 ≤ k ≤ n.
    """
    if item is None:
        return 1, 1
    match = _ITEM.fullmatch(item)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise ValueError(f"shard {item!r} is not 'k-of-n' with 1 <= k <= n")
    return int(match.group(1)), int(match.group(2))


def shard_ids(ids: Sequence[str], k: int, n: int) -> list[str]:
    """Shard ``k`` (1-based) of ``n``: a contiguous slice of ``sorted(ids)``; shard sizes
    differ by at most one (the first ``len(ids) % n`` shards hold one id more).

    Raises:
        ValueError: ``n`` < 1 or ``k`` outside 1..n.
    """
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"shard {k} of {n}: need n >= 1 and 1 <= k <= n")
    ordered = sorted(ids)
    size, extra = divmod(len(ordered), n)
    start = (k - 1) * size + min(k - 1, extra)
    return ordered[start : start + size + (k <= extra)]


def input_stamp(path: str | os.PathLike) -> list:
    """What identifies one input of a stage: a file's sha256; for a stage folder, its manifest's
    sha256 and modification time (a rewritten folder gets a new stamp even when its settings,
    and so its manifest, are unchanged)."""
    path = Path(path)
    if path.is_dir():
        manifest = path / MANIFEST
        if not manifest.is_file():  # a folder no stage wrote (ground truth): no stamp of its own
            return [None, None]
        return [file_digest(manifest), manifest.stat().st_mtime_ns]
    return [file_digest(path)]


@contextlib.contextmanager
def resumable_dir(out_dir: str | os.PathLike, fingerprint: str) -> Iterator[Path]:
    """Yield the side folder ``.<name>.partial-<fingerprint>`` beside ``out_dir``, which
    replaces ``out_dir`` when the block succeeds and is kept when it fails.

    Files in it survive an interrupted job (Snakemake deletes only declared outputs), so a
    rerun with the same fingerprint resumes. On entry, the side folders of other fingerprints
    (another configuration or input) and hidden temporaries of the atomic writers (files an
    interrupted write left) are removed: every remaining file is complete and current.
    """
    out = Path(out_dir)
    side = out.with_name(f".{out.name}.partial-{fingerprint}")
    for stale in glob.glob(glob.escape(str(out.with_name(f".{out.name}.partial-"))) + "*"):
        if Path(stale) != side:
            shutil.rmtree(stale, ignore_errors=True)
    side.mkdir(parents=True, exist_ok=True)
    for temporary in side.glob(".*"):
        temporary.unlink()
    yield side
    shutil.rmtree(out, ignore_errors=True)
    os.replace(side, out)


_STARTED = None  # in a pool worker: the queue that announces each image it starts


def _single_threaded_worker(started) -> None:
    global _STARTED
    _STARTED = started
    os.environ["OMP_NUM_THREADS"] = "1"  # in the worker only: one core per process
    torch.set_num_threads(1)


class _Announced:
    """``work(image_id)`` that tells the parent when it starts and ends each image, so the parent
    can name the image a worker died on without a word (SIGKILL, out-of-memory killer)."""

    def __init__(self, work: Callable[[str], None]) -> None:
        self.work = work

    def __call__(self, image_id: str) -> None:
        _STARTED.put((True, image_id))
        self.work(image_id)
        _STARTED.put((False, image_id))


def map_images(work: Callable[[str], None], ids: Sequence[str], processes: int = 1) -> None:
    """``work(image_id)`` for every id; with ``processes`` > 1 in a pool of forked workers,
    each with one torch/OpenMP thread (``work`` must then be picklable: a module-level
    function or a partial of one). Each image is computed alone, so the pool changes no
    result.

    Raises:
        ChildProcessError: a worker died (killed from outside, e.g. by the out-of-memory killer);
            names the image(s) it was computing. Unlike ``multiprocessing.Pool``, which waits
            forever for a dead worker's result.
    """
    if processes <= 1 or len(ids) <= 1:
        for n, image_id in enumerate(ids, start=1):
            work(image_id)
            _progress(n, len(ids))
        return
    context = multiprocessing.get_context("fork")
    started = context.SimpleQueue()  # written synchronously: no feeder thread to lose at a kill
    done: set[str] = set()
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_single_threaded_worker, initargs=(started,)
    ) as pool:
        futures = {pool.submit(_Announced(work), image_id): image_id for image_id in ids}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in finished:
                    try:
                        future.result()
                    except BrokenProcessPool:
                        raise ChildProcessError(_died_message(started)) from None
                    done.add(futures[future])
                    _progress(len(done), len(ids))
        except BaseException:
            pool.shutdown(cancel_futures=True)  # an error stops the work, as Pool's exit did
            raise


def _died_message(started) -> str:
    running: dict[str, None] = {}  # the images begun and not finished, in order
    while not started.empty():
        begins, image_id = started.get()
        if begins:
            running[image_id] = None
        else:
            running.pop(image_id, None)
    # Every image in flight is named: the pool does not say which of its workers died.
    images = ", ".join(running) or "(unknown)"
    which = f"image {images}" if len(running) <= 1 else f"one of the images {images}"
    return (
        f"a worker process died while computing {which}: it "
        "was killed from outside, most often by the out-of-memory killer; check the image's size "
        "against datasets.<name>.max_image_pixels or run fewer processes"
    )


def _progress(done: int, total: int) -> None:
    if done % 100 == 0 or done == total:
        log.info("%d/%d images", done, total)


class _Bound:
    """``work(image_id, folder)`` with ``folder`` fixed (picklable, unlike a lambda)."""

    def __init__(self, work: Callable[[str, Path], None], folder: Path) -> None:
        self.work, self.folder = work, folder

    def __call__(self, image_id: str) -> None:
        self.work(image_id, self.folder)


def write_images(
    out_dir: str | os.PathLike,
    ids: Sequence[str],
    work: Callable[[str, Path], None] | Callable[[list[str], Path], None],
    *,
    suffix: str,
    manifest: Mapping,
    inputs: Sequence[str | os.PathLike] = (),
    shard: tuple[int, int] = (1, 1),
    processes: int = 1,
    batches: Callable[[list[str]], list[list[str]]] | None = None,
) -> None:
    """The per-image loop of a (sharded) stage, resumable: ``work(image_id, folder)`` writes
    ``folder/<image_id><suffix>`` atomically for each id of ``shard`` (:func:`shard_ids`)
    that is not there yet; then ``manifest`` is written and the folder becomes ``out_dir``.

    With ``batches`` (ids → lists of ids, e.g. images of one size), ``work(ids, folder)``
    gets one list at a time instead (one batched pass; in this process).

    ``manifest`` describes the whole stage (``count`` = every id), so the shards' manifests
    are equal and :func:`merge_shards` keeps one. The side folder (:func:`resumable_dir`) is
    named by a hash of ``manifest``, the shard's ids and the stamps of ``inputs``
    (:func:`input_stamp`): a rerun reuses only images of the same settings and inputs.
    """
    mine = shard_ids(ids, *shard)
    stamps = [input_stamp(p) for p in inputs]
    fingerprint = config_fingerprint(dict(manifest), list(shard), mine, stamps)
    with resumable_dir(out_dir, fingerprint) as folder:
        todo = [i for i in mine if not (folder / f"{i}{suffix}").is_file()]
        log.info(
            "shard %d of %d: %d images, %d already done, computing %d",
            *shard,
            len(mine),
            len(mine) - len(todo),
            len(todo),
        )
        if batches is None:
            map_images(_Bound(work, folder), todo, processes)
        else:
            done = 0
            for batch in batches(todo):
                work(batch, folder)
                before, done = done, done + len(batch)
                if done // 100 > before // 100 or done == len(todo):
                    log.info("%d/%d images", done, len(todo))
        write_manifest(folder, **manifest)


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or no hard links there
        shutil.copy2(source, target)


def merge_shards(shard_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike) -> None:
    """Merge shard folders into ``out_dir`` (hard links where possible, else copies): their
    files and one copy of their (equal) manifests; hidden files (Snakemake's directory
    timestamps) are left out.

    Raises:
        ValueError: naming the shard when manifests differ, a file name is in two shards, or
            the files do not add up to the manifest's ``count``.
    """
    dirs = [Path(d) for d in shard_dirs]
    if not dirs:
        raise ValueError(f"no shard folders to merge into {out_dir}")
    manifest = _settings(dirs[0])
    owner: dict[str, Path] = {}
    for folder in dirs:
        if _settings(folder) != manifest:
            raise ValueError(
                f"{folder / MANIFEST} differs from {dirs[0] / MANIFEST}: the shards were made "
                "with different settings; rerun them"
            )
        for name in sorted(os.listdir(folder)):
            if name == MANIFEST or name.startswith("."):  # Snakemake's .snakemake_timestamp
                continue
            if name in owner:
                raise ValueError(f"{name} is in two shards: {owner[name]} and {folder}")
            owner[name] = folder
    count = _manifest_count(dirs[0] / MANIFEST)
    if count is not None and count != len(owner):
        raise ValueError(
            f"the shards {dirs[0].parent} hold {len(owner)} files, their manifest says {count}"
        )
    with atomic_dir(out_dir) as tmp:
        for name, folder in owner.items():
            _link_or_copy(folder / name, tmp / name)
        # the shards' settings, with the digest of the merged files (as an unsharded run has)
        write_json(tmp / MANIFEST, {**manifest, "content_digest": content_digest(tmp)})
    log.info("merged %d shards (%d files) into %s", len(dirs), len(owner), out_dir)


def _settings(folder: Path) -> dict:
    """A shard's manifest without its own files' digest: equal across the shards of one run."""
    fields = read_json(folder / MANIFEST)
    fields.pop("content_digest", None)
    return fields


def _manifest_count(path: Path) -> int | None:
    return read_json(path).get("count")
