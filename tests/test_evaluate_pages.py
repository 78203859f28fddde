"""models.evaluate_pages: verification queries signed into contract pages and cut out as the pipeline does."""
from __future__ import annotations

import json

import numpy as np
import pytest

from models.detect import load_detector
from models.evaluate import main
from models.evaluate_pages import best_region, contract_page, page_queries
from tests.test_evaluate import tiny_weights
from transforms.boxes import iou
from transforms.crops import crop_region
from transforms.demo_corpus import write_signature_manifest
from transforms.synth_signature import draw_signature, make_style


def _signatures(n: int) -> list[np.ndarray]:
    return [draw_signature(make_style(np.random.default_rng(i)), np.random.default_rng(i), height=160) for i in range(n)]


@pytest.mark.parametrize("kind", ["digital", "scanned", "scanned_red"])
def test_the_region_cut_from_the_page_is_the_signature(kind):
    model, card = load_detector()
    images = _signatures(3)
    for i, image in enumerate(images):
        page, truth = contract_page(image, kind, np.random.default_rng([5, i]))
        found = best_region(model, card, page)
        assert truth is not None and found is not None and iou(found, truth) > 0.4, (kind, i, found, truth)
    crops, missed = page_queries(images, kind, seed=5)
    assert missed == 0 and len(crops) == 3
    for i, crop in enumerate(crops):  # the same pages, cut with the pipeline's padding
        page, _ = contract_page(images[i], kind, np.random.default_rng([5, i]))
        assert np.array_equal(crop, crop_region(page, best_region(model, card, page)))
        assert crop.shape[0] < page.shape[0] / 5


def test_pages_are_seeded_and_kinds_checked():
    image = _signatures(1)[0]
    a, box = contract_page(image, "digital", np.random.default_rng([0, 0]))
    b, same = contract_page(image, "digital", np.random.default_rng([0, 0]))
    assert np.array_equal(a, b) and box == same
    assert abs(a.shape[0] - 2339) <= 1 and abs(a.shape[1] - 1654) <= 1  # A4 at 200 dpi, as the pipeline renders it
    with pytest.raises(ValueError, match="page kind"):
        contract_page(image, "photo", np.random.default_rng(0))


def test_page_without_a_region_gives_a_blank_query():
    blank = np.full((60, 200), 255, np.uint8)
    blank[30, 100] = 100  # one dark pixel: the contract is signed with nothing to find
    crops, missed = page_queries([blank], "digital", seed=0)
    assert missed == 1 and (crops[0] == 255).all()


def test_cli_on_pages(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=2, n_genuine=6, n_forged=1, height=120)
    weights = tiny_weights(tmp_path)
    args = ["verification", "--manifest", str(manifest), "--weights", str(weights)]
    assert main([*args, "--on-pages", "digital", "--page-seed", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["on_pages"] == "digital" and result["page_seed"] == 1 and result["pages_without_region"] == 0
    assert result["n_genuine"] == 2 and result["n_forged"] == 2 and 0.0 <= result["eer"] <= 1.0
    with pytest.raises(ValueError, match="choose one"):
        main([*args, "--on-pages", "scanned", "--noisy-queries", "4"])


def test_contract_recall_counts_found_and_missing_signatures():
    from models.evaluate_pages import contract_recall

    model, card = load_detector()
    got = contract_recall(model, card, "digital", 3, seed=2)
    assert got["pages"] == 3 and got["signatures_found"] == 3 and got["pages_without_region"] == 0
    assert got["recall"] == 1.0 and got["median_signature_score"] >= card["score_threshold"]
    assert contract_recall(model, card, "digital", 3, seed=2) == got  # seeded
    blind = contract_recall(model, {**card, "score_threshold": 1.01}, "digital", 3, seed=2)
    assert blind["pages_without_region"] == 3 and blind["signatures_found"] == 0
    assert blind["median_signature_score"] == got["median_signature_score"]  # the scores themselves are unchanged
    with pytest.raises(ValueError, match="pages must be >= 1, got 0"):
        contract_recall(model, card, "digital", 0)
    with pytest.raises(ValueError, match="page kind must be one of"):
        contract_recall(model, card, "paper", 1)


def test_contracts_subcommand_prints_the_figures(tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["contracts", "--kind", "digital", "--pages", "2", "--seed", "2", "--json", str(out)]) == 0
    figures = json.loads(out.read_text())
    assert figures["kind"] == "digital" and figures["pages"] == 2 and figures["signatures_found"] == 2
    assert json.loads(capsys.readouterr().out) == figures


def test_a_red_sealed_scan_reads_as_the_gray_scan_until_the_red_is_dropped():
    image = _signatures(1)[0]
    gray, box = contract_page(image, "scanned", np.random.default_rng([0, 1]))
    red, same = contract_page(image, "scanned_red", np.random.default_rng([0, 1]))
    dropped, also = contract_page(image, "scanned_red", np.random.default_rng([0, 1]), dropout="red")
    assert box == same == also and gray.shape == red.shape == dropped.shape and dropped.ndim == 2
    assert np.abs(red.astype(int) - gray.astype(int)).mean() < 2  # read as gray, the colour scan is the gray one
    assert ((dropped.astype(int) - gray.astype(int)) > 60).sum() > 1000  # this contract's seal (seed [0, 1]) goes
