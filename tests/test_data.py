"""Manifest reading, writer-disjoint splits, augmentation and writer x sample batches."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.data import (
    BatchSpec,
    Sample,
    WriterBatchSampler,
    augment,
    load_page_copies,
    make_batch,
    read_manifest,
    signer_and_text,
    split_writers,
)
from transforms.synth_signature import draw_signature, make_style


def rows(n_writers: int, dataset: str, n_gen: int = 6, n_forged: int = 2) -> list[Sample]:
    out = []
    for w in range(n_writers):
        out += [Sample(Path(f"{dataset}{w}/g{i}"), f"{dataset}{w}/g{i}", f"{dataset}{w}", "genuine", dataset)
                for i in range(n_gen)]
        out += [Sample(Path(f"{dataset}{w}/f{i}"), f"{dataset}{w}/f{i}", f"{dataset}{w}", "forged", dataset)
                for i in range(n_forged)]
    return out


def test_read_manifest(tmp_path):
    (tmp_path / "m.csv").write_text("path,writer,label,extra\na/1.png,w1,genuine,x\na/2.png,w1,forged,y\n")
    got = read_manifest(tmp_path / "m.csv")
    assert [s.label for s in got] == ["genuine", "forged"]
    assert got[0].path == tmp_path / "a/1.png" and got[0].rel_path == "a/1.png" and got[0].dataset == ""
    (tmp_path / "bad.csv").write_text("path,writer,label\na.png,w,fake\n")
    with pytest.raises(ValueError, match="fake"):
        read_manifest(tmp_path / "bad.csv")
    (tmp_path / "cols.csv").write_text("path,label\na.png,genuine\n")
    with pytest.raises(ValueError, match="writer"):
        read_manifest(tmp_path / "cols.csv")


def test_split_is_writer_disjoint_seeded_and_per_dataset():
    samples = rows(10, "a") + rows(20, "b", n_forged=0)
    train, val = split_writers(samples, 0.2, seed=3)
    assert not set(train) & set(val) and len(train) + len(val) == 30
    assert sum(w.startswith("a") for w in val) == 2 and sum(w.startswith("b") for w in val) == 4
    assert split_writers(samples, 0.2, seed=3) == (train, val)
    assert split_writers(samples, 0.2, seed=4) != (train, val)
    with pytest.raises(ValueError, match="val_fraction"):
        split_writers(samples, 1.0, seed=0)


def test_sampler_groups_writers_and_is_a_function_of_the_step():
    samples = rows(6, "a") + rows(6, "b", n_forged=0)
    writers = sorted({s.writer for s in samples})
    sampler = WriterBatchSampler(samples, writers, BatchSpec(writers=4, genuine=3, forged=2), seed=0)
    batch = sampler.batch(7).indices
    assert batch == sampler.batch(7).indices and batch != sampler.batch(8).indices
    assert sampler.batch(7).impostor_of == [""] * len(batch)
    chosen = {samples[i].writer for i in batch}
    assert len(chosen) == 4 and sum(w.startswith("a") for w in chosen) == 2
    assert sum(samples[i].label == "forged" for i in batch) == 2 * 2
    assert len(batch) == 4 * 3 + 2 * 2


def test_make_batch_and_augment():
    samples = rows(2, "a", n_gen=2, n_forged=1)
    cache = np.zeros((len(samples), 155, 220), np.uint8)
    cache[:, 60:90, 50:170] = 255
    x, writers, forged = make_batch(cache, samples, [0, 2, 5], {"a0": 0, "a1": 1}, np.random.default_rng(0))
    assert x.shape == (3, 1, 155, 220) and writers.tolist() == [0, 0, 1] and forged.tolist() == [False, True, True]
    img = cache[0].astype(np.float32) / 255
    out = augment(img, np.random.default_rng(1))
    assert out.shape == img.shape and out.dtype == np.float32 and 0 <= out.min() and out.max() <= 1
    assert not np.array_equal(out, img) and abs(out.sum() - img.sum()) < 0.5 * img.sum()


def test_chinese_signer_is_person_and_name(tmp_path):
    """cross_media_chinese: every person writes the same ten names in file order, per medium."""
    assert signer_and_text("cross_media_chinese", "zh1", "cross_media_chinese/experiment/1/13.png") == \
        ("zh1/name03", "cross_media_chinese/name03")
    assert signer_and_text("cross_media_chinese", "zh1", "x/1/40.jpg")[0] == "zh1/name10"
    assert signer_and_text("cross_media_chinese", "zh1", "x/1/1.jpg")[0] == "zh1/name01"
    assert signer_and_text("sigcomp2011_dutch", "d1", "x/1/13.png") == ("d1", "")
    with pytest.raises(ValueError, match="a.png"):
        signer_and_text("cross_media_chinese", "zh1", "x/a.png")
    (tmp_path / "m.csv").write_text("path,dataset,writer,label\nc/1/3.png,cross_media_chinese,z,genuine\n"
                                    "d/1.png,sigcomp2011_dutch,d,genuine\n")
    z, d = read_manifest(tmp_path / "m.csv")
    assert (z.writer, z.signer, z.text) == ("z", "z/name03", "cross_media_chinese/name03")
    assert (d.writer, d.signer, d.text) == ("d", "d", "")


def chinese_rows(persons: int, names: int = 3, media: int = 2) -> list[Sample]:
    out = []
    for p in range(persons):
        for k in range(names * media):
            rel = f"c/{p}/{k + 1}.png"
            signer, text = f"p{p}/n{k % names}", f"t{k % names}"
            out.append(Sample(Path(rel), rel, f"p{p}", "genuine", "c", signer, text))
    return out


def test_sampler_draws_same_text_impostors_as_skilled_negatives():
    samples = rows(4, "a") + chinese_rows(5)
    persons = sorted({s.writer for s in samples})
    spec = BatchSpec(writers=4, genuine=2, forged=2, forgery_writer_share=0.5)
    sampler = WriterBatchSampler(samples, persons, spec, seed=0, impostors=True)
    for step in range(20):
        b = sampler.batch(step)
        imp = [(i, t) for i, t in zip(b.indices, b.impostor_of, strict=True) if t]
        assert len(imp) == 2 * 2  # two signers without forgeries, two impostors each
        for i, target in imp:
            assert samples[i].signer != target and samples[i].text == samples[[j for j in b.indices
                                                                                  if samples[j].signer == target][0]].text
    plain = WriterBatchSampler(samples, persons, spec, seed=0, impostors=False)
    assert all(not t for t in plain.batch(3).impostor_of)
    # only training persons: impostors never come from outside the split
    some = WriterBatchSampler(samples, persons[:6], spec, seed=0, impostors=True)
    for step in range(10):
        assert all(samples[i].writer in persons[:6] for i in some.batch(step).indices)


def test_make_batch_marks_impostors_as_forgeries_of_their_target():
    samples = chinese_rows(2, names=1, media=2)  # p0/n0 x2, p1/n0 x2
    cache = np.zeros((len(samples), 155, 220), np.uint8)
    index = {"p0/n0": 0, "p1/n0": 1}
    _, writers, forged = make_batch(cache, samples, [0, 1, 2], index, None, ["", "", "p0/n0"])
    assert writers.tolist() == [0, 0, 0] and forged.tolist() == [False, False, True]
    with pytest.raises(ValueError, match="impostor_of"):
        make_batch(cache, samples, [0, 1], index, None, [""])


def test_page_copies_are_seeded_and_replace_images_at_the_share(tmp_path):
    paths = []
    for i in range(3):
        img = draw_signature(make_style(np.random.default_rng(i)), np.random.default_rng(i), height=300)
        paths.append(tmp_path / f"s{i}.png")
        cv2.imwrite(str(paths[-1]), img)
    samples = [Sample(p, p.name, f"w{i}", "genuine", "d") for i, p in enumerate(paths)]
    copies = load_page_copies(samples, 2, seed=5)
    assert copies.shape == (2, 3, 155, 220) and copies.dtype == np.uint8
    assert np.array_equal(copies, load_page_copies(samples, 2, seed=5))
    assert not np.array_equal(copies[0], copies[1]) and (copies.reshape(6, -1).max(axis=1) > 100).all()
    cache = np.zeros((3, 155, 220), np.uint8)
    marked = np.full((2, 3, 155, 220), 200, np.uint8)  # copies told apart from the blank cache by their level
    index = {"w0": 0, "w1": 1, "w2": 2}
    x, _, _ = make_batch(cache, samples, [0, 1, 2], index, None, None, marked, 1.0)
    assert x.abs().sum() == 0  # without an rng there is no augmentation, page copies included
    rng = np.random.default_rng(0)

    def drawn(share: float, n: int) -> int:
        x, _, _ = make_batch(cache, samples, [0, 1, 2] * n, index, rng, None, marked, share)
        return int((x.flatten(1).mean(1) > 0.3).sum())

    assert drawn(1.0, 20) == 60 and drawn(0.0, 20) == 0 and 30 <= drawn(0.5, 40) <= 90
    with pytest.raises(ValueError, match="page_cache"):
        make_batch(cache[:2], samples[:2], [0], index, rng, None, marked, 0.5)
    with pytest.raises(ValueError, match="copies"):
        load_page_copies(samples, 0, seed=5)


def test_sampler_adds_synthetic_forgeries_from_each_signers_own_genuine_images():
    samples = rows(4, "a", n_gen=8) + rows(4, "b", n_forged=0, n_gen=8)
    writers = sorted({s.writer for s in samples})
    plain = WriterBatchSampler(samples, writers, BatchSpec(writers=4, genuine=3, forged=2), seed=0)
    synth = WriterBatchSampler(samples, writers, BatchSpec(writers=4, genuine=3, forged=2, synthetic=2), seed=0)
    assert plain.batch(7).warp == []  # off: nothing marked
    for step in range(10):
        b = synth.batch(step)
        assert len(b.warp) == len(b.indices) == 4 * 3 + 2 * 2 + 4 * 2 and sum(b.warp) == 4 * 2
        for i, t, w in zip(b.indices, b.impostor_of, b.warp, strict=True):
            if w:  # a genuine image of the signer it forges, not one of that signer's chosen genuine images
                assert samples[i].label == "genuine" and samples[i].signer == t
                chosen = [j for j, u, v in zip(b.indices, b.impostor_of, b.warp, strict=True)
                          if not v and not u and samples[j].signer == t and samples[j].label == "genuine"]
                assert i not in chosen
    # the first signer's draws are those of the plain sampler: the option only adds draws after them
    assert synth.batch(3).indices[:5] == plain.batch(3).indices[:5]
    with pytest.raises(ValueError, match="synthetic"):
        WriterBatchSampler(samples, writers, BatchSpec(synthetic=-1), seed=0)


def test_make_batch_warps_the_marked_images_into_forgeries_of_their_signer():
    samples = rows(1, "a", n_gen=3, n_forged=0)
    cache = np.zeros((3, 155, 220), np.uint8)
    cache[:, 60:90, 40:180] = 255  # a bar of ink
    index = {"a0": 0}
    x, writers, forged = make_batch(cache, samples, [0, 1, 2], index, None, ["", "", "a0"], warp=[False, False, True],
                                    warp_rng=np.random.default_rng(0))
    assert writers.tolist() == [0, 0, 0] and forged.tolist() == [False, False, True]
    assert torch.equal(x[0], x[1]) and not torch.equal(x[0], x[2])
    again, _, _ = make_batch(cache, samples, [0, 1, 2], index, None, ["", "", "a0"], warp=[False, False, True],
                             warp_rng=np.random.default_rng(0))
    assert torch.equal(x, again)
    for bad in ({"warp": [False, True]}, {"warp": [False, False, True]}):  # wrong length / no rng
        with pytest.raises(ValueError, match="warp"):
            make_batch(cache, samples, [0, 1, 2], index, None, ["", "", "a0"], **bad)
    with pytest.raises(ValueError, match="impostor_of target"):  # a warped image must forge someone
        make_batch(cache, samples, [0, 1, 2], index, None, None, warp=[False, False, True],
                   warp_rng=np.random.default_rng(0))
