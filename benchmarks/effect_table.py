"""Each experiment's change over the baseline at the CAM, pseudo-mask and final stage, from a
``results/<dataset>/miou.csv`` (issue 17's effect table), and the baseline's ratios to the oracle
that its calibration aims at (VOC: CAM ≈ 0.62, final ≈ 0.82 of full supervision).

    python benchmarks/effect_table.py results/synth_voc/miou.csv

Reads one seed (default: the first in the file); prints Markdown. CAM rows use the fixed
threshold, pseudo masks their one row, the final stage the seg model on ``val``.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def stage_scores(rows: list[dict], seed: str) -> dict[str, dict[str, float]]:
    """``{experiment: {"cam": miou, "pseudo": miou, "seg": miou}}`` (stages it has) of one seed."""
    scores: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["seed"] != seed:
            continue
        stage = row["stage"]
        if stage == "cam" and row["threshold"] != "fixed":
            continue
        if stage == "seg" and row["split"] != "val":
            continue
        scores.setdefault(row["experiment"], {}).setdefault(stage, float(row["miou"]))
    return scores


def effect_lines(scores: dict[str, dict[str, float]], baseline: str = "baseline") -> list[str]:
    """Markdown rows: score and change over ``baseline`` at each stage ("–": no such stage)."""
    base = scores[baseline]
    lines = [
        "| experiment | CAM | Δ CAM | pseudo masks | Δ pseudo | final | Δ final |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, stages in scores.items():
        cells = [name]
        for stage in ("cam", "pseudo", "seg"):
            if stage in stages:
                delta = stages[stage] - base[stage] if stage in base else None
                cells.append(f"{stages[stage]:.3f}")
                cells.append("" if name == baseline or delta is None else f"{delta:+.3f}")
            else:
                cells += ["–", ""]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def oracle_ratios(scores: dict[str, dict[str, float]], oracle: str = "oracle") -> str:
    """The baseline's CAM, pseudo-mask and final mIoU over the oracle's (full supervision)."""
    full = scores[oracle]["seg"]
    base = scores["baseline"]
    parts = [f"{stage} {base[stage] / full:.2f}" for stage in ("cam", "pseudo", "seg")]
    return f"oracle {full:.3f}; baseline / oracle: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("miou_csv", type=Path)
    parser.add_argument("--seed", default=None, help="the seed column to read (default: first)")
    args = parser.parse_args()
    with args.miou_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise SystemExit(f"{args.miou_csv}: no rows")
    seed = args.seed or rows[0]["seed"]
    scores = stage_scores(rows, seed)
    print("\n".join(effect_lines(scores)))
    print()
    print(oracle_ratios(scores))


if __name__ == "__main__":
    main()
