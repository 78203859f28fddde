"""models.hog.GradientHistogram and models.attach_hog: shapes, invariances, the reference histogram, scaling."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from models.attach_hog import hog_scale, with_hog
from models.data import read_manifest
from models.hog import GradientHistogram
from models.signet import build_embedder
from models.weights import load_embedder, save_embedder
from transforms.demo_corpus import write_signature_manifest
from transforms.preprocess import preprocess_signature


def _canvas(draw) -> torch.Tensor:
    img = np.zeros((155, 220), np.uint8)
    draw(img)
    return torch.from_numpy(img.astype(np.float32) / 255)[None, None]


def _numpy_hog(img: np.ndarray, grid=(4, 6), bins=12) -> np.ndarray:
    """A plain numpy/OpenCV version: the same cells over the ink box, the same blur and Sobel kernels."""
    ys, xs = np.nonzero(img > 12 / 255)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    f = cv2.GaussianBlur(img, (3, 3), 0.8, borderType=cv2.BORDER_REFLECT_101)
    dx = cv2.Sobel(f, cv2.CV_32F, 1, 0, borderType=cv2.BORDER_REFLECT_101)
    dy = cv2.Sobel(f, cv2.CV_32F, 0, 1, borderType=cv2.BORDER_REFLECT_101)
    mag, ang = np.hypot(dx, dy), np.mod(np.arctan2(dy, dx), np.pi)
    b = np.minimum((ang * bins / np.pi).astype(int), bins - 1)
    h = np.zeros((grid[0] * grid[1], bins))
    for y in range(y0, y1):
        for x in range(x0, x1):
            cell = ((y - y0) * grid[0] // (y1 - y0)) * grid[1] + (x - x0) * grid[1] // (x1 - x0)
            h[cell, b[y, x]] += mag[y, x]
    h /= h.sum(1, keepdims=True) + 1e-3
    return np.sqrt(h).ravel()


def test_shape_and_unit_cells():
    x = _canvas(lambda im: cv2.putText(im, "Ab", (30, 110), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 3, 255, 4))
    out = GradientHistogram().eval()(x)
    assert out.shape == (1, 4 * 6 * 12) and out.dtype == torch.float32
    cells = out.view(24, 12) ** 2  # each cell's histogram sums to 1 (or 0 where it holds no stroke)
    sums = cells.sum(1)
    assert torch.all(((sums - 1).abs() < 1e-2) | (sums < 1e-2)) and (sums > 0.5).sum() >= 12


def test_matches_a_plain_numpy_reference():
    rng = np.random.default_rng(3)
    img = np.zeros((155, 220), np.float32)
    for _ in range(5):  # curved strokes of several darknesses, as a preprocessed signature holds
        c, axes = rng.integers([40, 40], [180, 115]), rng.integers([10, 8], [60, 40])
        cv2.ellipse(img, (int(c[0]), int(c[1])), (int(axes[0]), int(axes[1])), float(rng.uniform(0, 180)), 0,
                    float(rng.uniform(90, 300)), float(rng.uniform(0.4, 1.0)), 3)
    img = cv2.GaussianBlur(img, (5, 5), 1.2)  # antialiased: few gradients exactly on a bin edge
    got = GradientHistogram()(torch.from_numpy(img)[None, None]).numpy()[0]
    want = _numpy_hog(img)
    # float32 torch and OpenCV round differently where a gradient lies on a bin edge: compare the whole vector
    assert np.linalg.norm(got - want) < 0.05 * np.linalg.norm(want)


def test_direction_sensitive_and_contrast_invariant():
    g = GradientHistogram()
    text = _canvas(lambda im: cv2.putText(im, "Wmn", (10, 100), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 2.5, 255, 4))
    assert torch.dist(g(text), g(text * 0.5)) < 1e-2  # a lighter pen: the same directions
    horizontal = _canvas(lambda im: [cv2.line(im, (20, y), (200, y), 255, 2) for y in range(20, 140, 8)])
    vertical = _canvas(lambda im: [cv2.line(im, (x, 20), (x, 140), 255, 2) for x in range(20, 200, 8)])
    assert torch.dist(g(horizontal), g(vertical)) > 3.0


def test_follows_the_ink_box_not_the_canvas():
    g = GradientHistogram()
    left = _canvas(lambda im: cv2.putText(im, "Zy", (5, 100), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 2, 255, 3))
    right = torch.roll(left, shifts=60, dims=3)  # the same strokes elsewhere on the canvas
    assert torch.dist(g(left), g(right)) < 1e-4


def test_blank_input_gives_zeros_and_bad_shapes_raise():
    g = GradientHistogram()
    assert torch.count_nonzero(g(torch.zeros(2, 1, 155, 220))) == 0
    with pytest.raises(ValueError, match="input must be"):
        g(torch.zeros(1, 1, 100, 100))
    with pytest.raises(ValueError, match="grid"):
        GradientHistogram(grid=(0, 3))
    with pytest.raises(ValueError, match="bins"):
        GradientHistogram(bins=1)


def test_scale_is_saved_and_the_only_state():
    g = GradientHistogram(scale=0.25)
    assert list(g.state_dict()) == ["scale"]
    x = _canvas(lambda im: cv2.circle(im, (110, 77), 40, 255, 3))
    assert torch.allclose(g(x), GradientHistogram(scale=1.0)(x) * 0.25)


def test_batch_equals_one_by_one():
    g = GradientHistogram()
    xs = torch.cat([_canvas(lambda im, r=r: cv2.circle(im, (110, 77), r, 255, 2)) for r in (10, 30, 60)])
    together = g(xs)
    alone = torch.cat([g(xs[i : i + 1]) for i in range(3)])
    assert torch.allclose(together, alone, atol=1e-6)


def test_with_hog_adds_squared_distances_and_round_trips(tmp_path):
    torch.manual_seed(0)
    signet = build_embedder("signet_s4x2").eval()
    model = with_hog(signet, 0.5).eval()
    x = torch.rand(2, 1, 155, 220)
    with torch.no_grad():
        a, b = signet(x), model(x)
    assert b.shape == (2, 256 + 288) and torch.allclose(b[:, :256], a)
    d2 = torch.sum((b[0] - b[1]) ** 2)
    h = GradientHistogram(scale=0.5)(x)
    assert math.isclose(float(d2), float(torch.sum((a[0] - a[1]) ** 2) + torch.sum((h[0] - h[1]) ** 2)), rel_tol=1e-4)
    path = save_embedder(model, {"arch": "signet_s4x2_hog"}, tmp_path / "w.safetensors")
    loaded, card = load_embedder(path)
    assert card["arch"] == "signet_s4x2_hog" and float(loaded.members[2].scale) == 0.5
    with torch.no_grad():
        assert torch.allclose(loaded(x), b, atol=1e-5)


def test_hog_scale_equalises_the_median_genuine_distances(tmp_path):
    rows = read_manifest(write_signature_manifest(tmp_path / "data", n_writers=3, n_genuine=4, height=50))
    torch.manual_seed(0)
    signet = build_embedder("signet_s4x2").eval()
    scale, medians = hog_scale(signet, rows, 2, "centroid", weight=2.0, batch_size=8)
    assert medians["signet"] > 0 and medians["gradient_histogram"] > 0
    assert math.isclose(scale, 2.0 * medians["signet"] / medians["gradient_histogram"], rel_tol=1e-6)
    with pytest.raises(ValueError, match="weight"):
        hog_scale(signet, rows, 2, "centroid", weight=0)


def test_real_signature_preprocessed_features_are_finite():
    img = np.full((120, 300), 235, np.uint8)
    cv2.putText(img, "Jones", (10, 90), cv2.FONT_HERSHEY_SCRIPT_COMPLEX, 2.5, 30, 3)
    x = torch.from_numpy(preprocess_signature(img))[None, None]
    out = GradientHistogram()(x)
    assert torch.isfinite(out).all() and float(out.abs().sum()) > 1


def test_attach_hog_cli_writes_a_loadable_card(tmp_path):
    from models.attach_hog import main
    from models.export import file_sha256

    manifest = write_signature_manifest(tmp_path / "data", n_writers=3, n_genuine=4, height=50)
    writers = sorted({s.writer for s in read_manifest(manifest)})
    torch.manual_seed(0)
    base = save_embedder(build_embedder("signet_s4x2").eval(),
                         {"arch": "signet_s4x2", "model_version": "signet_s4x2-test", "storage_dtype": "float16",
                          "data": {"manifest": str(manifest), "train_writers": writers},
                          "validation": {"references_per_writer": 2}, "score": "centroid distance"},
                         tmp_path / "base.safetensors", torch.float16)
    out = tmp_path / "hog.safetensors"
    assert main(["--weights", str(base), "--out", str(out)]) == 0
    model, card = load_embedder(out)
    assert card["arch"] == "signet_s4x2_hog" and card["weights_sha256"] == file_sha256(out)
    assert card["model_version"].startswith("signet_s4x2_hog-") and card["embedding_dim"] == 256 + 288
    assert card["gradient_histogram"]["signet_model_version"] == "signet_s4x2-test"
    assert math.isclose(float(model.members[2].scale), card["gradient_histogram"]["scale"], rel_tol=1e-3)  # float16
    assert card["score"].startswith("centroid distance; plus")
    with pytest.raises(SystemExit, match="expected 'signet_s4x2'"):
        main(["--weights", str(out), "--out", str(tmp_path / "again.safetensors")])
