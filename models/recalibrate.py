"""Refit the decision thresholds and similarity map of shipped SigNet weights on their validation writers.

    python -m models.recalibrate [--weights models/weights/signet_default.safetensors] [--manifest M.csv]
        [--clean [--cleaner W]] [--confidence C] [--write]

The weights are not touched. The validation writers, references per writer and writer-level score come
from the card; the images are embedded exactly as ``models.evaluate verification`` and the pipeline
embed them, with today's preprocessing. ``--clean`` calibrates on what the pipeline compares by default:
queries cleaned by the cleaner (default: the shipped one), references enrolled as they are
(``models.evaluate verification --clean``); the figures of uncleaned queries under the new thresholds
go to the card's ``validation_uncleaned``. Without ``--write`` the new calibration and the card's old
one are printed side by side. With ``--write`` the card gets the new ``calibration`` and ``validation``,
keeps the old pair under ``previous_calibration``, and its ``model_version`` gains a ``-calYYYYMMDD``
suffix: the same weights now give other decisions, and the reports (and ``--skip_processed``) must
be able to tell them apart.

``--confidence C`` sets each threshold as strict as it must be to keep its promise (at most 1 % of skilled
forgeries at or under ``match``, at most 1 % of genuine queries beyond ``mismatch``) in a share C of 2000
bootstrap resamples of the validation signers (``models.metrics.confident_threshold``), instead of on the one
sample of signers that validation is: a threshold fitted on 27 signers with forgeries keeps its promise on
other signers like them only about half the time (SigNet card: ``confident_calibration_20261205``).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from models.data import read_manifest
from models.evaluate import select_samples, summarize
from models.export import VALIDATION_PROTOCOL, calibration_from_scores, calibration_rule, validation_scores
from models.verification import Calibration, reference_score

log = logging.getLogger(__name__)


def base_version(version: str) -> str:
    """``model_version`` without an earlier ``-calYYYYMMDD`` suffix."""
    head, sep, tail = version.rpartition("-cal")
    return head if sep and len(tail) == 8 and tail.isdigit() else version


def recalibrated_card(card: dict[str, Any], calibration: Calibration, figures: dict[str, Any], had_forgeries: bool,
                      command: str, today: dt.datetime, cleaned_by: str | None = None,
                      uncleaned: dict[str, Any] | None = None, confidence: float | None = None) -> dict[str, Any]:
    """A copy of ``card`` with the new calibration and validation figures, the old pair kept under
    ``previous_calibration`` (the oldest first) and the model_version suffixed ``-calYYYYMMDD``.
    ``cleaned_by``: the cleaner model_version the queries were cleaned with (None: uncleaned queries);
    ``uncleaned``: the figures of uncleaned queries under the new calibration (``validation_uncleaned``);
    ``confidence``: the signer-resampling confidence the thresholds were set at (None: the plain rule)."""
    out = {key: value for key, value in card.items() if key != "validation_uncleaned"}
    k = card["validation"]["references_per_writer"]
    previous = list(card.get("previous_calibration", []))
    previous.append({"model_version": card["model_version"], "calibration": card["calibration"],
                     "validation": card["validation"]})
    out["previous_calibration"] = previous
    rule = calibration_rule(had_forgeries, confidence)
    if cleaned_by:
        rule += f"; queries cleaned by {cleaned_by} (the pipeline's default), references as enrolled"
    out["calibration"] = calibration.to_card() | {"calibrated_on": rule, "max_far": 0.01, "max_frr": 0.01,
                                                  "queries": "cleaned" if cleaned_by else "as they are",
                                                  "cleaner_model_version": cleaned_by, "confidence": confidence,
                                                  "command": command,
                                                  "date": today.isoformat(timespec="seconds")}
    out["validation"] = figures | {"references_per_writer": k, "protocol": VALIDATION_PROTOCOL}
    if uncleaned is not None:
        out["validation_uncleaned"] = uncleaned | {"references_per_writer": k, "protocol": VALIDATION_PROTOCOL}
    out["model_version"] = f"{base_version(card['model_version'])}-cal{today:%Y%m%d}"
    return out


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.recalibrate", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", type=Path, default=None, help="SigNet safetensors (default: the shipped one)")
    p.add_argument("--manifest", type=Path, default=None,
                   help="signature manifest (default: the card's data.manifest, relative to the project root)")
    p.add_argument("--clean", action="store_true",
                   help="calibrate on queries cleaned as the pipeline cleans them by default (references as they are)")
    p.add_argument("--cleaner", type=Path, default=None, help="cleaner safetensors for --clean (default: the shipped one)")
    p.add_argument("--confidence", type=float, default=None, metavar="C",
                   help="set each threshold so that it keeps its 1 %% promise in C (0.5..1) of bootstrap resamples of "
                        "the validation signers (default: fitted on the validation signers as they are)")
    p.add_argument("--write", action="store_true", help="write the new calibration into the card")
    a = p.parse_args(argv)
    if a.confidence is not None and not 0.5 <= a.confidence < 1.0:
        p.error(f"--confidence must be in [0.5, 1), got {a.confidence}")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    from models.weights import default_weights_path, load_embedder, write_card  # torch: only when run

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parse_args(argv)
    if a.cleaner is not None and not a.clean:
        raise SystemExit(f"--cleaner {a.cleaner} needs --clean")
    command = "python -m models.recalibrate " + " ".join(sys.argv[1:] if argv is None else argv)
    weights = a.weights or default_weights_path()
    model, card = load_embedder(weights, "cpu")
    manifest = a.manifest or Path(card["data"]["manifest"])
    if not manifest.is_file():
        raise SystemExit(f"no signature manifest at {manifest}: pass --manifest")
    rows = select_samples(read_manifest(manifest), card, "validation", None, None)
    files, cleaned = validation_scores(model, rows, card["validation"]["references_per_writer"], reference_score(card),
                                       a.clean, a.cleaner)
    cal, figures, had_forgeries = calibration_from_scores(cleaned if cleaned is not None else files, a.confidence)
    uncleaned = summarize(files, cal) if cleaned is not None else None
    cleaned_by = None
    if a.clean:
        from models.clean import default_cleaner_path
        from models.weights import load_card

        cleaned_by = load_card(a.cleaner or default_cleaner_path())["model_version"]
    print(json.dumps({"model_version": card["model_version"], "old": Calibration.from_card(card).to_card(),
                      "new": cal.to_card(), "queries_cleaned_by": cleaned_by, "validation": figures,
                      "validation_uncleaned": uncleaned}, indent=2))
    if a.write:
        new = recalibrated_card(card, cal, figures, had_forgeries, command, dt.datetime.now(dt.timezone.utc),
                                cleaned_by, uncleaned, a.confidence)
        log.info("wrote %s (%s)", write_card(weights, new), new["model_version"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
