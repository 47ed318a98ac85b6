"""Stage record_provenance: the ``manifest.json`` of one experiment directory.

It merges what the workflow knows (the resolved parameters of every stage that led to the
run's numbers, its seed) with what only the machine knows (git state, package versions,
devices, checksums of the dataset's split lists, when each stage ran).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from wsss.data.voc import split_path
from wsss.hashing import config_hash, file_digest, lines_digest
from wsss.io import read_json, write_json
from wsss.provenance import git_state, host_device, iso_time, package_versions, without_keys
from wsss.stages.common import DatasetIndex

__all__ = ["MANIFEST_FORMAT", "HASH_EXCLUDED", "job_span", "run_record_provenance"]

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "wsss-experiment-manifest/1"
# params left out of config hashes: where the dataset lies on this machine is no setting (the
# split checksums identify the data instead)
HASH_EXCLUDED = ("root",)

_LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")
_LOG_DEVICE = re.compile(r" INFO: using device (.+)$")


def job_span(log_path: str | os.PathLike, outputs: Sequence[str | os.PathLike] = ()) -> dict:
    """When a rule's job ran and on which device, read from its log (``setup_logging``'s
    format) and outputs: ``started`` = the log's first record ("job started"), ``finished`` =
    the last modification of the log or an output, ``device`` = the last "using device"
    record (None when the job picked none). Times are None when the log is missing."""
    path = Path(log_path)
    if not path.is_file():
        return {"started": None, "finished": None, "device": None}
    lines = path.read_text(errors="replace").splitlines()
    started = next((m.group(1) for line in lines if (m := _LOG_TIME.match(line))), None)
    devices = [m.group(1).strip() for line in lines if (m := _LOG_DEVICE.search(line))]
    mtimes = [Path(p).stat().st_mtime for p in (path, *outputs) if Path(p).exists()]
    return {
        "started": None
        if started is None
        else iso_time(datetime.strptime(started, "%Y-%m-%d %H:%M:%S,%f").astimezone()),
        "finished": iso_time(max(mtimes)),
        "device": devices[-1] if devices else None,
    }


def _stage_record(spec: Mapping) -> dict:
    """One stage's entry: its params and their hash, log, timing and the manifests its
    directory outputs hold (written by the stage itself, :func:`write_manifest`)."""
    params = dict(spec["params"])
    record = {
        "rule": spec["rule"],
        "params": params,
        "config_hash": config_hash(without_keys(params, HASH_EXCLUDED)),
        "log": spec.get("log"),
        **(job_span(spec["log"], spec.get("outputs", ())) if spec.get("log") else {}),
    }
    artifacts = {}
    for output in spec.get("outputs", []):
        manifest = Path(output) / "manifest.json"
        if manifest.is_file():
            artifacts[str(output)] = read_json(manifest)
    if artifacts:
        record["artifacts"] = artifacts
    return record


def _data_record(index_path: str | os.PathLike, root: str | os.PathLike | None) -> dict:
    """Checksums that identify the data: the index, each split's id list and (VOC layout)
    its ``ImageSets`` file."""
    index = DatasetIndex(index_path)
    splits = {}
    for name, ids in index.splits.items():
        entry = {"count": len(ids), "ids_sha256": lines_digest(ids)}
        if index.layout == "voc" and root is not None:
            split_file = split_path(root, name)
            if split_file.is_file():
                entry.update(file=str(split_file), file_sha256=file_digest(split_file))
        splits[name] = entry
    return {
        "root": None if root is None else str(root),
        "layout": index.layout,
        "index": {"path": str(index_path), "sha256": file_digest(index_path)},
        "splits": splits,
    }


def run_record_provenance(
    out_path: str | os.PathLike,
    index_path: str | os.PathLike,
    *,
    dataset: str,
    experiment: str,
    run: str,
    seed: int,
    stages: Mapping[str, Mapping],
    dataset_stages: Mapping[str, Mapping],
    repo: str | os.PathLike,
    device: str,
    root: str | os.PathLike | None,
    labels_file: str | None = None,
) -> dict:
    """Write (atomically) and return the manifest of the experiment directory of ``run``.

    Args:
        experiment, run, seed: the experiment's name, its run (directory) name and the seed
            the run trains with.
        stages: ``"<run>/<rule>"`` → ``{"rule", "params", "log", "outputs"}`` for every job
            behind the run's numbers, in pipeline order (the stages of the runs it takes CAMs,
            masks, a teacher or instances from included).
        dataset_stages: the same for the dataset's jobs (generation or conversion, check).
        repo: the workflow's source folder (for the git commit and dirty flag).
        device: the configured device (``auto``, ``cpu``, ``cuda:N``).
        labels_file: the image-level labels file under ``root`` (VOC layout), if any.

    The manifest's ``config_hash`` is the sha256 of the resolved params of every stage
    (without the dataset ``root``): equal hashes mean equal settings.
    """
    stage_records = {key: _stage_record(spec) for key, spec in stages.items()}
    dataset_records = {key: _stage_record(spec) for key, spec in dataset_stages.items()}
    all_records = [*dataset_records.values(), *stage_records.values()]
    starts = [r["started"] for r in all_records if r.get("started")]
    ends = [r["finished"] for r in all_records if r.get("finished")]
    data = _data_record(index_path, root)
    if labels_file and root is not None:
        path = Path(root) / labels_file
        data["labels_file"] = {"path": str(path), "sha256": file_digest(path)}
    hashed = {
        "dataset_stages": {
            k: without_keys(r["params"], HASH_EXCLUDED) for k, r in dataset_records.items()
        },
        "stages": {k: without_keys(r["params"], HASH_EXCLUDED) for k, r in stage_records.items()},
    }
    manifest = {
        "format": MANIFEST_FORMAT,
        "dataset": dataset,
        "experiment": experiment,
        "run": run,
        "seed": seed,
        "config_hash": config_hash(hashed),
        "git": git_state(repo),
        "packages": package_versions(),
        "device": {
            "requested": device,
            "used": sorted({r["device"] for r in all_records if r.get("device")}),
            "host": host_device(),
        },
        "data": data,
        "started": min(starts) if starts else None,
        "finished": max(ends) if ends else None,
        "written": iso_time(time.time()),
        "dataset_stages": dataset_records,
        "stages": stage_records,
        "stage_order": list(stage_records),  # pipeline order (the JSON keys are sorted)
    }
    write_json(out_path, manifest)
    log.info("manifest of %s/%s: config hash %s", dataset, run, manifest["config_hash"][:12])
    return manifest
