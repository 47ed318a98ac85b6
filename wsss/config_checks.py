"""DAG-time checks of the workflow configuration: YAML syntax and unknown keys with file and line,
and the classes of values a JSON schema lets through (non-finite numbers, reversed ranges, crops
no machine can hold, overlay sections that merge to nothing). Each raises ``ValueError`` with one
line naming the key."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = [
    "MAX_CROP_SIZE",
    "check_config_values",
    "check_empty_overlay_sections",
    "check_schema",
    "key_line",
    "load_config_file",
    "main",
]

# The crops pad images smaller than the crop (wsss.data.transforms.random_crop), so a crop larger
# than the images is valid; but every crop is a dense crop_size² array per image (×3 channels,
# then float32 activations): 4096² is already 200 MB per image before the network, 100000² is
# 30 GB and fails with a MemoryError traceback. The largest crop in use is 769 (CCNet).
MAX_CROP_SIZE = 4096


def _dotted(path: Sequence) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def load_config_file(path: str | Path) -> Any:
    """The parsed YAML of a config file; a syntax error becomes one line ``<file>:<line>:
    <problem>`` (Snakemake's own message names neither file nor line)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        context, start = getattr(error, "context", None), getattr(error, "context_mark", None)
        if context and start is not None and (mark is None or start.line != mark.line):
            context = f"{context} started on line {start.line + 1}"  # e.g. an unclosed [
        detail = f"{context}, {problem}" if context else problem
        raise ValueError(f"{where}: not valid YAML ({detail})") from None


def key_line(path: str | Path, keys: Sequence) -> int | None:
    """The 1-based line of the mapping key at ``keys`` (a path of mapping keys) in a YAML file,
    or None when the file does not hold that path."""
    node = yaml.compose(Path(path).read_text(encoding="utf-8"))
    line = None
    for key in keys:
        if not isinstance(node, yaml.MappingNode):
            return None
        for key_node, value_node in node.value:
            if key_node.value == str(key):
                line, node = key_node.start_mark.line + 1, value_node
                break
        else:
            return None
    return line


def _locate(files: Sequence[str | Path], keys: Sequence) -> str:
    """``<file>:<line>`` of the last file (the one that wins the merge) that sets ``keys``."""
    for path in reversed(files):
        try:
            line = key_line(path, keys)
        except (OSError, yaml.YAMLError):
            continue
        if line is not None:
            return f"{path}:{line}"
    return ", ".join(str(f) for f in files)


def check_schema(config: Mapping, schema: Mapping, files: Sequence[str | Path]) -> None:
    """Raise one line for the first schema violation: the file and line that set the offending
    key (the last of ``files``, config.yaml then the overlays, that holds it), its dotted path,
    what is wrong and, for an unknown key, the allowed ones."""
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = next(iter(sorted(validator.iter_errors(config), key=lambda e: list(e.path))), None)
    if error is None:
        return
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        keys = [*path, unknown[0]]
        raise ValueError(
            f"{_locate(files, keys)}: unknown key {_dotted(keys)} "
            f"(allowed in {_dotted(path)}: {', '.join(allowed)})"
        )
    message = error.message.splitlines()[0]
    raise ValueError(f"{_locate(files, path)}: {_dotted(path)}: {message}")


def _walk(node: Any, path: tuple = ()) -> Iterator[tuple[tuple, Any]]:
    """Every (path, value) of a nested config, mappings and lists included."""
    yield path, node
    if isinstance(node, Mapping):
        for key, value in node.items():
            yield from _walk(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, (*path, index))


def check_config_values(config: Mapping) -> None:
    """Raise one line naming the key unless every number is finite (YAML's ``.nan`` and ``.inf``
    pass every ``minimum``), every range is ordered (``*_range: [low, high]`` with low ≤ high;
    a ``{start, stop}`` mapping with start ≤ stop) and every ``crop_size`` is at most
    :data:`MAX_CROP_SIZE`."""
    for path, value in _walk(config):
        key = _dotted(path)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{key}: {value} is not a finite number")
        name = path[-1] if path else None
        if isinstance(name, str) and name.endswith("_range") and isinstance(value, list):
            if len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
                if value[0] > value[1]:
                    raise ValueError(f"{key}: {value} is reversed (write [low, high])")
        if isinstance(value, Mapping) and {"start", "stop"} <= set(value):
            if value["start"] > value["stop"]:
                raise ValueError(
                    f"{key}: start {value['start']} is above stop {value['stop']} "
                    "(the range runs upwards from start to stop)"
                )
        if name == "crop_size" and isinstance(value, int) and value > MAX_CROP_SIZE:
            raise ValueError(
                f"{key}: {value} exceeds {MAX_CROP_SIZE} (every crop is a dense "
                f"{value}² array per image; crops pad smaller images, so a crop need not "
                "exceed the largest image)"
            )


def check_empty_overlay_sections(config: Mapping, overlays: Sequence[str | Path]) -> None:
    """Raise one line naming the file and key where an overlay sets an empty mapping (``{}``)
    over a non-empty section: overlays merge key by key, so ``{}`` changes nothing although it
    reads as "none" (e.g. ``experiments: {}``)."""
    for overlay in overlays:
        data = load_config_file(overlay)
        for path, value in _walk(data):
            if value != {} or not path:
                continue
            merged: Any = config
            for part in path:
                merged = merged.get(part) if isinstance(merged, Mapping) else None
            if merged:
                hint = (
                    "to run fewer experiments list them in datasets.<name>.experiments"
                    if path == ("experiments",)
                    else "set the keys to change, or remove it"
                )
                raise ValueError(
                    f"{overlay}:{key_line(overlay, path)}: {_dotted(path)}: {{}} changes nothing "
                    f"(an overlay merges key by key and cannot empty a section); {hint}"
                )


def main(argv: Sequence[str]) -> int:
    """``python -m wsss.config_checks FILE...``: the YAML syntax check of each file, for the
    overlays that Snakemake parses itself before the workflow's own checks can run."""
    status = 0
    for path in argv:
        try:
            load_config_file(path)
        except (OSError, ValueError) as error:
            print(error)
            status = 1
    return status


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
