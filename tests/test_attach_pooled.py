"""The pooled conv4 reading of SigNet members (models.signet.PooledConv) and its assembly (models.attach_pooled)."""
from __future__ import annotations

import math

import pytest
import torch
from safetensors.torch import load_file

from models.attach_hog import with_hog
from models.attach_pooled import pooled_from, set_pooled_scales
from models.data import read_manifest
from models.signet import EmbedderEnsemble, PooledConv, SigNetWithPooled, build_embedder
from models.weights import load_embedder, save_embedder
from transforms.demo_corpus import write_signature_manifest


def test_pooled_conv_reads_the_members_trunk_at_conv4():
    torch.manual_seed(0)
    member = build_embedder("signet_s4").eval()
    pooled = PooledConv(scale=2.0).eval()
    pooled.load_state_dict({k: v for k, v in member.state_dict().items() if k in pooled.state_dict()} | {
        "scale": torch.tensor(2.0)})
    x = torch.rand(3, 1, 155, 220)
    with torch.no_grad():
        maps = member.features[: list(dict(member.features.named_children())).index("relu4") + 1](x)
        out = pooled(x)
    assert out.shape == (3, 256 * 12) and pooled.embedding_dim == 256 * 12
    cells = torch.nn.functional.adaptive_avg_pool2d(maps, (3, 4)).sqrt()
    cells = cells / cells.norm(dim=1, keepdim=True)
    assert torch.allclose(out, 2.0 * torch.flatten(cells, 1), atol=1e-5)
    per_cell = out.reshape(3, 256, 12).norm(dim=1)
    assert torch.allclose(per_cell, torch.full_like(per_cell, 2.0), atol=1e-4)  # each cell unit length, times scale
    assert "head.fc1.weight" not in pooled.state_dict()
    with torch.no_grad():
        assert torch.all(pooled(torch.zeros(1, 1, 155, 220)) >= 0)  # a blank input stays finite
    with pytest.raises(ValueError, match="grid"):
        PooledConv(grid=(0, 4))
    with pytest.raises(ValueError, match="input must be"):
        pooled(torch.rand(1, 1, 100, 100))


def _source(tmp_path):
    torch.manual_seed(0)
    return with_hog(build_embedder("signet_s4x2").eval(), 0.5).eval()


def test_pooled_from_keeps_the_trunks_and_the_histogram(tmp_path):
    source = _source(tmp_path)
    model = pooled_from(source)
    for i in (0, 1):
        assert torch.equal(model.members[i].features.conv4.weight, source.members[i].features.conv4.weight)
        assert float(model.members[i].scale) == 1.0
    assert float(model.members[2].scale) == 0.5 and model.embedding_dim == 2 * 3072 + 288
    path = save_embedder(model, {"arch": "signet_s4x2_pool_hog"}, tmp_path / "p.safetensors")
    loaded, _ = load_embedder(path)
    x = torch.rand(2, 1, 155, 220)
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)
    with pytest.raises(ValueError, match="not one of"):
        pooled_from(build_embedder("signet_s4x2").eval())
    with pytest.raises(ValueError, match="3 members, the source 4"):
        pooled_from(with_hog(build_embedder("signet_s4x3").eval(), 0.5), "signet_s4x2_pool_hog")


def test_set_pooled_scales_gives_each_part_the_histograms_median(tmp_path):
    from models.attach_hog import median_genuine_distance
    from models.data import load_gray
    from models.embed import embed_images

    rows = read_manifest(write_signature_manifest(tmp_path / "data", n_writers=3, n_genuine=4, height=50))
    model = pooled_from(_source(tmp_path))
    with torch.no_grad():
        medians = set_pooled_scales(model, rows, 2, "centroid", batch_size=8)
    images = [load_gray(s.path) for s in rows]
    target = medians["gradient_histogram"]
    for i in (0, 1):
        assert float(model.members[i].scale) == pytest.approx(target / medians[f"pooled_member_{i}"], rel=1e-5)
        d = median_genuine_distance(rows, embed_images(model.members[i], images, 8), 2, "centroid")
        assert math.isclose(d, target, rel_tol=1e-4)


def test_attach_pooled_cli_writes_a_loadable_card(tmp_path):
    from models.attach_pooled import main
    from models.export import file_sha256

    manifest = write_signature_manifest(tmp_path / "data", n_writers=3, n_genuine=4, height=50)
    writers = sorted({s.writer for s in read_manifest(manifest)})
    base = save_embedder(_source(tmp_path), {"arch": "signet_s4x2_hog", "model_version": "signet_s4x2_hog-test",
                                             "storage_dtype": "float16",
                                             "data": {"manifest": str(manifest), "train_writers": writers},
                                             "validation": {"references_per_writer": 2}},
                         tmp_path / "base.safetensors", torch.float16)
    out = tmp_path / "pool.safetensors"
    assert main(["--weights", str(base), "--out", str(out)]) == 0
    model, card = load_embedder(out)
    assert card["arch"] == "signet_s4x2_pool_hog" and card["weights_sha256"] == file_sha256(out)
    assert card["embedding_dim"] == 2 * 3072 + 288 and card["pooled_conv4"]["source_model_version"] == "signet_s4x2_hog-test"
    assert [round(float(m.scale), 2) for m in model.members[:2]] == [round(s, 2) for s in card["pooled_conv4"]["scales"]]
    with pytest.raises(SystemExit, match="expected 'signet_s4x2_hog'"):
        main(["--weights", str(out), "--out", str(tmp_path / "again.safetensors")])


