"""RunInference ModelHandlers: batched, loaded once per worker process, GPU when there is one."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from models.embed import embed_batch
from models.weights import load_embedder, resolve_device

LOGGER = logging.getLogger(__name__)


class EmbedderHandler(ModelHandler[np.ndarray, PredictionResult, torch.nn.Module]):
    """SigNet embeddings of preprocessed signatures: ``(155, 220) float32`` in, ``(D,) float32`` out.

    The weights are read from a safetensors file (no pickle) with its JSON model card beside it.
    ``device='auto'`` takes CUDA when present; ``'cuda'`` without a GPU falls back to CPU with a warning.
    """

    def __init__(self, weights_path: str | None = None, device: str = "auto", max_batch_size: int = 32,
                 min_batch_size: int = 1) -> None:
        if not 1 <= min_batch_size <= max_batch_size:
            raise ValueError(f"batch sizes must satisfy 1 <= min <= max, got {min_batch_size}, {max_batch_size}")
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self._weights_path = weights_path
        self._device_name = device
        self._device: torch.device | None = None

    def load_model(self) -> torch.nn.Module:
        self._device = resolve_device(self._device_name)
        model, card = load_embedder(self._weights_path, device=self._device)
        LOGGER.info("loaded embedder %s on %s", card.get("model_version"), self._device)
        return model

    def run_inference(self, batch: Sequence[np.ndarray], model: torch.nn.Module,
                      inference_args: dict[str, Any] | None = None) -> Iterable[PredictionResult]:
        if not batch:
            return []
        device = self._device or next(model.parameters()).device
        embeddings = embed_batch(model, np.stack(batch).astype(np.float32, copy=False), device)
        return [PredictionResult(example, embedding) for example, embedding in zip(batch, embeddings, strict=True)]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(int(example.nbytes) for example in batch)

    def get_metrics_namespace(self) -> str:
        return "sigaudit_embedder"
