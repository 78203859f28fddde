"""benchmarks/demo_accuracy.py: placed signatures matched to regions, their decisions and EER."""
from __future__ import annotations

import pytest

from tests.conftest import load_benchmark
from transforms.boxes import Box

demo_accuracy = load_benchmark("demo_accuracy")


def _placed(doc, page, box, signer, kind):
    return {"document": doc, "page": page, "box": Box(*box), "signer_id": signer, "kind": kind}


def test_placed_signatures_get_the_decision_of_their_best_overlapping_region():
    placed = [_placed("a.pdf", 1, (0.1, 0.1, 0.3, 0.2), "ann", "genuine"),
              _placed("a.pdf", 1, (0.6, 0.1, 0.8, 0.2), "bob", "genuine"),
              _placed("a.pdf", 2, (0.1, 0.5, 0.3, 0.6), "ann", "forged"),
              _placed("b.pdf", 1, (0.1, 0.5, 0.3, 0.6), "bob", "genuine")]  # no region on that page
    regions = [{"document_id": "d1", "source_path": "/x/a.pdf", "page": 1, "region": 0,
                "x0": 0.1, "y0": 0.1, "x1": 0.3, "y1": 0.21},
               {"document_id": "d1", "source_path": "/x/a.pdf", "page": 1, "region": 1,  # IoU 0.25 with bob's
                "x0": 0.6, "y0": 0.1, "x1": 0.65, "y1": 0.2},
               {"document_id": "d1", "source_path": "/x/a.pdf", "page": 2, "region": 0,
                "x0": 0.1, "y0": 0.5, "x1": 0.3, "y1": 0.6}]
    matches = [{"document_id": "d1", "page": 1, "region": 0, "signer_id": "ann", "distance": 0.1, "decision": "match"},
               {"document_id": "d1", "page": 1, "region": 0, "signer_id": "bob", "distance": 0.9, "decision": "mismatch"},
               {"document_id": "d1", "page": 2, "region": 0, "signer_id": "ann", "distance": 0.3, "decision": "review"}]
    out = demo_accuracy.demo_accuracy(placed, regions, matches, min_iou=0.3)
    assert out["genuine"] == {"placed": 3, "found": 1, "decisions": {"match": 1, "not found": 2}}
    assert out["forged"] == {"placed": 1, "found": 1, "decisions": {"review": 1}}
    assert out["eer"] == 0.0  # the one genuine (0.1) lies below the one forgery (0.3)
    lower = demo_accuracy.demo_accuracy(placed, regions, matches, min_iou=0.2)
    assert lower["genuine"]["found"] == 2 and lower["genuine"]["decisions"]["no match row"] == 1


def test_cli_says_to_run_the_demo_first(tmp_path, capsys):
    with pytest.raises(SystemExit):
        demo_accuracy.main(["--output", str(tmp_path)])
    assert "run `python run_pipeline.py` first" in capsys.readouterr().err