def test_signet_with_pooled_returns_the_members_head_and_its_pooled_maps():
    torch.manual_seed(0)
    member = build_embedder("signet_s4").eval()
    both = SigNetWithPooled(head_scale=0.5, pool_scale=3.0).eval()
    pooled = PooledConv(scale=3.0).eval()
    both.load_state_dict(member.state_dict() | {"head_scale": torch.tensor(0.5), "pool_scale": torch.tensor(3.0)})
    pooled.load_state_dict({k: v for k, v in member.state_dict().items() if k in pooled.state_dict()} | {
        "scale": torch.tensor(3.0)})
    x = torch.rand(3, 1, 155, 220)
    with torch.no_grad():
        out = both(x)
        assert out.shape == (3, 128 + 3072) and both.embedding_dim == 128 + 3072 and both.head_dim == 128
        assert torch.allclose(out[:, :128], 0.5 * member(x), atol=1e-5)
        assert torch.allclose(out[:, 128:], pooled(x), atol=1e-5)
    assert set(both.state_dict()) == set(member.state_dict()) | {"head_scale", "pool_scale"}
    with pytest.raises(ValueError, match="grid"):
        SigNetWithPooled(grid=(3, 0))
    with pytest.raises(ValueError, match="input must be"):
        both(torch.rand(1, 1, 100, 100))


def test_pooled_from_with_heads_keeps_every_weight(tmp_path):
    source = _source(tmp_path)
    model = pooled_from(source, "signet_s4x2_headpool_hog")
    for i in (0, 1):
        assert torch.equal(model.members[i].head.fc2.weight, source.members[i].head.fc2.weight)
        assert float(model.members[i].pool_scale) == 1.0 and float(model.members[i].head_scale) == 1.0
    x = torch.rand(2, 1, 155, 220)
    with torch.no_grad():
        out, before = model(x), source(x)
    heads = torch.cat([out[:, :128], out[:, 3200:3328]], dim=1)
    assert torch.allclose(heads, before[:, :256], atol=1e-5)  # the heads as the source embeds them
    assert torch.allclose(out[:, -288:], before[:, -288:], atol=1e-6)  # the histogram too
    with pytest.raises(ValueError, match="arch must be"):
        pooled_from(source, "signet_s4x2")


def test_set_pooled_scales_with_heads_gives_the_pooled_pair_the_histograms_median(tmp_path):
    from models.attach_hog import median_genuine_distance
    from models.data import load_gray
    from models.embed import embed_images

    rows = read_manifest(write_signature_manifest(tmp_path / "data", n_writers=3, n_genuine=4, height=50))
    model = pooled_from(_source(tmp_path), "signet_s4x2_headpool_hog")
    with torch.no_grad():
        medians = set_pooled_scales(model, rows, 2, "centroid", batch_size=8)
    assert set(medians) == {"gradient_histogram", "heads", "pooled_members"}
    scale = medians["gradient_histogram"] / medians["pooled_members"]
    images = [load_gray(s.path) for s in rows]
    for m in model.members[:2]:
        assert float(m.pool_scale) == pytest.approx(scale, rel=1e-5) and float(m.head_scale) == 1.0
    out = embed_images(EmbedderEnsemble(list(model.members[:2])), images, 8)
    pooled_cols = list(range(128, 3200)) + list(range(3328, 6400))
    assert math.isclose(median_genuine_distance(rows, out[:, pooled_cols], 2, "centroid"),
                        medians["gradient_histogram"], rel_tol=1e-4)
    heads_cols = list(range(128)) + list(range(3200, 3328))
    assert math.isclose(median_genuine_distance(rows, out[:, heads_cols], 2, "centroid"), medians["heads"],
                        rel_tol=1e-4)


def test_attach_pooled_cli_keep_heads(tmp_path):
    from models.attach_pooled import main

    manifest = write_signature_manifest(tmp_path / "data", n_writers=3, n_genuine=4, height=50)
    writers = sorted({s.writer for s in read_manifest(manifest)})
    base = save_embedder(_source(tmp_path), {"arch": "signet_s4x2_hog", "model_version": "signet_s4x2_hog-test",
                                             "data": {"manifest": str(manifest), "train_writers": writers},
                                             "validation": {"references_per_writer": 2}},
                         tmp_path / "base.safetensors")
    out = tmp_path / "hp.safetensors"
    assert main(["--weights", str(base), "--out", str(out), "--keep-heads"]) == 0
    model, card = load_embedder(out)
    assert card["arch"] == "signet_s4x2_headpool_hog" and card["embedding_dim"] == 2 * (128 + 3072) + 288
    assert card["pooled_conv4"]["module"] == "models.signet.SigNetWithPooled"
    assert [float(m.pool_scale) for m in model.members[:2]] == pytest.approx(card["pooled_conv4"]["pool_scales"])
    assert "heads" in card["pooled_conv4"]["median_genuine_distance_train"]


