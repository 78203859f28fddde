"""Shared test helpers: local Beam pipelines and the location of the real data."""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.runner import make_runner

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$SIGAUDIT_SHARED_DATA`` or ``<repo>/../shared/data`` (the real data is never in the repo)."""
    return Path(os.environ.get("SIGAUDIT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


def load_benchmark(name: str) -> ModuleType:
    """``benchmarks/<name>.py`` as a module (the benchmarks folder is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def local_pipeline(*args: str) -> beam.Pipeline:
    """A pipeline on the in-process FnApiRunner (no Prism download), as run_pipeline uses."""
    options = PipelineOptions(list(args))
    return beam.Pipeline(runner=make_runner(options), options=options)


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"{path} not found: the real data lives in ../shared/data beside the repo")
    return path
