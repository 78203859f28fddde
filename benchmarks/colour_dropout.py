"""Skilled-forgery EER of queries under a red seal, read as gray (luminance) or with the red dropped out.

    python benchmarks/colour_dropout.py [--manifest M.csv] [--seeds 4 5 6] [--json OUT]

The evaluate protocol on the validation writers (``models.evaluate verification``: K references per
writer, every other image a query, the shipped SigNet and its calibration): each query gets a seal in
stamp-pad red over it (``transforms.noise.add_colour_stamp``, seeded by ``default_rng([seed, i])``), as
a colour scan holds it, and is turned to gray as the pipeline renders pages: by luminance (the default)
or by ``transforms.dropout.drop_red`` (``--colour_dropout red``); each then uncleaned and cleaned with
the shipped cleaner. The references stay the enrolled files. The files themselves are scored as well.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.data import load_gray, read_manifest, shared_data_dir  # noqa: E402
from models.embed import embed_images  # noqa: E402
from models.evaluate import pool_scores, protocol_roles, query_row_scores, select_samples, summarize  # noqa: E402
from models.evaluate_cleaning import query_images  # noqa: E402
from models.verification import Calibration, reference_score  # noqa: E402
from models.weights import load_embedder  # noqa: E402
from transforms.dropout import drop_red, luminance  # noqa: E402
from transforms.noise import add_colour_stamp  # noqa: E402

log = logging.getLogger("colour_dropout")
READINGS = {"luminance": luminance, "red_dropout": drop_red}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", type=Path, default=shared_data_dir() / "signatures" / "manifest.csv")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[4, 5, 6])
    p.add_argument("--references-per-writer", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--ci-resamples", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if a.references_per_writer < 1 or not a.seeds:
        p.error(f"--references-per-writer must be >= 1 and --seeds non-empty, got {a.references_per_writer} "
                f"and {a.seeds}")
    if not a.manifest.is_file():
        raise SystemExit(f"no manifest at {a.manifest}: this benchmark reads the shared signature data")
    model, card = load_embedder(a.weights, "cpu")
    rule, k = reference_score(card), a.references_per_writer
    rows = select_samples(read_manifest(a.manifest), card, "validation", None, None)
    images = [load_gray(s.path) for s in rows]
    emb = embed_images(model, images, a.batch_size, "cpu")
    roles = protocol_roles(rows, k)
    calibration = Calibration.from_card(card)
    out: dict = {"model_version": card.get("model_version"), "manifest": str(a.manifest), "split": "validation",
                 "references_per_writer": k, "seeds": a.seeds, "queries": len(roles.queries)}
    for clean in (False, True):
        made = query_images(images, clean, None, None, "cpu", indices=roles.queries)
        scores = query_row_scores(rows, emb, roles, k, embed_images(model, made, a.batch_size, "cpu"), rule)
        out[f"files{'_cleaned' if clean else ''}"] = summarize(scores, calibration, a.ci_resamples)
    stamped = {seed: [add_colour_stamp(images[i], np.random.default_rng([seed, i])) for i in roles.queries]
               for seed in a.seeds}
    for name, reading in READINGS.items():
        for clean in (False, True):
            parts = []
            for seed in a.seeds:
                made = query_images([reading(x) for x in stamped[seed]], clean, None, None, "cpu")
                parts.append(query_row_scores(rows, emb, roles, k, embed_images(model, made, a.batch_size, "cpu"),
                                              rule))
            key = f"red_seal_{name}{'_cleaned' if clean else ''}"
            out[key] = summarize(pool_scores(parts), calibration, a.ci_resamples)
            log.info("%s: skilled EER %.4f", key, out[key]["eer"])
    text = json.dumps(out, indent=1)
    print(text)
    if a.json is not None:
        a.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
