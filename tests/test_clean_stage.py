import apache_beam as beam
import numpy as np
import torch
from apache_beam.testing.util import assert_that, equal_to

from pipeline.clean import CleanSignatures
from pipeline.elements import Region
from pipeline.inference import CleanerHandler
from pipeline.reports import RunInfo, signature_row
from tests.conftest import local_pipeline


class InvertCleaner(CleanerHandler):
    """A 'cleaner' with a hand-set rule (255 - x), so the result is known exactly."""

    def load_model(self):
        model = torch.nn.Identity()
        model.sigaudit_card = {"max_side": 256}
        return model

    def _infer(self, model, batch, device):
        return [255 - crop for crop in batch]


def _region(h: int, w: int, index: int) -> Region:
    crop = np.arange(h * w, dtype=np.uint32).reshape(h, w).astype(np.uint8)
    return Region("/in/a.pdf", "d", 1, index, 0.1, 0.1, 0.2, 0.2, 200, "classical-v1", 0.5, crop)


def test_cleaned_crops_keep_their_size_and_reach_the_report():
    regions = [_region(30, 90, 0), _region(41, 203, 1), _region(7, 5, 2)]
    with local_pipeline() as p:
        cleaned = p | beam.Create(regions) | CleanSignatures(InvertCleaner(max_batch_size=2))
        checks = cleaned | beam.Map(lambda r: (r.region, r.cleaned.shape == r.crop.shape,
                                               bool((r.cleaned == 255 - r.crop).all()),
                                               r.verified_image is r.cleaned))
        assert_that(checks, equal_to([(i, True, True, True) for i in range(3)]))
    row = signature_row(RunInfo("r", "2026-11-25"), regions[0]._replace(cleaned=255 - regions[0].crop))
    assert row["cleaned_png"].startswith(b"\x89PNG")
    assert signature_row(RunInfo("r", "2026-11-25"), regions[0])["cleaned_png"] is None
