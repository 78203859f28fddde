"""models.recalibrate: refitting a shipped card's thresholds on its validation writers."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from models.clean import save_cleaner
from models.cyclegan import build_generator
from models.recalibrate import base_version, main, recalibrated_card
from models.train_signet import main as train_main
from models.verification import Calibration
from models.weights import load_card
from transforms.demo_corpus import write_signature_manifest

TODAY = dt.datetime(2026, 11, 30, tzinfo=dt.timezone.utc)


def _exported_run(tmp_path: Path, steps: int = 2) -> tuple[Path, Path]:
    """``(manifest, weights)``: a tiny SigNet trained on a synthetic manifest and exported with its card."""
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    out = tmp_path / "run"
    train_main(["--manifest", str(manifest), "--out", str(out), "--threads", "1", "--steps", str(steps),
                "--eval-every", str(steps), "--batch-writers", "2", "--genuine-per-writer", "2",
                "--forged-per-writer", "1", "--val-fraction", "0.5"])
    return manifest, out / "export" / "signet_s4.safetensors"


def test_base_version_drops_only_a_calibration_suffix():
    assert base_version("signet_s4x2-20261129-7d37ef04-cal20261130") == "signet_s4x2-20261129-7d37ef04"
    assert base_version("signet_s4x2-20261129-7d37ef04") == "signet_s4x2-20261129-7d37ef04"
    assert base_version("signet_s4-20261129-abcdef12-nearest") == "signet_s4-20261129-abcdef12-nearest"
    assert base_version("x-calibrated") == "x-calibrated"


def test_recalibrated_card_keeps_the_history_and_renames_the_version():
    old = Calibration(match=0.1, mismatch=0.3, center=0.2, slope=20.0)
    card = {"model_version": "signet_s4-20261129-abcdef12", "calibration": old.to_card(),
            "validation": {"eer": 0.2, "references_per_writer": 5}, "arch": "signet_s4"}
    new = Calibration(match=0.12, mismatch=0.31, center=0.21, slope=18.0)
    once = recalibrated_card(card, new, {"eer": 0.21}, True, "cmd", TODAY)
    assert once["model_version"] == "signet_s4-20261129-abcdef12-cal20261130"
    assert Calibration.from_card(once) == new and once["calibration"]["command"] == "cmd"
    assert once["validation"]["eer"] == 0.21 and once["validation"]["references_per_writer"] == 5
    assert once["previous_calibration"] == [{"model_version": card["model_version"], "calibration": card["calibration"],
                                             "validation": card["validation"]}]
    assert card["model_version"] == "signet_s4-20261129-abcdef12" and "previous_calibration" not in card  # not mutated
    twice = recalibrated_card(once, old, {"eer": 0.2}, True, "cmd", TODAY + dt.timedelta(days=1))
    assert twice["model_version"] == "signet_s4-20261129-abcdef12-cal20261201"  # one suffix, not two
    assert [p["model_version"] for p in twice["previous_calibration"]] == [card["model_version"], once["model_version"]]


def test_recalibrating_an_export_reproduces_its_calibration(tmp_path, capsys):
    """Recalibrating fresh weights finds the validation writers, references and score rule the export
    used: it gives back the thresholds they were exported with."""
    manifest, weights = _exported_run(tmp_path)
    exported = load_card(weights)
    capsys.readouterr()
    assert main(["--weights", str(weights), "--manifest", str(manifest)]) == 0
    printed = json.loads(capsys.readouterr().out)
    # the same distances up to float rounding (channels-last convolutions on reload)
    assert printed["new"]["thresholds"] == pytest.approx(printed["old"]["thresholds"], rel=1e-5)
    assert printed["new"]["similarity"]["center"] == pytest.approx(printed["old"]["similarity"]["center"], rel=1e-5)
    assert load_card(weights) == exported  # without --write the card is untouched
    assert main(["--weights", str(weights), "--manifest", str(manifest), "--write"]) == 0
    card = load_card(weights)
    assert card["model_version"].startswith(exported["model_version"] + "-cal")
    assert card["previous_calibration"][0]["model_version"] == exported["model_version"]
    assert card["calibration"]["thresholds"] == pytest.approx(exported["calibration"]["thresholds"], rel=1e-5)
    assert card["validation"]["eer"] == pytest.approx(exported["validation"]["eer"])


def test_recalibrate_on_cleaned_queries(tmp_path, capsys):
    """--clean: thresholds fitted on queries through the cleaner (the pipeline's default path), the
    uncleaned queries' figures under them kept beside, the cleaner named."""
    manifest, weights = _exported_run(tmp_path)
    exported = load_card(weights)
    cleaner = save_cleaner(build_generator("resnet_4blocks_ngf8").eval(),  # untrained: it changes the queries
                           {"arch": "resnet_4blocks_ngf8", "model_version": "tiny-cleaner", "max_side": 64},
                           tmp_path / "cleaner.safetensors")
    with pytest.raises(SystemExit, match="needs --clean"):
        main(["--weights", str(weights), "--manifest", str(manifest), "--cleaner", str(cleaner)])
    capsys.readouterr()
    assert main(["--weights", str(weights), "--manifest", str(manifest), "--clean", "--cleaner", str(cleaner),
                 "--write"]) == 0
    printed = json.loads(capsys.readouterr().out)
    card = load_card(weights)
    assert printed["queries_cleaned_by"] == "tiny-cleaner" and card["calibration"]["cleaner_model_version"] == "tiny-cleaner"
    assert card["calibration"]["queries"] == "cleaned" and "tiny-cleaner" in card["calibration"]["calibrated_on"]
    assert card["calibration"]["thresholds"] != pytest.approx(exported["calibration"]["thresholds"], rel=1e-3)
    # the uncleaned queries keep the export's figures (same distances), judged by the new threshold
    assert card["validation_uncleaned"]["eer"] == pytest.approx(exported["validation"]["eer"])
    assert card["validation_uncleaned"]["match_threshold"] == card["calibration"]["thresholds"]["match"]


def test_recalibrate_needs_a_manifest(tmp_path):
    _, weights = _exported_run(tmp_path, steps=1)
    with pytest.raises(SystemExit, match="no signature manifest"):
        main(["--weights", str(weights), "--manifest", str(tmp_path / "missing.csv")])


def test_recalibrate_with_confidence_sets_stricter_thresholds(tmp_path, capsys):
    """--confidence: each threshold as strict as its promise needs on resamples of the validation signers, and the
    card says so."""
    manifest, weights = _exported_run(tmp_path)
    exported = load_card(weights)["calibration"]["thresholds"]
    with pytest.raises(SystemExit):
        main(["--weights", str(weights), "--manifest", str(manifest), "--confidence", "1.5"])
    capsys.readouterr()
    assert main(["--weights", str(weights), "--manifest", str(manifest), "--confidence", "0.9", "--write"]) == 0
    card = load_card(weights)
    thresholds = card["calibration"]["thresholds"]
    assert card["calibration"]["confidence"] == 0.9 and "bootstrap resamples" in card["calibration"]["calibrated_on"]
    assert thresholds["match"] <= exported["match"] * (1 + 1e-5)
    assert thresholds["mismatch"] >= exported["mismatch"] * (1 - 1e-5)
    assert card["validation"]["match_threshold"] == thresholds["match"]


def test_calibration_from_scores_with_confidence():
    """On scores whose signers differ, a confident calibration is stricter on both sides than the plain one; it
    needs skilled forgeries and per-query signers."""
    import numpy as np

    from models.evaluate import ProtocolScores, QueryScores
    from models.export import calibration_from_scores

    rng = np.random.default_rng(3)
    # 300 forgeries: the plain match threshold lets 3 through, so resamples can set it lower
    signers = np.repeat(np.array([f"s{i}" for i in range(10)]), 40)
    forged = np.tile(np.array([False] * 10 + [True] * 30), 10)
    level = np.repeat(rng.normal(0, 0.08, 10), 40)
    d = np.where(forged, 0.5, 0.2) + level + rng.normal(0, 0.04, signers.size)
    queries = QueryScores(np.array([f"q{i}" for i in range(d.size)]), signers, forged, d)
    scores = ProtocolScores(genuine=d[~forged], genuine_forged_writers=d[~forged], skilled=d[forged],
                            random=np.array([0.9]), n_writers=10, n_writers_fewer_references=0, queries=queries)
    plain, _, _ = calibration_from_scores(scores)
    sure, figures, had = calibration_from_scores(scores, 0.9)
    assert had and sure.match < plain.match and sure.mismatch > plain.mismatch
    assert (sure.center, sure.slope) == (plain.center, plain.slope)  # the similarity map does not move
    assert figures["match_threshold"] == sure.match
    no_forgeries = ProtocolScores(genuine=d[~forged], genuine_forged_writers=d[:0], skilled=d[:0], random=d[forged],
                                  n_writers=10, n_writers_fewer_references=0, queries=None)
    with pytest.raises(ValueError, match="needs skilled forgeries"):
        calibration_from_scores(no_forgeries, 0.9)
