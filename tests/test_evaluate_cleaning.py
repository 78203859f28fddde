"""PSNR / SSIM on hand-made images, query preparation, and the CLI on a tiny shipped-like cleaner."""
from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest
import torch

from models import evaluate
from models.clean import save_cleaner
from models.cyclegan import build_generator
from models.data import shared_data_dir
from models.evaluate_cleaning import psnr, query_images, ssim


def test_psnr_by_hand():
    a = np.zeros((10, 10), np.uint8)
    b = a.copy()
    assert psnr(a, b) == 100.0
    b[0, 0] = 10  # MSE = 100 / 100 = 1 -> 20 log10(255)
    assert psnr(b, a) == pytest.approx(20 * np.log10(255.0))
    c = np.full((4, 4), 255, np.uint8)  # MSE = 255^2 -> 0 dB
    assert psnr(c, np.zeros((4, 4), np.uint8)) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, c)


def test_ssim_by_hand():
    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (64, 64), dtype=np.uint8), (0, 0), 2)
    assert ssim(img, img) == pytest.approx(1.0)
    # a constant offset keeps structure and contrast: only the luminance term drops, a little
    brighter = np.clip(img.astype(int) + 10, 0, 255).astype(np.uint8)
    noisy = np.clip(img + rng.normal(0, 40, img.shape), 0, 255).astype(np.uint8)
    assert 0.9 < ssim(brighter, img) < 1.0
    assert ssim(noisy, img) < ssim(brighter, img)
    # inverted image: negative structure correlation
    assert ssim(255 - img, img) < 0.0
    assert ssim(noisy, img) == pytest.approx(ssim(img, noisy))


def test_query_images_noise_is_seeded_and_keeps_sizes(tmp_path):
    imgs = [np.full((40, 90), 250, np.uint8), np.full((33, 61), 240, np.uint8)]
    a, b = query_images(imgs, False, 3), query_images(imgs, False, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert [x.shape for x in a] == [(40, 90), (33, 61)]
    assert query_images(imgs, False, None)[0] is imgs[0]


def test_query_images_of_some_indices_get_the_noise_they_get_among_all():
    """Only the queries are made (the references are not), each with the draw it has in the whole list."""
    rng = np.random.default_rng(0)
    imgs = [rng.integers(200, 256, (30 + 5 * i, 70), dtype=np.uint8) for i in range(4)]
    every = query_images(imgs, False, 7)
    some = query_images(imgs, False, 7, indices=[3, 1])
    assert len(some) == 2 and np.array_equal(some[0], every[3]) and np.array_equal(some[1], every[1])
    assert query_images(imgs, False, 7, indices=[]) == []
    assert query_images(imgs, False, None, indices=(2,))[0] is imgs[2]
    with pytest.raises(ValueError, match="out of range"):
        query_images(imgs, False, 7, indices=[4])


def test_query_images_noise_kinds_are_those_asked_for():
    from transforms.noise import add_document_noise

    imgs = [np.full((60, 160), 250, np.uint8)]
    got = query_images(imgs, False, 5, noise_kinds=["line"])[0]
    assert np.array_equal(got, add_document_noise(imgs[0], np.random.default_rng([5, 0]), ["line"]))
    assert not np.array_equal(got, query_images(imgs, False, 5, noise_kinds=["stamp"])[0])


def _tiny_manifest(tmp_path):
    rng = np.random.default_rng(0)
    with (tmp_path / "m.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "writer", "label", "dataset"])
        for i in range(4):
            img = np.full((40, 100), 245, np.uint8)
            cv2.line(img, (10, 20 + i), (90, 15), 20, 2)
            img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(tmp_path / f"{i}.png"), img)
            w.writerow([f"{i}.png", f"w{i % 2}", "genuine", "d"])
    return tmp_path / "m.csv"


def test_cleaning_cli_on_a_tiny_model(tmp_path, capsys):
    manifest = _tiny_manifest(tmp_path)
    torch.manual_seed(0)
    weights = save_cleaner(build_generator("resnet_4blocks_ngf8").eval(),
                           {"arch": "resnet_4blocks_ngf8", "model_version": "tiny", "max_side": 64},
                           tmp_path / "cyclegan_tiny.safetensors")
    out = tmp_path / "fig.json"
    assert evaluate.main(["cleaning", "--manifest", str(manifest), "--weights", str(weights), "--split", "all",
                          "--json", str(out), "--record-card"]) == 0
    fig = json.loads(out.read_text())
    assert fig["n_images"] == 4 and fig["model_version"] == "tiny" and fig["max_side"] == 64
    for k in ("psnr_noisy", "psnr_cleaned", "ssim_noisy", "ssim_cleaned", "psnr_clean_input_cleaned"):
        assert np.isfinite(fig[k])
    assert fig["psnr_gain_db"] == pytest.approx(fig["psnr_cleaned"] - fig["psnr_noisy"], abs=1e-2)
    assert json.loads(weights.with_suffix(".json").read_text())["evaluation_cleaning"]["n_images"] == 4
    assert json.loads(capsys.readouterr().out)["n_images"] == 4


def test_shipped_cleaner_beats_noisy_input_on_real_signatures():
    data = shared_data_dir()
    if not (data / "signatures" / "manifest.csv").is_file():
        pytest.skip(f"{data} not found: the real data lives in ../shared/data beside the repo")
    from models.clean import clean_images, default_cleaner_path, load_cleaner
    from models.data import load_gray, read_manifest
    from transforms.noise import add_document_noise

    if not default_cleaner_path().is_file():
        pytest.skip(f"no shipped cleaner at {default_cleaner_path()}")
    model, card = load_cleaner()
    rows = sorted(read_manifest(data / "signatures" / "manifest.csv"), key=lambda s: s.rel_path)[::400][:8]
    clean = [load_gray(s.path) for s in rows]
    noisy = [add_document_noise(c, np.random.default_rng([7, i]), kinds=("line", "text", "stamp"))
             for i, c in enumerate(clean)]
    cleaned = clean_images(model, noisy, max_side=card["max_side"], remove_only=card.get("remove_only", False))
    gain = np.mean([psnr(c, t) - psnr(n, t) for c, n, t in zip(cleaned, noisy, clean, strict=True)])
    assert gain > 1.0, f"mean PSNR gain {gain:.2f} dB"  # 1.69 dB for cyclegan_default@step325
