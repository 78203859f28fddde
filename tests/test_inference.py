import apache_beam as beam
import numpy as np
import pytest
import torch
from apache_beam.ml.inference.base import RunInference
from apache_beam.testing.util import assert_that, equal_to

from models.signet import build_embedder
from models.verification import Calibration
from models.weights import save_embedder
from pipeline.inference import EmbedderHandler
from tests.conftest import local_pipeline

BATCHES: list[int] = []


class SumModel(torch.nn.Module):
    """A tiny embedder with hand-set weights: (N, 1, H, W) -> (N, 2) = [sum, 2 * sum]."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor([1.0, 2.0]), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        BATCHES.append(x.shape[0])
        return x.flatten(1).sum(dim=1, keepdim=True) * self.scale


class TinyHandler(EmbedderHandler):
    def load_model(self) -> torch.nn.Module:
        self._device = torch.device("cpu")
        return SumModel().eval()


def test_handler_batches_and_returns_cpu_numpy():
    BATCHES.clear()
    examples = [np.full((155, 220), i / 100.0, np.float32) for i in range(10)]
    with local_pipeline() as p:
        results = (p | beam.Create(examples, reshuffle=False)
                   | RunInference(TinyHandler(max_batch_size=4, min_batch_size=4))
                   | beam.Map(lambda r: (type(r.inference).__name__, r.inference.dtype.name,
                                         round(float(r.inference[0]), 2), round(float(r.inference[1]), 2))))
        expected = [("ndarray", "float32", round(i / 100 * 155 * 220, 2), round(2 * i / 100 * 155 * 220, 2))
                    for i in range(10)]
        assert_that(results, equal_to(expected))
    assert max(BATCHES) == 4 and sum(BATCHES) == 10


def test_handler_loads_saved_weights_and_falls_back_to_cpu(tmp_path, caplog):
    torch.manual_seed(0)
    model = build_embedder("signet_s4")
    card = {"arch": "signet_s4", "model_version": "test-1", "embedding_dim": model.embedding_dim,
            "calibration": Calibration(0.5, 1.0, 0.75, 8.0).to_card()}
    path = save_embedder(model, card, tmp_path / "w.safetensors")
    handler = EmbedderHandler(str(path), device="cuda" if not torch.cuda.is_available() else "cpu")
    loaded = handler.load_model()
    assert next(loaded.parameters()).device.type == "cpu"
    batch = [np.random.default_rng(i).random((155, 220), dtype=np.float32) for i in range(3)]
    results = list(handler.run_inference(batch, loaded))
    assert len(results) == 3 and results[0].inference.shape == (model.embedding_dim,)
    np.testing.assert_allclose(results[1].inference, list(handler.run_inference(batch[1:2], loaded))[0].inference,
                               rtol=1e-4, atol=1e-5)


def test_handler_sets_the_worker_threads_when_asked(tmp_path):
    model = build_embedder("signet_s4")
    card = {"arch": "signet_s4", "model_version": "test-1", "calibration": Calibration(0.5, 1.0, 0.75, 8.0).to_card()}
    path = save_embedder(model, card, tmp_path / "w.safetensors")
    before = torch.get_num_threads()
    try:
        EmbedderHandler(str(path), device="cpu", threads=1).load_model()
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    EmbedderHandler(str(path), device="cpu").load_model()  # 0: torch's default is left alone
    assert torch.get_num_threads() == before


def test_bad_batch_sizes_are_named():
    with pytest.raises(ValueError, match="got 8, 4"):
        EmbedderHandler(max_batch_size=4, min_batch_size=8)
    with pytest.raises(ValueError, match="got -1"):
        EmbedderHandler(threads=-1)


def test_keyed_byte_count_sums_array_sizes_without_pickling(monkeypatch):
    import pickle

    from pipeline.elements import PageImage
    from pipeline.inference import Keyed, approx_nbytes

    page = PageImage("/in/a.pdf", "d", 1, 200, np.zeros((2200, 1700), np.uint8), ())
    batch = [((page, b"jpeg"), np.zeros((155, 220), np.float32))] * 2
    assert approx_nbytes((page, b"jpeg")) == 2200 * 1700 + len("/in/a.pdf") + 1 + 8 + 8 + 4
    monkeypatch.setattr(pickle, "dumps", lambda *a, **k: pytest.fail("pickled a batch to count its bytes"))
    handler = Keyed(EmbedderHandler("unused.safetensors"))
    assert handler.get_num_bytes(batch) == 2 * (approx_nbytes((page, b"jpeg")) + 155 * 220 * 4)
