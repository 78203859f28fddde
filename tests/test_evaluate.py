"""The verification evaluation: protocol on hand-made embeddings, CLI on a tiny synthetic manifest."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models.data import Sample
from models.evaluate import (
    build_parser,
    main,
    pool_scores,
    protocol_roles,
    protocol_scores,
    query_row_scores,
    summarize,
)
from models.signet import build_embedder
from models.verification import Calibration, reference_score
from models.weights import default_weights_path, load_embedder, save_embedder
from transforms.demo_corpus import write_signature_manifest


def sample(writer: str, label: str, name: str) -> Sample:
    return Sample(Path(name), name, writer, label)


def test_protocol_references_are_first_k_sorted_genuine():
    # writer a: genuine a/g0..a/g3 (sorted), one forgery; writer b: genuine b/g0..b/g2
    rows = [sample("a", "genuine", f"a/g{i}") for i in (3, 1, 0, 2)] + [sample("a", "forged", "a/f0")]
    rows += [sample("b", "genuine", f"b/g{i}") for i in range(3)]
    emb = np.zeros((len(rows), 2), np.float32)
    emb[:, 0] = [10, 11, 0, 12, 50, 100, 101, 130]  # a's refs (k=2): g0=0, g1=11 -> centre of refs
    scores = protocol_scores(rows, emb, k=2)
    # a queries: g2 (12) and g3 (10): distance to the mean of refs {0, 11} (5.5); forgery 50
    assert sorted(scores.genuine.tolist())[:2] == pytest.approx([4.5, 6.5])
    assert scores.skilled.tolist() == pytest.approx([50 - 5.5])
    # b has 3 genuine: refs b/g0, b/g1 (100, 101), query b/g2 (130)
    assert scores.genuine.size == 3 and scores.n_writers == 2
    # random: each genuine query against the other writer's references
    assert scores.random.size == 3
    assert scores.n_writers_fewer_references == 0


def test_protocol_groups_by_signer_not_person():
    """A person who writes two names is two signers: each name has its own references and queries."""
    rows = [Sample(Path(f"p/{k}"), f"p/{k}", "p", "genuine", "c", f"p/n{k % 2}", f"t{k % 2}") for k in range(6)]
    emb = np.zeros((6, 2), np.float32)
    emb[:, 0] = [0, 100, 1, 101, 2, 102]  # name 0 near 0, name 1 near 100
    scores = protocol_scores(rows, emb, k=2)
    assert scores.n_writers == 2
    assert scores.genuine.tolist() == pytest.approx([1.5, 1.5])  # each query against its own name
    assert sorted(scores.random.tolist()) == pytest.approx([98.5, 101.5])


def test_protocol_caps_references_for_small_writers():
    rows = [sample("a", "genuine", f"a/g{i}") for i in range(3)] + [sample("a", "forged", "a/f")]
    rows += [sample("b", "genuine", f"b/g{i}") for i in range(8)]
    emb = np.random.default_rng(0).normal(size=(len(rows), 4)).astype(np.float32)
    scores = protocol_scores(rows, emb, k=5)
    assert scores.n_writers_fewer_references == 1
    assert scores.genuine.size == 1 + 3 and scores.skilled.size == 1
    # the roles a caller already has (evaluate --on-pages) give the same scores, and are what is used
    given = protocol_scores(rows, emb, k=5, roles=protocol_roles(rows, 5))
    assert given.genuine.tolist() == scores.genuine.tolist() and given.skilled.tolist() == scores.skilled.tolist()
    fewer_refs = protocol_scores(rows, emb, k=5, roles=protocol_roles(rows, 2))
    assert fewer_refs.n_writers_fewer_references == 0 and fewer_refs.genuine.size == 1 + 6


def test_query_row_scores_replace_only_the_queries():
    rows = [sample("a", "genuine", f"a/g{i}") for i in range(4)] + [sample("a", "forged", "a/f")]
    emb = np.random.default_rng(1).normal(size=(len(rows), 3)).astype(np.float32)
    roles = protocol_roles(rows, 2)
    new = emb[list(roles.queries)] + 1.0
    full = emb.copy()
    full[list(roles.queries)] = new
    expected = protocol_scores(rows, emb, 2, query_embeddings=full)
    got = query_row_scores(rows, emb, roles, 2, new)
    assert got.genuine.tolist() == expected.genuine.tolist() and got.skilled.tolist() == expected.skilled.tolist()
    assert got.genuine.tolist() != protocol_scores(rows, emb, 2).genuine.tolist()


def random_scores(writers: str, forged_writers: str, n_genuine: int, n_forged: int):
    """Protocol scores (K=5) of random 8-d embeddings: ``n_genuine`` genuine images per writer and
    ``n_forged`` forgeries per writer of ``forged_writers``."""
    rows = [sample(w, "genuine", f"{w}/g{i}") for w in writers for i in range(n_genuine)]
    rows += [sample(w, "forged", f"{w}/f{i}") for w in forged_writers for i in range(n_forged)]
    emb = np.random.default_rng(0).normal(size=(len(rows), 8)).astype(np.float32)
    return protocol_scores(rows, emb, 5)


def test_summarize_fields():
    scores = random_scores("abc", "ab", 7, 2)
    out = summarize(scores, Calibration(match=1.0, mismatch=2.0, center=1.5, slope=3.0))
    assert out["n_writers"] == 3 and out["n_genuine"] == 6 and out["n_forged"] == 4
    assert out["n_genuine_forged_writers"] == 4  # writer c has no forgeries: random figures only
    for key in ("eer", "eer_random", "auc", "far", "frr", "match_threshold"):
        assert out[key] is not None


def tiny_weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    cal = Calibration(match=0.5, mismatch=1.0, center=0.75, slope=5.0)
    card = {"arch": "signet_s4", "model_version": "signet_s4-test-00000000", "calibration": cal.to_card(),
            "data": {"val_writers": ["w0", "w1"], "train_writers": ["w2"]}}
    return save_embedder(build_embedder("signet_s4"), card, tmp_path / "weights" / "tiny.safetensors")


def test_cli_writes_json(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data")
    weights = tiny_weights(tmp_path)
    out = tmp_path / "out" / "verification.json"
    assert main(["verification", "--manifest", str(manifest), "--weights", str(weights), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result == json.loads(capsys.readouterr().out)
    assert result["model_version"] == "signet_s4-test-00000000" and result["reference_score"] == "centroid"
    assert result["n_writers"] == 3 and result["n_genuine"] == 3 * 2 and result["n_forged"] == 3 * 2
    for key in ("eer", "eer_random", "auc", "far", "frr"):
        assert 0.0 <= result[key] <= 1.0


def test_pool_scores_concatenates_the_scorings():
    rows = [sample(w, "genuine", f"{w}/g{i}") for w in "ab" for i in range(7)] + [sample("a", "forged", "a/f0")]
    emb = np.random.default_rng(1).normal(size=(len(rows), 4)).astype(np.float32)
    one = protocol_scores(rows, emb, 5)
    two = protocol_scores(rows, emb, 5, query_embeddings=emb + 0.5)
    pooled = pool_scores([one, two])
    assert pooled.skilled.tolist() == one.skilled.tolist() + two.skilled.tolist()
    assert pooled.random.size == 2 * one.random.size and pooled.n_writers == one.n_writers == 2
    assert pool_scores([one]) is one
    with pytest.raises(ValueError, match="at least one"):
        pool_scores([])


def test_cli_pools_several_noise_seeds(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data")
    weights = tiny_weights(tmp_path)
    args = ["verification", "--manifest", str(manifest), "--weights", str(weights)]
    assert main([*args, "--noisy-queries", "4"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert main([*args, "--noisy-queries", "4", "5"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["n_forged"] == 2 * single["n_forged"] and both["noisy_queries"] == [4, 5]
    assert len(both["eer_per_noise_seed"]) == 2 and both["eer_per_noise_seed"][0] == single["eer"]
    assert "eer_per_noise_seed" not in single


def test_cli_noise_kind_needs_noisy_queries(tmp_path):
    manifest = write_signature_manifest(tmp_path / "sigs")
    with pytest.raises(ValueError, match="noisy-queries"):
        main(["verification", "--manifest", str(manifest), "--noise-kind", "stamp"])


def test_cli_split_from_card(tmp_path):
    manifest = write_signature_manifest(tmp_path / "data")
    weights = tiny_weights(tmp_path)
    out = tmp_path / "v.json"
    main(["verification", "--manifest", str(manifest), "--weights", str(weights), "--split", "validation",
          "--references-per-writer", "3", "--json", str(out)])
    result = json.loads(out.read_text())
    assert result["n_writers"] == 2 and result["n_genuine"] == 2 * 4


def test_parser_has_verification_subcommand():
    args = build_parser().parse_args(["verification", "--manifest", "m.csv"])
    assert args.references_per_writer == 5 and args.command == "verification"


def test_shipped_weights_on_real_validation_writers(shared_data):
    weights = default_weights_path()
    if not weights.is_file():
        pytest.skip(f"{weights} not shipped yet")
    from models.data import load_gray, read_manifest
    from models.embed import embed_images

    model, card = load_embedder(weights)
    if "val_writers" not in card.get("data", {}):
        pytest.skip(f"{weights} is a placeholder without a validation split")
    val = set(card["data"]["val_writers"])
    rows = [s for s in read_manifest(shared_data / "signatures" / "manifest.csv")
            if s.writer in val and s.dataset == "sigcomp2011_dutch"]
    keep = sorted({s.writer for s in rows})[:3]
    rows = [s for s in rows if s.writer in keep]
    emb = embed_images(model, [load_gray(s.path) for s in rows])
    result = summarize(protocol_scores(rows, emb, 5, rule=reference_score(card)), Calibration.from_card(card))
    assert result["n_forged"] > 0 and result["eer"] < 0.4


def test_per_query_scores_name_each_query_and_pool_with_their_seed():
    rows = [sample(w, "genuine", f"{w}/g{i}") for w in "ab" for i in range(7)] + [sample("a", "forged", "a/f0")]
    emb = np.random.default_rng(1).normal(size=(len(rows), 4)).astype(np.float32)
    one = protocol_scores(rows, emb, 5)
    q = one.queries
    assert q is not None and set(q.keys.tolist()) == {"a/g5", "a/g6", "b/g5", "b/g6", "a/f0"}
    assert q.forged.sum() == 1 and q.signers[q.forged].tolist() == ["a"]
    assert sorted(q.distances[~q.forged].tolist()) == sorted(one.genuine.tolist())
    g, gs, f, fs = q.skilled_sets()  # only signer a has a forgery: b's genuine queries are left out
    assert sorted(g.tolist()) == sorted(one.genuine_forged_writers.tolist()) and set(gs.tolist()) == {"a"}
    assert f.tolist() == one.skilled.tolist() and fs.tolist() == ["a"]
    pooled = pool_scores([one, protocol_scores(rows, emb, 5, query_embeddings=emb + 0.5)])
    assert pooled.queries.keys.size == 2 * q.keys.size
    assert q.prefixed("noise4:").keys[0] == "noise4:" + q.keys[0]


def test_summarize_gives_a_signer_bootstrap_interval_on_request():
    scores = random_scores("abcdef", "abcdef", 8, 3)
    assert "eer_ci95" not in summarize(scores, None)
    out = summarize(scores, None, resamples=200)
    lo, hi = out["eer_ci95"]
    assert 0.0 <= lo <= hi <= 1.0 and lo < hi  # random embeddings: a wide interval
    assert "6 signers" in out["eer_ci95_method"]
    assert summarize(scores, None, resamples=200)["eer_ci95"] == [lo, hi]  # seeded


def _scored(keys, signers, forged, distances):
    from models.evaluate import QueryScores
    return QueryScores(np.array(keys), np.array(signers), np.array(forged, bool), np.array(distances, float))


def test_compare_pairs_queries_by_key_and_tells_a_real_gain_from_noise():
    from models.evaluate import compare_scores
    rng = np.random.default_rng(0)
    keys, signers, forged, da = [], [], [], []
    for s in range(12):
        for i in range(6):
            keys.append(f"{s}/q{i}")
            signers.append(f"s{s}")
            forged.append(i >= 3)
            da.append(rng.normal(1.0 if i < 3 else 1.5, 0.4))
    a = _scored(keys, signers, forged, da)
    db = [d + 0.3 if f else d for d, f in zip(da, forged, strict=True)]  # B pushes every forgery further: better
    b = _scored(keys[::-1], signers[::-1], forged[::-1], db[::-1])  # another order: matched by key
    out = compare_scores(a, b, resamples=300)
    assert out["eer_b"] < out["eer_a"] and out["difference_ci95"][1] <= 0.0 and out["b_better_share"] > 0.9
    assert out["n_signers"] == 12 and out["n_forged"] == 36
    same = compare_scores(a, a, resamples=100)
    assert same["eer_difference"] == 0.0 and same["difference_ci95"] == [0.0, 0.0] and same["b_better_share"] == 0.0
    with pytest.raises(ValueError, match="different queries"):
        compare_scores(a, _scored(keys[:-1], signers[:-1], forged[:-1], da[:-1]))
    with pytest.raises(ValueError, match="other signers or labels"):
        compare_scores(a, _scored(keys, signers, [not f for f in forged], da))


def test_cli_writes_per_query_scores_that_compare_reads(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data")
    weights = tiny_weights(tmp_path)
    args = ["verification", "--manifest", str(manifest), "--weights", str(weights), "--ci-resamples", "50"]
    assert main([*args, "--scores", str(tmp_path / "a.npz")]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["eer_ci95"][0] <= first["eer_ci95"][1]
    assert main([*args, "--noisy-queries", "4", "--scores", str(tmp_path / "b.npz")]) == 0
    capsys.readouterr()
    with pytest.raises(ValueError, match="different queries"):  # noise4: keys against plain ones
        main(["compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz")])
    assert main([*args, "--scores", str(tmp_path / "c.npz")]) == 0
    capsys.readouterr()
    assert main(["compare", str(tmp_path / "a.npz"), str(tmp_path / "c.npz"), "--resamples", "50"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eer_difference"] == 0.0 and out["model_version_a"] == "signet_s4-test-00000000"
    assert out["cleaner_a"] == out["cleaner_b"] == ""  # queries not cleaned
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="cannot read per-query scores"):
        main(["compare", str(tmp_path / "bad.npz"), str(tmp_path / "c.npz")])


def test_cli_colour_dropout_needs_on_pages(tmp_path):
    manifest = write_signature_manifest(tmp_path / "sigs")
    with pytest.raises(ValueError, match="--colour-dropout red renders contract pages: it needs --on-pages"):
        main(["verification", "--manifest", str(manifest), "--colour-dropout", "red"])
