import apache_beam as beam
import cv2
import numpy as np
import torch
from apache_beam.ml.inference.base import PredictionResult
from apache_beam.testing.util import assert_that, equal_to

from models.verification import Calibration
from pipeline.inference import EmbedderHandler
from pipeline.reports import RunInfo
from pipeline.verify import EnrollReferences, _ScoreRegion, decode_image
from tests.conftest import local_pipeline

RUN = RunInfo("r", "2026-11-25")


class MeanModel(torch.nn.Module):
    """Hand-set embedder: (N, 1, H, W) -> (N, 2) = [mean ink, 0]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.flatten(1).mean(dim=1, keepdim=True)
        return torch.cat([mean, torch.zeros_like(mean)], dim=1)


class MeanHandler(EmbedderHandler):
    def load_model(self) -> torch.nn.Module:
        self._device = torch.device("cpu")
        return MeanModel().eval()


def test_decode_image():
    ok, png = cv2.imencode(".png", np.zeros((4, 5), np.uint8))
    assert decode_image(png.tobytes()).shape == (4, 5)
    assert decode_image(b"not an image") is None and decode_image(b"") is None


def test_enroll_references_groups_by_signer_and_reports_bad_files(tmp_path):
    rng = np.random.default_rng(0)
    for signer, n in (("alice", 3), ("bob", 2)):
        (tmp_path / signer).mkdir()
        for i in range(n):
            image = np.full((60, 150), 255, np.uint8)
            cv2.line(image, (10, 30 + i), (140, int(rng.integers(10, 50))), 0, 3)
            cv2.imwrite(str(tmp_path / signer / f"{i}.png"), image)
    (tmp_path / "bob" / "broken.jpg").write_bytes(b"garbage")
    (tmp_path / "bob" / "notes.txt").write_text("ignored: not an image suffix")
    with local_pipeline() as p:
        out = p | EnrollReferences(str(tmp_path), MeanHandler())
        shapes = out["references"] | "Shapes" >> beam.Map(lambda kv: (kv[0], kv[1].shape, kv[1].dtype.name))
        assert_that(shapes, equal_to([("alice", (3, 2), "float32"), ("bob", (2, 2), "float32")]), label="refs")
        errors = out["errors"] | "Errors" >> beam.Map(lambda e: (e.stage, e.source_path.rsplit("/", 1)[1], e.error_kind))
        assert_that(errors, equal_to([("EnrollReferences", "broken.jpg", "unreadable_reference")]), label="errors")


def test_empty_references_folder_is_an_error_row(tmp_path):
    with local_pipeline() as p:
        out = p | EnrollReferences(str(tmp_path), MeanHandler())
        assert_that(out["references"], equal_to([]), label="refs")
        assert_that(out["errors"] | beam.Map(lambda e: e.error_kind), equal_to(["no_references"]), label="errors")


def test_score_region_ranks_decides_and_flags_expected():
    calibration = Calibration(match=0.5, mismatch=1.5, center=1.0, slope=4.0)
    score = _ScoreRegion(RUN, calibration, "m1", {"doc.pdf": ("bob",)})
    references = {"alice": np.array([[0.0, 0.0], [0.2, 0.0]], np.float32),  # mean distance 0.1 + ... see below
                  "bob": np.array([[1.0, 0.0]], np.float32),
                  "carol": np.array([[3.0, 0.0]], np.float32)}
    element = (("/in/doc.pdf", "d1", 2, 0), PredictionResult(None, np.array([0.0, 0.0], np.float32)))
    rows = {row["signer_id"]: row for _, row in score.process(element, references)}
    assert rows["alice"]["distance"] == np.float32(0.1)
    assert [rows[s]["rank"] for s in ("alice", "bob", "carol")] == [1, 2, 3]
    assert [rows[s]["decision"] for s in ("alice", "bob", "carol")] == ["match", "review", "mismatch"]
    assert [rows[s]["expected"] for s in ("alice", "bob", "carol")] == [False, True, False]
    assert rows["alice"]["similarity"] > rows["bob"]["similarity"] > rows["carol"]["similarity"]
    assert all(r["model_version"] == "m1" and r["page"] == 2 for r in rows.values())
    assert list(score.process(element, {})) == []
    # the card's reference_score 'nearest': alice's nearest reference is at distance 0
    nearest = _ScoreRegion(RUN, calibration, "m1", {}, rule="nearest")
    rows = {row["signer_id"]: row for _, row in nearest.process(element, references)}
    assert rows["alice"]["distance"] == 0.0 and rows["bob"]["distance"] == np.float32(1.0)
