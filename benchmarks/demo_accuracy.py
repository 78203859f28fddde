"""How the pipeline's decisions on the demo corpus compare with the corpus's truth file.

    python run_pipeline.py && python benchmarks/demo_accuracy.py [--output out] [--run-date YYYY-MM-DD]

The demo corpus (``transforms.demo_corpus``) writes ``<output>/demo_corpus/truth.csv``: every placed
signature's page, box (0..1 page coordinates), expected signer and kind (``genuine`` or ``forged``). Each
placed signature is matched to the run's region of largest IoU on its page (at least ``--min-iou``); that
region's ``matches`` row for the placed signer gives its decision and distance. Prints one JSON object:
per kind, how many were found and the decisions they got, and the skilled-forgery EER over the found
genuine signatures and forgeries (``models.metrics.eer`` on the distances). The demo's signatures are
synthetic: read the figures as a check of the reports, not as a measure of accuracy (README, Quick start).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from models import metrics
from pipeline.summary import read_table
from transforms.boxes import Box, iou


def placed_signatures(truth_csv: Path) -> list[dict[str, Any]]:
    """Rows of the demo's truth file: document, page, box, signer_id, kind."""
    with truth_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{"document": r["document"], "page": int(r["page"]), "signer_id": r["signer_id"], "kind": r["kind"],
             "box": Box(float(r["x0"]), float(r["y0"]), float(r["x1"]), float(r["y1"]))} for r in rows]


def demo_accuracy(placed: Sequence[dict[str, Any]], regions: Sequence[dict[str, Any]],
                  matches: Sequence[dict[str, Any]], min_iou: float = 0.3) -> dict[str, Any]:
    """Decisions and EER of the placed signatures. ``regions``: ``signatures`` rows; ``matches``: ``matches`` rows
    (both as dicts, one run); a region's document is named by its source file's name."""
    names = {r["document_id"]: Path(r["source_path"]).name for r in regions}
    by_page: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in regions:
        by_page.setdefault((names[r["document_id"]], r["page"]), []).append(r)
    decision = {(names.get(m["document_id"]), m["page"], m["region"], m["signer_id"]): m for m in matches}
    out: dict[str, Any] = {"min_iou": min_iou}
    distances: dict[str, list[float]] = {"genuine": [], "forged": []}
    for kind in ("genuine", "forged"):
        rows = [p for p in placed if p["kind"] == kind]
        found, decisions = 0, Counter()
        for p in rows:
            cands = [(iou(p["box"], Box(r["x0"], r["y0"], r["x1"], r["y1"])), r)
                     for r in by_page.get((p["document"], p["page"]), [])]
            best = max(cands, key=lambda c: c[0], default=(0.0, None))
            if best[0] < min_iou:
                decisions["not found"] += 1
                continue
            found += 1
            m = decision.get((p["document"], p["page"], best[1]["region"], p["signer_id"]))
            if m is None:
                decisions["no match row"] += 1
                continue
            decisions[m["decision"]] += 1
            distances[kind].append(float(m["distance"]))
        out[kind] = {"placed": len(rows), "found": found, "decisions": dict(sorted(decisions.items()))}
    g, f = np.asarray(distances["genuine"]), np.asarray(distances["forged"])
    out["eer"] = round(metrics.eer(g, f), 4) if g.size and f.size else None
    return out


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", default="out", help="the run's --output folder (run_pipeline.py's default: out)")
    p.add_argument("--run-date", default=date.today().isoformat(), help="the run's date partition (default: today)")
    p.add_argument("--min-iou", type=float, default=0.3)
    a = p.parse_args(argv)
    truth = Path(a.output) / "demo_corpus" / "truth.csv"
    if not truth.is_file():
        p.error(f"no demo truth file at {truth}: run `python run_pipeline.py` first (or pass its --output)")
    regions = read_table(a.output, "signatures", a.run_date).select(
        ["document_id", "source_path", "page", "region", "x0", "y0", "x1", "y1"]).to_pylist()
    matches = read_table(a.output, "matches", a.run_date).select(
        ["document_id", "page", "region", "signer_id", "distance", "decision"]).to_pylist()
    print(json.dumps(demo_accuracy(placed_signatures(truth), regions, matches, a.min_iou), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
