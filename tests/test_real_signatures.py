"""End to end on real signatures: genuine signatures and skilled forgeries of SigNet's validation writers
(``signatures/manifest.csv``, SigComp2011 Dutch) signed into born-digital contracts go through
``run_pipeline.run()`` with those writers' references enrolled; the distance the pipeline reports for each
expected signer should be the one ``models.evaluate verification`` computes from the same image files (the
pipeline finds the signature on the rendered page and crops it again, so the figures may differ a
little). Skips where ``../shared/data`` is absent.

Known gap (strict xfail: the test fails the day the pipeline agrees, so that the mark is removed):
measured 2026-12-08 with the shipped SigNet and the detector shipped 2026-12-03, pipeline against evaluation:
genuine 0.221 / 0.182, 0.277 / 0.165, 0.212 / 0.200, 0.196 / 0.195; forged 0.299 / 0.282, 0.431 / 0.342,
0.276 / 0.249, 0.285 / 0.264 (six of eight within 0.05, mean gap 0.040; nl018's two are 0.09-0.11 off; cut
with the contract's true box instead of the detector's, nl018's genuine one scores 0.190: the detector's box
ends inside its long left tail). Measured 2026-12-02 with the shipped SigNet read at conv4 (``signet_s4x2_pool_hog``), pipeline against
evaluation: genuine 0.223 / 0.182, 0.251 / 0.165, 0.208 / 0.200, 0.196 / 0.195; forged 0.297 / 0.282,
0.432 / 0.342, 0.273 / 0.249, 0.285 / 0.264 (six of eight within 0.05, mean gap 0.036; nl018's two are
0.09 off; on the pages every forgery lies beyond its writer's genuine signature). With the shape-histogram
SigNet before it and the cleaner's ink gate, pipeline against
evaluation: genuine 0.141 / 0.136, 0.432 / 0.146, 0.173 / 0.164, 0.205 / 0.193; forged 0.263 / 0.217,
0.504 / 0.553, 0.255 / 0.220, 1.013 / 0.660 (six of eight within 0.05, mean gap 0.099; nl018's genuine
and nl023's forgery are the two far off). With the SigNet before the histogram,
measured 2026-11-30 with the default cleaning, pipeline against evaluation (writers nl013, nl018, nl022,
nl023), genuine 0.100 / 0.105, 0.416 / 0.093, 0.133 / 0.130, 0.183 / 0.168; forged 0.234 / 0.173,
0.473 / 0.533, 0.228 / 0.183, 1.004 / 0.644 (four of eight within 0.05, mean gap 0.109), since the
crops are cut with a smaller margin and the cleaner erases the signature line first (on the pages the
forgery now lies further beyond the genuine signature for three of the four writers: 0.134, 0.057,
0.095, 0.821 against 0.123, 0.105, 0.083, 0.478). Before that:
genuine 0.089 / 0.105, 0.341 / 0.093, 0.106 / 0.130, 0.204 / 0.168; forged 0.212 / 0.173,
0.446 / 0.533, 0.189 / 0.183, 0.682 / 0.644 (six of eight within 0.05, mean gap 0.062). Before the
preprocessing kept faint strokes
(``transforms.preprocess.hysteresis_mask``) only two agreed: genuine 0.111 / 0.098, 0.447 / 0.106,
0.161 / 0.160, 0.267 / 0.171; forged 0.304 / 0.177, 0.449 / 0.532, 0.338 / 0.233, 0.398 / 0.628.
On the page the signature is smaller than in the dataset's scans (about 240 px wide at 200 dpi against
400), its thin strokes render lighter, and the crop takes in what lies around it."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

import run_pipeline
from models.data import load_gray, read_manifest, shared_data_dir
from models.embed import embed_images
from models.verification import reference_score, writer_distances
from models.weights import load_embedder
from pipeline.summary import read_table
from transforms.synth_document import ContractSpec, SignatureSlot, make_contract_pdf

RUN_DATE = "2026-11-30"
N_WRITERS = 4
K = 5  # references per writer: the first five genuine images in path order, as the evaluation's protocol


def _cases(shared_data: Path, card: dict) -> list[tuple[str, list[Path], Path, Path]]:
    """(signer, reference paths, a genuine query, a skilled forgery) of the first validation writers."""
    val = set(card["data"]["val_writers"])
    rows = [s for s in read_manifest(shared_data / "signatures" / "manifest.csv")
            if s.dataset == "sigcomp2011_dutch" and s.writer in val]
    cases = []
    for writer in sorted({s.writer for s in rows})[:N_WRITERS]:
        genuine = sorted((s.path for s in rows if s.writer == writer and s.label == "genuine"), key=str)
        forged = sorted((s.path for s in rows if s.writer == writer and s.label != "genuine"), key=str)
        cases.append((writer, genuine[:K], genuine[K], forged[0]))
    return cases


@pytest.fixture(scope="module")
def distances(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, float], dict[str, float]]:
    """``(reported, evaluated)``: per contract, the pipeline's distance to its expected signer (the page's
    best region) and the evaluation's distance for the same image file. One pipeline run per module."""
    shared_data = shared_data_dir()
    if not shared_data.is_dir():
        pytest.skip(f"{shared_data} not found: the real data lives in ../shared/data beside the repo")
    tmp_path = tmp_path_factory.mktemp("real_signatures")
    model, card = load_embedder()
    cases = _cases(shared_data, card)
    assert len(cases) == N_WRITERS
    docs, refs = tmp_path / "documents", tmp_path / "references"
    docs.mkdir()
    rng = np.random.default_rng(0)
    expected_rows, queries = [], {}
    for writer, references, genuine, forged in cases:
        (refs / writer).mkdir(parents=True)
        for k, path in enumerate(references):
            cv2.imwrite(str(refs / writer / f"ref_{k}.png"), load_gray(path))
        for kind, path in (("genuine", genuine), ("forged", forged)):
            name = f"{writer}_{kind}.pdf"
            spec = ContractSpec(title="Service agreement", parties=("Acme B.V.", writer),
                                slots=(SignatureSlot(writer, writer, kind=kind),))
            pdf, _ = make_contract_pdf(spec, [load_gray(path)], rng)
            (docs / name).write_bytes(pdf)
            expected_rows.append((name, writer))
            queries[name] = path
    with open(tmp_path / "expected.csv", "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([("document", "signer_id"), *expected_rows])
    output = tmp_path / "out"
    run_pipeline.run(["--input", str(docs / "*.pdf"), "--references", str(refs), "--expected",
                      str(tmp_path / "expected.csv"), "--output", str(output), "--run_date", RUN_DATE,
                      "--detector", "model", "--no-review"], save_main_session=False)

    names = {d["document_id"]: Path(d["source_path"]).name
             for d in read_table(str(output), "documents", RUN_DATE).to_pylist()}
    reported: dict[str, float] = {}
    for row in read_table(str(output), "matches", RUN_DATE).to_pylist():
        if row["expected"]:
            name = names[row["document_id"]]
            reported[name] = min(reported.get(name, np.inf), row["distance"])  # the page's best region

    references = {w: embed_images(model, [load_gray(p) for p in r]) for w, r, _, _ in cases}
    ordered = sorted(queries)
    ids, d = writer_distances(embed_images(model, [load_gray(queries[n]) for n in ordered]), references,
                              reference_score(card))
    evaluated = {n: float(d[i, ids.index(n.rsplit("_", 1)[0])]) for i, n in enumerate(ordered)}
    return reported, evaluated


def test_every_real_contract_gets_a_distance_to_its_expected_signer(distances) -> None:
    reported, evaluated = distances
    assert sorted(reported) == sorted(evaluated)
    assert all(np.isfinite(v) and v >= 0 for v in reported.values()), reported


@pytest.mark.xfail(strict=True, raises=AssertionError, reason="pipeline distances of real signatures on contract pages differ from the "
                   "evaluation's by up to 0.11 (small light rendering, a box that ends inside a long stroke); see the module docstring")
def test_real_signatures_through_the_pipeline_score_as_evaluated(distances) -> None:
    reported, evaluated = distances
    for name in evaluated:
        assert abs(reported[name] - evaluated[name]) <= 0.05, (name, reported[name], evaluated[name])
