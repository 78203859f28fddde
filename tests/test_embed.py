"""The shared inference function: shapes, dtypes, batching, preprocessing of raw crops."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.embed import embed_batch, embed_images
from models.signet import build_embedder
from transforms.preprocess import preprocess_signature
from transforms.synth_signature import draw_signature, make_style


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_embedder("signet_s4").eval()


def test_numpy_and_tensor_batches_agree(model):
    x = np.random.default_rng(0).random((3, 155, 220), dtype=np.float32)
    a = embed_batch(model, x)
    b = embed_batch(model, torch.from_numpy(x)[:, None])
    assert a.shape == (3, 128) and a.dtype == np.float32 and isinstance(a, np.ndarray)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_empty_and_bad_batches(model):
    assert embed_batch(model, np.zeros((0, 155, 220), np.float32)).shape == (0, 128)
    with pytest.raises(ValueError, match="batch must be"):
        embed_batch(model, np.zeros((2, 100, 100), np.float32))


def test_embed_images_batches_like_one_batch(model):
    rng = np.random.default_rng(0)
    style = make_style(rng)
    crops = [draw_signature(style, rng, height=60) for _ in range(5)]
    batched = embed_images(model, crops, batch_size=2)
    whole = embed_batch(model, np.stack([preprocess_signature(c) for c in crops]))
    assert batched.shape == (5, 128)
    np.testing.assert_allclose(batched, whole, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        embed_images(model, crops, batch_size=0)
