"""RunInference ModelHandlers: batched, loaded once per worker process, GPU when there is one.

Three models, one pattern: weights from a safetensors file (no pickle) with its JSON model card beside
it; ``device='auto'`` takes CUDA when present and ``'cuda'`` without a GPU falls back to CPU with a
logged warning; inference under ``torch.inference_mode`` in the shared ``models`` functions, results
moved to CPU before they leave the handler.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult

from models.clean import clean_images, cleaning_options, load_cleaner
from models.detect import detect_batch, load_detector, stack_views
from models.embed import embed_batch
from models.weights import load_embedder, resolve_device

LOGGER = logging.getLogger(__name__)


def approx_nbytes(value: object) -> int:
    """Bytes of the arrays and byte strings inside ``value`` (tuples, NamedTuples, lists, dicts nested),
    8 per other leaf: a cheap size for RunInference's byte metric, without pickling anything."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (bytes, bytearray, str)):
        return len(value)
    if isinstance(value, (tuple, list)):
        return sum(approx_nbytes(v) for v in value)
    if isinstance(value, dict):
        return sum(approx_nbytes(v) for v in value.values())
    return 8


class Keyed(KeyedModelHandler):
    """``KeyedModelHandler`` whose batch size in bytes (a RunInference metric) is counted from array
    sizes: Beam's default pickles the keys, here whole page images and regions (about 2 ms a page)."""

    def get_num_bytes(self, batch: Sequence[tuple[Any, Any]]) -> int:
        return sum(approx_nbytes(key) for key, _ in batch) + self._unkeyed.get_num_bytes([v for _, v in batch])


class _CardModelHandler(ModelHandler[np.ndarray, PredictionResult, torch.nn.Module]):
    """Loads ``(model, card)`` with ``_load`` on the resolved device; subclasses implement ``_infer``."""

    NAME = "model"

    def __init__(self, weights_path: str | None = None, device: str = "auto", max_batch_size: int = 32,
                 min_batch_size: int = 1, threads: int = 0) -> None:
        if not 1 <= min_batch_size <= max_batch_size:
            raise ValueError(f"batch sizes must satisfy 1 <= min <= max, got {min_batch_size}, {max_batch_size}")
        if threads < 0:
            raise ValueError(f"threads must be >= 0 (0 = torch's default), got {threads}")
        super().__init__(min_batch_size=min_batch_size, max_batch_size=max_batch_size)
        self._weights_path = weights_path
        self._device_name = device
        self._threads = threads
        self._device: torch.device | None = None

    def _load(self, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
        raise NotImplementedError(type(self))

    def _infer(self, model: torch.nn.Module, batch: Sequence[np.ndarray], device: torch.device) -> list:
        raise NotImplementedError(type(self))

    def load_model(self) -> torch.nn.Module:
        if self._threads:  # per worker process: a local multi-processing run shares the cores
            torch.set_num_threads(self._threads)
        self._device = resolve_device(self._device_name)
        model, card = self._load(self._device)
        model.sigaudit_card = card  # the card travels with the model (thresholds, input size)
        LOGGER.info("loaded %s %s on %s", self.NAME, card.get("model_version"), self._device)
        return model

    def run_inference(self, batch: Sequence[np.ndarray], model: torch.nn.Module,
                      inference_args: dict[str, Any] | None = None) -> Iterable[PredictionResult]:
        if not batch:
            return []
        parameter = next(model.parameters(), None)
        device = self._device or (parameter.device if parameter is not None else torch.device("cpu"))
        outputs = self._infer(model, batch, device)
        return [PredictionResult(None, output) for output in outputs]

    def get_num_bytes(self, batch: Sequence[np.ndarray]) -> int:
        return sum(int(example.nbytes) for example in batch)

    def get_metrics_namespace(self) -> str:
        return f"sigaudit_{self.NAME}"


class EmbedderHandler(_CardModelHandler):
    """SigNet embeddings of preprocessed signatures: ``(155, 220) float32`` in, ``(D,) float32`` out."""

    NAME = "embedder"

    def _load(self, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
        return load_embedder(self._weights_path, device=device)

    def _infer(self, model: torch.nn.Module, batch: Sequence[np.ndarray], device: torch.device) -> list:
        return list(embed_batch(model, np.stack(batch).astype(np.float32, copy=False), device))


class DetectorHandler(_CardModelHandler):
    """Signature boxes of prepared pages: a tuple of ``(S, S) float32``, one per view size of the card
    (``models.detect.prepare_views``), in; ``list[Box]`` (page coordinates) out."""

    NAME = "detector"

    def _load(self, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
        return load_detector(self._weights_path, device=device)

    def _infer(self, model: torch.nn.Module, batch: Sequence[tuple[np.ndarray, ...]], device: torch.device) -> list:
        return detect_batch(model, stack_views(list(batch)), model.sigaudit_card, device)

    def get_num_bytes(self, batch: Sequence[tuple[np.ndarray, ...]]) -> int:
        return sum(int(view.nbytes) for example in batch for view in example)


class CleanerHandler(_CardModelHandler):
    """CycleGAN A->B cleaning of crops: ``(h, w) uint8`` in, the same size out (bucketed, never distorted)."""

    NAME = "cleaner"

    def _load(self, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
        return load_cleaner(self._weights_path, device=device)

    def _infer(self, model: torch.nn.Module, batch: Sequence[np.ndarray], device: torch.device) -> list:
        return clean_images(model, list(batch), device, batch_size=len(batch), **cleaning_options(model.sigaudit_card))