def test_three_members_are_assembled_as_two_are(tmp_path):
    """attach_hog and attach_pooled take a signet_s4x3 as they take a signet_s4x2: every member's trunk kept,
    each pooled member scaled to the histogram's median."""
    from models.attach_hog import main as attach_hog
    from models.attach_pooled import main as attach_pooled

    torch.manual_seed(0)
    manifest = write_signature_manifest(tmp_path / "data", n_writers=3, n_genuine=4, height=50)
    writers = sorted({s.writer for s in read_manifest(manifest)})
    source = build_embedder("signet_s4x3").eval()
    base = save_embedder(source, {"arch": "signet_s4x3", "model_version": "signet_s4x3-test",
                                  "data": {"manifest": str(manifest), "train_writers": writers},
                                  "validation": {"references_per_writer": 2}}, tmp_path / "base.safetensors")
    hog, pool = tmp_path / "hog.safetensors", tmp_path / "pool.safetensors"
    assert attach_hog(["--weights", str(base), "--out", str(hog)]) == 0
    assert attach_pooled(["--weights", str(hog), "--out", str(pool)]) == 0
    model, card = load_embedder(pool)
    assert card["arch"] == "signet_s4x3_pool_hog" and card["embedding_dim"] == 3 * 3072 + 288
    assert "three members'" in card["score"] and len(card["pooled_conv4"]["scales"]) == 3
    for i in range(3):
        assert torch.equal(model.members[i].features.conv4.weight, source.members[i].features.conv4.weight)
    medians = card["pooled_conv4"]["median_genuine_distance_train"]
    assert set(medians) == {"gradient_histogram", "pooled_member_0", "pooled_member_1", "pooled_member_2"}


def test_add_run_joins_a_third_member_of_the_same_split(tmp_path, capsys):
    """models.ensemble (two runs) -> attach_hog -> attach_pooled, then --add-run a third run of the split: the
    two members' trunks and the histogram kept, the third run's trunk read at conv4, its record on the card;
    a run of another split is refused by name."""
    from models.attach_hog import main as attach_hog
    from models.attach_pooled import main as attach_pooled
    from models.ensemble import main as ensemble
    from models.train_signet import main as train

    manifest = write_signature_manifest(tmp_path / "data", n_writers=6, n_genuine=5, height=50)
    for name, extra in (("a", ["--seed", "1"]), ("b", ["--seed", "1", "--writer-classes", "person"]),
                        ("c", ["--seed", "2", "--split-seed", "1"]), ("other", ["--seed", "2"])):
        train(["--manifest", str(manifest), "--out", str(tmp_path / name), "--threads", "1", "--steps", "2",
               "--eval-every", "2", "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1",
               "--val-fraction", "0.5", "--writer-weight", "0.5", *extra])
    capsys.readouterr()
    ens, hog, pool, three = (tmp_path / f"{n}.safetensors" for n in ("ens", "hog", "pool", "three"))
    ensemble(["--run", str(tmp_path / "a"), "--run", str(tmp_path / "b"), "--out", str(ens)])
    assert attach_hog(["--weights", str(ens), "--out", str(hog)]) == 0
    assert attach_pooled(["--weights", str(hog), "--out", str(pool)]) == 0
    assert attach_pooled(["--weights", str(pool), "--out", str(three), "--add-run", str(tmp_path / "c")]) == 0
    capsys.readouterr()
    two, _ = load_embedder(pool)
    model, card = load_embedder(three)
    assert card["arch"] == "signet_s4x3_pool_hog" and len(card["members"]) == 3
    assert card["pooled_conv4"]["added_members"] == [str(tmp_path / "c")]
    assert card["members"][2]["whitening"]["applied"] is False and len(card["pooled_conv4"]["scales"]) == 3
    added = build_embedder("signet_s4")
    added.load_state_dict(load_file(str(tmp_path / "c" / "best.safetensors")))
    assert torch.equal(model.members[2].features.conv4.weight, added.features.conv4.weight.half().float())
    for i in (0, 1):
        assert torch.equal(model.members[i].features.conv4.weight, two.members[i].features.conv4.weight)
        assert float(model.members[i].scale) == pytest.approx(float(two.members[i].scale), rel=1e-2)
    assert float(model.members[3].scale) == float(two.members[2].scale)  # the histogram as it was
    with pytest.raises(SystemExit, match="val_writers are not those of|train_writers are not those of"):
        attach_pooled(["--weights", str(pool), "--out", str(tmp_path / "x.safetensors"),
                       "--add-run", str(tmp_path / "other")])
    with pytest.raises(SystemExit, match="drop --keep-heads"):
        attach_pooled(["--weights", str(pool), "--out", str(tmp_path / "y.safetensors"), "--keep-heads",
                       "--add-run", str(tmp_path / "c")])
    with pytest.raises(SystemExit, match="expected"):  # a pooled source without --add-run has nothing to do
        attach_pooled(["--weights", str(pool), "--out", str(tmp_path / "z.safetensors")])
