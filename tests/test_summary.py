from pipeline.summary import OUTCOMES, RunSummary, expected_outcomes


def _m(doc, signer, decision, rank=1, expected=True):
    return {"document_id": doc, "signer_id": signer, "decision": decision, "rank": rank, "expected": expected}


def test_expected_outcomes_take_the_best_region_per_signer():
    documents = [
        {"document_id": "d1", "status": "ok", "page_count": 1, "expected_signers": ["a", "b", "c", "e"]},
        {"document_id": "d2", "status": "error", "page_count": None, "expected_signers": ["a"]},
    ]
    matches = [
        _m("d1", "a", "mismatch"), _m("d1", "a", "match"),  # best region wins
        _m("d1", "b", "match", rank=2),  # a match that is not the closest signer counts as review
        _m("d1", "c", "mismatch"),
        _m("d1", "x", "match", expected=False),
    ]
    assert expected_outcomes(documents, matches) == {
        ("d1", "a"): "match", ("d1", "b"): "review", ("d1", "c"): "mismatch", ("d1", "e"): "missing"}


def test_summary_text_lists_every_outcome():
    text = str(RunSummary(3, 1, 0, 7, 5, {"match": 2, "missing": 1}, 4, "out"))
    assert "3 documents (1 failed, 0 skipped as already processed), 7 pages, 5 signature regions found" in text
    assert "expected signatures: 3 (2 match, 0 review, 0 mismatch, 1 missing)" in text
    assert all(o in text for o in OUTCOMES) and "errors: 4" in text
