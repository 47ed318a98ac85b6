"""What each number of ``miou.csv`` measures, in words, and the table as a small HTML page.

WSSS papers mix CAM seeds, pseudo masks and final predictions, train and val splits, fixed and
ground-truth-swept thresholds (peers.md §2, complaint 2); every row here says which it is.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping

import pandas as pd

from wsss.cam.methods import CAM_METHODS

__all__ = ["describe_row", "metrics_html"]

_CSS = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; margin-bottom: 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
td.text, th.text { text-align: left; }
tr.summary td { background: #f3f3f3; font-style: italic; }
"""


def _number(value: object) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def _seed_text(seed: object) -> str:
    if str(seed) == "mean":
        return "mean over the seeds"
    if str(seed) == "std":
        return "sample standard deviation over the seeds"
    return f"seed {seed}"


def describe_row(
    row: Mapping, experiments: Mapping[str, Mapping], splits: Mapping[str, str]
) -> str:
    """One sentence on what a ``miou.csv`` row measures.

    Args:
        row: the row (``experiment, stage, split, threshold, bg_threshold``, ``seed`` if any).
        experiments: experiment name → its config entry (``supervision``, ``refine``,
            ``cam_method``, ``seg_model``, ``masks_from``, ``cams_from``) plus ``crf``, the
            CRF preset its pseudo masks use (None without CRF).
        splits: split → its ground-truth folder.
    """
    spec = experiments.get(str(row["experiment"]), {})
    split = str(row["split"])
    on = f"on the {split!r} split (ground truth {splits.get(split, '?')})"
    bg = _number(row.get("bg_threshold"))
    stage, threshold = str(row["stage"]), str(row["threshold"])
    if stage == "cam":
        name = spec.get("cam_method", "cam")
        method = CAM_METHODS[name].label if name in CAM_METHODS else name
        if spec.get("augment") == "cda":
            method += " trained with CDA"
        what = f"CAM seeds of the {method} classifier {on}"
        if threshold == "oracle":
            how = (
                f"background threshold swept on this ground truth, best {bg:.2f} "
                "(oracle: an upper bound, not a protocol)"
            )
        else:
            how = f"background threshold fixed in the config at {bg:.2f}"
    elif stage == "pseudo":
        refine = spec.get("refine", "?")
        source = f" of {spec['cams_from']}'s CAMs" if spec.get("cams_from") else ""
        method = {
            "crf": f"thresholded CAMs + dense CRF ({spec.get('crf')})",
            "affinitynet": "AffinityNet random walk (PSA)",
            "irn": "IRNet random walk",
        }.get(refine, refine)
        what = f"pseudo masks ({method}{source}) {on}, unlabelled pixels counted as background"
        how = "no threshold" if bg is None else f"background threshold fixed at {bg:.2f}"
    else:
        if spec.get("supervision") == "full":
            trained = "ground-truth masks (full supervision: an upper bound)"
        else:
            trained = f"the pseudo masks of {spec.get('masks_from') or row['experiment']}"
        what = f"final {spec.get('seg_model', '?')} segmentation trained on {trained}, {on}"
        how = "no CRF, no threshold"
    seed = f"; {_seed_text(row['seed'])}" if "seed" in row else ""
    return f"{what}; {how}{seed}"


def metrics_html(
    table: pd.DataFrame,
    *,
    dataset: str,
    classes: list[str],
    experiments: Mapping[str, Mapping],
    splits: Mapping[str, str],
) -> str:
    """A self-contained HTML page of ``miou.csv``: one row per number with its meaning
    (:func:`describe_row`), mIoU and pixel accuracy in %, then the per-class IoU table."""
    rows, per_class = [], []
    ident = [c for c in ("experiment", "seed", "stage", "split", "threshold") if c in table]
    for _, row in table.iterrows():
        summary = str(row.get("seed")) in ("mean", "std")
        cls = ' class="summary"' if summary else ""
        names = "".join(f'<td class="text">{html.escape(str(row[c]))}</td>' for c in ident)
        values = [_number(row["bg_threshold"]), row["miou"] * 100, row["pixel_acc"] * 100]
        numbers = "".join(f"<td>{'' if v is None else f'{v:.2f}'}</td>" for v in values)
        meaning = html.escape(describe_row(row, experiments, splits))
        rows.append(f'<tr{cls}>{names}{numbers}<td class="text">{meaning}</td></tr>')
        ious = "".join(f"<td>{row[f'iou_{c}'] * 100:.1f}</td>" for c in classes)
        per_class.append(f"<tr{cls}>{names}{ious}</tr>")
    head = "".join(f'<th class="text">{c}</th>' for c in ident)
    main_head = head + "<th>bg threshold</th><th>mIoU %</th><th>pixel acc %</th>"
    main_head += '<th class="text">what this number is</th>'
    class_head = head + "".join(f"<th>{html.escape(c)}</th>" for c in classes)
    return (
        f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{dataset}: miou.csv</title>"
        f"<style>{_CSS}</style></head><body>\n"
        f"<h2>results/{html.escape(dataset)}/miou.csv</h2>\n"
        "<p>Stages: <b>cam</b> = CAM seeds, <b>pseudo</b> = pseudo masks (both on a training "
        "split), <b>seg</b> = the retrained segmentation network (held-out split). Threshold "
        "<b>fixed</b> = set in the config; <b>oracle</b> = swept on the evaluation ground "
        "truth, an upper bound; <b>none</b> = not thresholded. Rows in grey summarise "
        "seeds.</p>\n"
        f"<table id='metrics'><tr>{main_head}</tr>\n" + "\n".join(rows) + "\n</table>\n"
        f"<h3>Per-class IoU (%)</h3>\n<table id='per-class'><tr>{class_head}</tr>\n"
        + "\n".join(per_class)
        + "\n</table>\n</body></html>\n"
    )
