import apache_beam as beam
import cv2
import numpy as np
import pytest
import torch
from apache_beam.testing.util import assert_that, equal_to

import pipeline.detect as detect
from pipeline.detect import FindSignatures
from pipeline.elements import PageImage
from pipeline.inference import DetectorHandler
from tests.conftest import local_pipeline
from transforms.boxes import Box


def _page(with_signature: bool) -> PageImage:
    image = np.full((1100, 850), 255, np.uint8)
    for row in range(5):
        cv2.putText(image, "THIS AGREEMENT is made between the parties", (80, 120 + 40 * row),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    cv2.line(image, (450, 900), (750, 900), 0, 2)
    if with_signature:
        t = np.linspace(0, 4 * np.pi, 200)
        points = np.stack([480 + 60 * t / np.pi, 870 - 25 * np.sin(t) * np.cos(t / 3)], axis=1).astype(np.int32)
        cv2.polylines(image, [points], False, 0, 3)
    return PageImage("/in/x.pdf", "d", 1, 100, image, ())


def test_regions_carry_boxes_scores_and_crops():
    with local_pipeline() as p:
        out = p | beam.Create([_page(True)]) | FindSignatures("classical")
        regions = out["regions"] | beam.Map(
            lambda r: (r.region == 0, r.detector, 0 <= r.x0 < r.x1 <= 1, r.crop.ndim, r.crop.dtype.name, r.dpi))
        assert_that(regions | "First" >> beam.Filter(lambda r: r[0]),
                    equal_to([(True, "classical-v1", True, 2, "uint8", 100)]), label="regions")
        assert_that(out["errors"], equal_to([]), label="errors")


def test_a_failing_page_becomes_an_error_row(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("finder exploded")

    monkeypatch.setattr(detect, "find_signature_regions", broken)
    with local_pipeline() as p:
        out = p | beam.Create([_page(False)]) | FindSignatures("classical")
        assert_that(out["regions"], equal_to([]), label="regions")
        errors = out["errors"] | beam.Map(lambda e: (e.stage, e.page, e.error_kind, "finder exploded" in e.error_message))
        assert_that(errors, equal_to([("FindSignatures", 1, "detection_failed", True)]), label="errors")


class FixedDetector(DetectorHandler):
    """A detector handler whose 'model' returns two hand-placed boxes per page."""

    def load_model(self):
        model = torch.nn.Identity()
        model.sigaudit_card = {"input_size": 64}
        return model

    sizes = ((64, 64),)

    def _infer(self, model, batch, device):
        assert all(tuple(view.shape for view in page) == self.sizes for page in batch)
        return [[Box(0.1, 0.1, 0.3, 0.2, 0.4), Box(0.5, 0.8, 0.9, 0.9, 0.9)] for _ in batch]


class TwoSizeDetector(FixedDetector):
    sizes = ((64, 64), (96, 96))


def test_model_detector_crops_its_boxes_best_first():
    with local_pipeline() as p:
        out = p | beam.Create([_page(True)]) | FindSignatures("model", FixedDetector(), 64, "det-1")
        regions = out["regions"] | beam.Map(
            lambda r: (r.region, r.detector, round(r.detector_score, 2), r.crop.shape[1] > r.crop.shape[0]))
        assert_that(regions, equal_to([(0, "det-1", 0.9, True), (1, "det-1", 0.4, True)]), label="regions")
        assert_that(out["errors"], equal_to([]), label="errors")


@pytest.mark.parametrize("thumbnails", [True, False])
def test_thumbnails_ride_on_each_page_s_first_region_only(thumbnails):
    def thumb_size(region):
        if region.page_thumb is None:
            return region.region, None
        return region.region, cv2.imdecode(np.frombuffer(region.page_thumb, np.uint8), cv2.IMREAD_GRAYSCALE).shape

    with local_pipeline() as p:
        out = p | beam.Create([_page(True)]) | FindSignatures("model", FixedDetector(), 64, "det-1", thumbnails=thumbnails)
        expected = [(0, (366, 283) if thumbnails else None), (1, None)]  # 1100 x 850 page, whole factor 3
        assert_that(out["regions"] | beam.Map(thumb_size), equal_to(expected), label="thumbs")


def test_model_detector_prepares_every_view_size():
    with local_pipeline() as p:
        out = p | beam.Create([_page(True)]) | FindSignatures("model", TwoSizeDetector(), [64, 96], "det-2")
        assert_that(out["regions"] | beam.Map(lambda r: r.region), equal_to([0, 1]), label="regions")
        assert_that(out["errors"], equal_to([]), label="errors")


def test_detector_handler_counts_the_bytes_of_every_view():
    batch = [(np.zeros((64, 64), np.float32), np.zeros((96, 96), np.float32))] * 2
    assert DetectorHandler().get_num_bytes(batch) == 2 * 4 * (64 * 64 + 96 * 96)


def test_model_detector_needs_its_card_values():
    with pytest.raises(ValueError, match="needs a handler"):
        FindSignatures("model")
    with pytest.raises(ValueError, match="detector must be 'classical' or 'model', got 'yolo'"):
        FindSignatures("yolo")
