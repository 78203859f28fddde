"""benchmarks/colour_dropout.py: its readings and its refusals (the measurement itself needs ../shared)."""
from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import load_benchmark
from transforms.noise import add_colour_stamp

colour_dropout = load_benchmark("colour_dropout")


def test_the_readings_are_the_pipeline_s_and_only_the_dropout_removes_the_seal() -> None:
    assert set(colour_dropout.READINGS) == {"luminance", "red_dropout"}
    img = np.full((80, 160), 255, np.uint8)
    img[38:42, 10:150] = 25
    rgb = add_colour_stamp(img, np.random.default_rng(0))
    ink = {name: int((read(rgb) < 128).sum()) for name, read in colour_dropout.READINGS.items()}
    assert ink["red_dropout"] == int((img < 128).sum()) < ink["luminance"]


def test_refuses_bad_arguments_and_a_missing_manifest(tmp_path) -> None:
    with pytest.raises(SystemExit, match="no manifest at"):
        colour_dropout.main(["--manifest", str(tmp_path / "none.csv")])
    with pytest.raises(SystemExit):
        colour_dropout.main(["--manifest", str(tmp_path / "none.csv"), "--references-per-writer", "0"])
