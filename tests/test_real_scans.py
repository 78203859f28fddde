"""End to end on real scans: labelled pages of ``detection/valid`` wrapped as image-only PDFs (what a
scanner writes) go through ``run_pipeline.run()``; the regions it reports must be the boxes that
``models.evaluate detection`` finds on the same pages (the pipeline renders the PDF again at its own
resolution, so boxes may move a little, never appear or vanish), and as many labelled signatures must
be found. Skips where ``../shared/data`` is absent."""
from __future__ import annotations

from pathlib import Path

import cv2
import pymupdf

import run_pipeline
from models.detect import load_detector
from models.evaluate_detection import predict_folder, yolo_pairs
from pipeline.summary import read_table
from transforms.boxes import Box
from transforms.detection_metrics import match_page
from transforms.yolo import load_yolo_labels

RUN_DATE = "2026-11-30"
N_PAGES = 12  # the first twelve labelled pages of detection/valid, in name order


def _image_pdf(image_path: Path, out: Path) -> None:
    """A one-page PDF holding only the scan, page size from its pixels at 72 dpi."""
    image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
    ok, png = cv2.imencode(".png", image)
    assert ok
    doc = pymupdf.open()
    page = doc.new_page(width=image.shape[1], height=image.shape[0])
    page.insert_image(page.rect, stream=png.tobytes())
    doc.save(out)
    doc.close()


def test_real_scans_through_the_pipeline_give_the_evaluated_boxes(shared_data: Path, tmp_path: Path) -> None:
    valid = shared_data / "detection" / "valid"
    pairs = [p for p in yolo_pairs(valid / "images", valid / "labels") if load_yolo_labels(p[1])][:N_PAGES]
    assert len(pairs) == N_PAGES
    folder = tmp_path / "scans"
    folder.mkdir()
    for k, (image, _) in enumerate(pairs):
        _image_pdf(image, folder / f"scan_{k:02d}.pdf")
    output = tmp_path / "out"
    run_pipeline.run(["--input", str(folder / "*.pdf"), "--output", str(output), "--run_date", RUN_DATE,
                      "--detector", "model", "--no-clean", "--no-review"], save_main_session=False)

    documents = read_table(str(output), "documents", RUN_DATE).to_pylist()
    assert sorted((Path(d["source_path"]).name, d["status"]) for d in documents) == \
        [(f"scan_{k:02d}.pdf", "ok") for k in range(N_PAGES)]
    found: dict[int, list[Box]] = {k: [] for k in range(N_PAGES)}
    for s in read_table(str(output), "signatures", RUN_DATE).to_pylist():
        found[int(Path(s["source_path"]).stem.split("_")[1])].append(
            Box(s["x0"], s["y0"], s["x1"], s["y1"], s["detector_score"]))

    model, card = load_detector()
    evaluated, truth, _ = predict_folder(model, card, pairs)
    threshold = float(card["score_threshold"])
    expected = [[b for b in page if b.score >= threshold] for page in evaluated]
    for k in range(N_PAGES):
        # the same boxes, up to the re-rendering (IoU 0.94-0.995 here): every box has its twin, except a
        # near-threshold box that one rendering puts just over the line and the other just under
        assert sum(match_page(found[k], expected[k], 0.85)) >= min(len(found[k]), len(expected[k])), (pairs[k][0].name, found[k], expected[k])
        assert abs(len(found[k]) - len(expected[k])) <= 1, (pairs[k][0].name, found[k], expected[k])
    # 11 of the 18 labels on these pages, as the evaluation finds; the floor leaves two of slack
    hits_pipeline = sum(sum(match_page(found[k], truth[k], 0.5)) for k in range(N_PAGES))
    hits_evaluated = sum(sum(match_page(expected[k], truth[k], 0.5)) for k in range(N_PAGES))
    n_labels = sum(len(t) for t in truth)
    assert abs(hits_pipeline - hits_evaluated) <= 1
    assert hits_pipeline >= 0.5 * n_labels, f"{hits_pipeline} of {n_labels} labelled signatures found"
