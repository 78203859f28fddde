"""Cleaner weights roundtrip (safetensors + card), size buckets, a hand-set identity generator."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.clean import clean_images, default_cleaner_path, load_cleaner, save_cleaner, update_card
from models.cyclegan import ResnetGenerator, build_generator


def identity_generator() -> ResnetGenerator:
    """A 0-block, ngf-1 generator set by hand to pass channel 0 through: every conv a centre tap from
    channel 0 to channel 0, norms and ReLUs replaced by identities, tanh by hardtanh."""
    g = ResnetGenerator(ngf=1, n_blocks=0)
    for name, m in list(g.model.named_children()):
        if isinstance(m, (torch.nn.InstanceNorm2d, torch.nn.ReLU)):
            setattr(g.model, name, torch.nn.Identity())
        elif isinstance(m, torch.nn.Tanh):
            setattr(g.model, name, torch.nn.Hardtanh())
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                m.weight.zero_()
                m.bias.zero_()
                k = m.weight.shape[-1]
                m.weight[0, 0, k // 2, k // 2] = 1.0
    return g.eval()


def test_hand_set_generator_passes_sampled_pixels():
    g = identity_generator()
    img = np.random.default_rng(0).integers(0, 256, (37, 61), dtype=np.uint8)
    out = clean_images(g, [img], max_side=None)[0]
    # stride-2 centre taps keep every other pixel, the transposed ones put it back at even positions
    # (zeros, i.e. mid gray 127/128, elsewhere): every 4th pixel comes back exactly
    assert out.shape == img.shape
    np.testing.assert_array_equal(out[::4, ::4], img[::4, ::4])
    assert np.all(np.abs(out[1::4, 1::4].astype(int) - 127) <= 1)


def test_roundtrip_gives_the_same_output(tmp_path):
    torch.manual_seed(0)
    model = build_generator("resnet_4blocks_ngf8").eval()
    path = save_cleaner(model, {"arch": "resnet_4blocks_ngf8", "model_version": "t-1", "max_side": 64},
                        tmp_path / "cyclegan_t.safetensors")
    loaded, card = load_cleaner(path)
    assert card["model_version"] == "t-1" and not loaded.training
    imgs = [np.random.default_rng(1).integers(0, 256, (30, 70), dtype=np.uint8)]
    np.testing.assert_array_equal(clean_images(loaded, imgs)[0], clean_images(model, imgs)[0])
    raw = path.read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert "model.stem_conv.weight" in header and not raw.startswith(b"\x80")
    assert update_card(path, "evaluation", {"psnr": 1.0})["evaluation"] == {"psnr": 1.0}
    assert load_cleaner(path)[1]["evaluation"]["psnr"] == 1.0


def test_load_errors(tmp_path):
    with pytest.raises(ValueError, match="safetensors"):
        load_cleaner(tmp_path / "m.pt")
    with pytest.raises(ValueError, match="not found"):
        load_cleaner(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="arch"):
        save_cleaner(build_generator("resnet_4blocks_ngf8"), {}, tmp_path / "x.safetensors")
    assert default_cleaner_path("x").name == "cyclegan_x.safetensors"
    with pytest.raises(ValueError, match="plain file stem"):
        default_cleaner_path("../x")


def test_buckets_keep_every_size_and_order():
    model = build_generator("resnet_4blocks_ngf8").eval()
    rng = np.random.default_rng(0)
    shapes = [(30, 70), (150, 400), (31, 69), (8, 300), (401, 90), (5, 5), (30, 70)]
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in shapes]
    out = clean_images(model, imgs, max_side=256, batch_size=2)
    assert [o.shape for o in out] == shapes and all(o.dtype == np.uint8 for o in out)
    # same image alone or in a bucket with others: same size back, close values (instance norm sees the pad)
    alone = clean_images(model, [imgs[0]], max_side=256)[0]
    assert np.abs(alone.astype(int) - out[0].astype(int)).mean() < 8


def test_bad_inputs():
    model = build_generator("resnet_4blocks_ngf8").eval()
    with pytest.raises(ValueError, match="image 1"):
        clean_images(model, [np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.uint8)])
    with pytest.raises(ValueError, match="batch_size"):
        clean_images(model, [], batch_size=0)
    assert clean_images(model, []) == []


def test_remove_only_never_darkens():
    model = build_generator("resnet_4blocks_ngf8").eval()
    rng = np.random.default_rng(2)
    imgs = [rng.integers(0, 256, s, dtype=np.uint8) for s in [(30, 70), (300, 90)]]
    free = clean_images(model, imgs, max_side=64)
    kept = clean_images(model, imgs, max_side=64, remove_only=True)
    for img, f, k in zip(imgs, free, kept, strict=True):
        assert np.all(k >= img) and np.array_equal(k, np.maximum(f, img))


def test_removal_upscale_keeps_full_resolution_strokes_the_generator_left():
    img = np.full((200, 400), 255, np.uint8)
    img[100, 20:380] = 0  # a one-pixel stroke: shrunk 4x and resized back it would come out light grey
    g = identity_generator()
    by_image = clean_images(g, [img], max_side=100, remove_only=True)[0]
    by_removal = clean_images(g, [img], max_side=100, remove_only=True, upscale="removal")[0]
    assert int(by_image[100, 20:380].min()) > 60
    assert int(np.abs(by_removal.astype(int) - img).max()) <= 3
    with pytest.raises(ValueError, match="upscale"):
        clean_images(g, [img], upscale="bicubic")


def test_removal_share_takes_away_what_the_generator_took_away():
    from models.clean import _remove_share, cleaning_options
    small = np.array([[0, 100], [200, 255]], np.uint8)
    cleaned = np.array([[255, 100], [255, 255]], np.uint8)  # left column wiped, right kept
    full = np.kron(small, np.ones((2, 2), np.uint8))
    out = _remove_share(small, cleaned, full)
    assert out.shape == full.shape and np.all(out >= full)
    assert out[0, 0] == 255 and out[3, 3] == 255 and out[0, 3] == 100  # corners: wiped, paper, kept
    assert cleaning_options({}) == {"max_side": 256, "remove_only": False, "upscale": "image", "remove_lines": None,
                                    "restore_ink_below": None, "removal_remap": None}
    assert cleaning_options({"remove_lines": 0.6})["remove_lines"] == 0.6
    assert cleaning_options({"max_side": 128, "remove_only": True, "upscale": "removal"})["upscale"] == "removal"
    with pytest.raises(ValueError, match="upscale"):
        cleaning_options({"upscale": "nearest"})


def test_remove_lines_erases_the_ruled_line_before_the_generator():
    img = np.full((80, 300), 250, np.uint8)
    img[20:60, 140:143] = 0  # a vertical stroke crossing the line
    img[50:52, :] = 10  # the ruled line across the crop
    g = identity_generator()
    as_is = clean_images(g, [img], max_side=None, remove_only=True)[0]
    lined = clean_images(g, [img], max_side=None, remove_only=True, remove_lines=0.6)[0]
    assert as_is[50:52, :100].max() <= 200  # the identity generator leaves the line (half-tone after its strides)
    assert lined[50:52, :100].min() >= 240 and lined[50:52, 200:].min() >= 240  # erased to the paper's level
    np.testing.assert_array_equal(lined[20:60, 140:143], as_is[20:60, 140:143])  # the crossing stroke stays


class _Lighten(torch.nn.Module):
    """A stand-in generator that lightens every pixel by ``step`` (of the [-1, 1] range)."""

    def __init__(self, step: float) -> None:
        super().__init__()
        self.step = step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + self.step, -1.0, 1.0)


def _signature_like() -> np.ndarray:
    img = np.full((60, 160), 245, np.uint8)  # grey paper
    img[20:40, 30:130] = 20  # the ink
    return img


def test_removed_ink_share_counts_the_ink_not_the_paper():
    from models.clean import removed_ink_share
    img = _signature_like()
    whitened_paper = np.where(img > 128, 255, img).astype(np.uint8)
    assert removed_ink_share(img, whitened_paper) == 0.0  # the grey paper whitened: no ink removed
    half = img.copy()
    half[20:40, 30:80] = 255  # half of the ink wiped
    assert removed_ink_share(img, half) == pytest.approx(0.5)
    assert removed_ink_share(img, np.full_like(img, 255)) == pytest.approx(1.0)
    assert removed_ink_share(np.full((5, 5), 255, np.uint8), np.full((5, 5), 255, np.uint8)) == 0.0
    with pytest.raises(ValueError, match="shapes differ"):
        removed_ink_share(img, img[:10])


def test_restore_ink_puts_back_only_the_ink():
    from models.clean import restore_ink
    img = _signature_like()
    after = np.full_like(img, 255)  # everything wiped, the grey paper whitened
    out = restore_ink(img, after)
    np.testing.assert_array_equal(out[20:40, 30:130], img[20:40, 30:130])  # the ink as it came
    assert out[:20].min() == 255 and out[40:].min() == 255  # the paper keeps its cleaning
    with pytest.raises(ValueError, match="shapes differ"):
        restore_ink(img, after[:10])


def test_restore_ink_below_gives_back_the_ink_of_crops_the_cleaner_barely_touched():
    img = _signature_like()
    light = _Lighten(0.1).eval()  # takes about 5 % of the ink's darkness, lightens the paper too
    touched = clean_images(light, [img], max_side=None, remove_only=True)[0]
    assert not np.array_equal(touched[20:40, 30:130], img[20:40, 30:130])
    gated = clean_images(light, [img], max_side=None, remove_only=True, restore_ink_below=0.08)[0]
    np.testing.assert_array_equal(gated[20:40, 30:130], img[20:40, 30:130])  # the ink back
    np.testing.assert_array_equal(gated[:20], touched[:20])  # the paper's cleaning kept
    np.testing.assert_array_equal(
        clean_images(light, [img], max_side=None, remove_only=True, restore_ink_below=0.02)[0], touched)
    wipe = _Lighten(2.0).eval()  # takes all of it: never given back
    assert clean_images(wipe, [img], max_side=None, restore_ink_below=0.5)[0].min() == 255
    with pytest.raises(ValueError, match="restore_ink_below"):
        clean_images(light, [img], restore_ink_below=1.5)


def test_cleaning_options_pass_the_cards_ink_gate():
    from models.clean import cleaning_options
    assert cleaning_options({})["restore_ink_below"] is None
    assert cleaning_options({"restore_ink_below": 0.04})["restore_ink_below"] == 0.04


def test_remap_removal_makes_each_pixels_removal_decisive():
    from models.clean import remap_removal
    before = np.array([[0, 0, 0, 100, 255]], np.uint8)
    # removed shares 0.2 (paled), 0.4 (half-way), 0.6 (mostly), 0.0 (kept), paper
    after = np.array([[51, 102, 153, 100, 255]], np.uint8)
    out = remap_removal(before, after, 0.3, 0.5)
    assert out[0, 0] == 0  # paled under low: its ink as it came
    assert abs(int(out[0, 1]) - 128) <= 1  # in the middle of (low, high): half its darkness taken
    assert out[0, 2] == 255  # mostly removed: entirely
    assert out[0, 3] == 100 and out[0, 4] == 255
    assert np.array_equal(remap_removal(before, before, 0.3, 0.5), before)  # nothing removed, nothing changed
    darker = np.zeros_like(before)
    assert np.array_equal(remap_removal(before, darker, 0.3, 0.5), before)  # darkening is never taken up
    with pytest.raises(ValueError, match="shapes differ"):
        remap_removal(before, after[:, :3], 0.3, 0.5)


def test_removal_remap_gives_the_paled_ink_back_and_finishes_what_the_generator_mostly_removed():
    img = _signature_like()
    light = _Lighten(0.1).eval()  # pales the ink by about 5 % of its darkness
    touched = clean_images(light, [img], max_side=None, remove_only=True)[0]
    assert touched[20:40, 30:130].min() > img[20:40, 30:130].max()
    kept = clean_images(light, [img], max_side=None, remove_only=True, removal_remap=(0.3, 0.5))[0]
    np.testing.assert_array_equal(kept[20:40, 30:130], img[20:40, 30:130])  # the paled ink as it came
    assert kept[:20].min() == 255  # the grey paper, whitened entirely (its whole darkness taken), stays so
    strong = _Lighten(1.0).eval()  # takes about half of the ink's darkness
    gone = clean_images(strong, [img], max_side=None, remove_only=True, removal_remap=(0.3, 0.5))[0]
    assert gone.min() == 255  # over high: removed entirely
    with pytest.raises(ValueError, match="removal_remap"):
        clean_images(light, [img], remove_only=True, removal_remap=(0.6, 0.4))
    with pytest.raises(ValueError, match="remove_only"):
        clean_images(light, [img], removal_remap=(0.3, 0.5))


def test_cleaning_options_pass_the_cards_removal_remap():
    from models.clean import cleaning_options
    assert cleaning_options({"removal_remap": [0.3, 0.5]})["removal_remap"] == (0.3, 0.5)
