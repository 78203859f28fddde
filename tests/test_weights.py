"""Safetensors weights + JSON card: roundtrip, no pickle, device fallback."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch

from models.embed import embed_batch
from models.signet import build_embedder
from models.weights import (
    card_path,
    default_weights_path,
    load_card,
    load_embedder,
    resolve_device,
    save_embedder,
    write_card,
)


def test_roundtrip_gives_the_same_embeddings(tmp_path):
    torch.manual_seed(0)
    model = build_embedder("signet_s4").eval()
    path = save_embedder(model, {"arch": "signet_s4", "model_version": "test-1"}, tmp_path / "m.safetensors")
    loaded, card = load_embedder(path)
    assert card["model_version"] == "test-1" and not loaded.training
    x = np.random.default_rng(0).random((2, 155, 220), dtype=np.float32)
    np.testing.assert_allclose(embed_batch(loaded, x), embed_batch(model, x), rtol=1e-5, atol=1e-5)


def test_weights_file_is_safetensors_not_pickle(tmp_path):
    path = save_embedder(build_embedder("signet_s4"), {"arch": "signet_s4"}, tmp_path / "m.safetensors")
    raw = path.read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + header_len])
    assert "features.conv1.weight" in header and header["__metadata__"]["arch"] == "signet_s4"
    assert not raw.startswith(b"\x80") and not raw.startswith(b"PK")  # neither pickle nor torch zip
    assert json.loads(path.with_suffix(".json").read_text())["arch"] == "signet_s4"


def test_write_card_keeps_the_order_and_the_text_and_ends_with_a_newline(tmp_path):
    card = {"model_version": "test-2", "arch": "signet_s4", "note": "EER 17 % ± 2", "validation": {"eer": 0.17}}
    written = write_card(tmp_path / "m.safetensors", card)
    assert written == card_path(tmp_path / "m.safetensors") == tmp_path / "m.json"
    text = written.read_text()
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert "±" in text and list(json.loads(text)) == list(card)
    assert load_card(tmp_path / "m.safetensors") == card


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        load_embedder(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="not found"):
        load_embedder(tmp_path / "missing.safetensors")
    path = save_embedder(build_embedder("signet_s4"), {"arch": "signet_s4"}, tmp_path / "m.safetensors")
    path.with_suffix(".json").unlink()
    with pytest.raises(ValueError, match="model card"):
        load_embedder(path)
    with pytest.raises(ValueError, match="arch"):
        save_embedder(build_embedder("signet_s4"), {}, tmp_path / "x.safetensors")


def test_default_path_is_inside_the_package():
    p = default_weights_path()
    assert p.name == "signet_default.safetensors" and p.parent.name == "weights" and p.parent.parent.name == "models"
    with pytest.raises(ValueError, match="plain file stem"):
        default_weights_path("../x")


def test_resolve_device(caplog):
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with caplog.at_level(logging.WARNING):
            assert resolve_device("cuda") == torch.device("cpu")
        assert "falling back to CPU" in caplog.text
        assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="tpu"):
        resolve_device("tpu")
