"""SigNet ensembles: the module, and models.ensemble assembling tiny synthetic runs."""
from __future__ import annotations

import json

import pytest
import torch

from models.ensemble import check_same_split, main, round_through
from models.signet import EmbedderEnsemble, build_embedder
from models.train_signet import TrainConfig
from models.train_signet import main as train_main
from models.weights import load_embedder
from transforms.demo_corpus import write_signature_manifest


def test_ensemble_concatenates_its_members():
    torch.manual_seed(0)
    model = build_embedder("signet_s4x2").eval()
    x = torch.rand(3, 1, 155, 220)
    with torch.no_grad():
        out = model(x)
        parts = [m(x) for m in model.members]
    assert out.shape == (3, 256) and model.embedding_dim == 256
    torch.testing.assert_close(out, torch.cat(parts, 1))
    with pytest.raises(ValueError, match="at least two"):
        EmbedderEnsemble([build_embedder("signet_s4")])


def test_round_through_float16_is_what_storing_does():
    model = build_embedder("signet_s4")
    w = model.head.fc2.weight.detach().clone()
    round_through(model, torch.float16)
    torch.testing.assert_close(model.head.fc2.weight.detach(), w.half().float())
    round_through(model, None)  # float32 storage: unchanged
    torch.testing.assert_close(model.head.fc2.weight.detach(), w.half().float())


def test_members_must_share_the_writer_split():
    a, b = TrainConfig(manifest="m", out="a", seed=1), TrainConfig(manifest="m", out="b", seed=2)
    with pytest.raises(ValueError, match="seed"):
        check_same_split([a, b])
    check_same_split([a, TrainConfig(manifest="m", out="c", seed=1, writer_classes="person")])
    # another training seed on the same split (--split-seed) is a valid member
    check_same_split([a, TrainConfig(manifest="m", out="d", seed=2, split_seed=1)])
    with pytest.raises(ValueError, match="split_seed"):
        check_same_split([b, TrainConfig(manifest="m", out="e", seed=2, split_seed=1)])


def test_assemble_two_runs_and_export(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    runs = []
    for name, extra in (("a", []), ("b", ["--writer-classes", "person"])):
        out = tmp_path / name
        train_main(["--manifest", str(manifest), "--out", str(out), "--threads", "1", "--steps", "2", "--eval-every", "2",
                    "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1",
                    "--val-fraction", "0.5", "--writer-weight", "0.5", *extra])
        runs += ["--run", str(out)]
    capsys.readouterr()
    weights = tmp_path / "ens" / "signet_default.safetensors"
    main([*runs, "--out", str(weights)])
    printed = json.loads(capsys.readouterr().out)
    model, card = load_embedder(weights)
    assert card["arch"] == "signet_s4x2" and printed["model_version"] == card["model_version"]
    assert card["storage_dtype"] == "float16" and model.embedding_dim == 256
    assert next(model.parameters()).dtype == torch.float32  # loaded back into a float32 model
    assert [m["whitening"]["applied"] for m in card["members"]] == [True, True]
    assert card["members"][1]["config"]["writer_classes"] == "person"
    assert card["data"]["n_val_writers"] == 2 and "match" in card["calibration"]["thresholds"]
    # the stored tensors are float16: about half the float32 file
    single = tmp_path / "a" / "export" / "signet_s4.safetensors"
    assert weights.stat().st_size < 1.1 * single.stat().st_size
    assert card["reference_score"] == "centroid" and "mean" in card["score"]
    # --score nearest: the same weights calibrated on nearest-reference distances, named as such
    nearest = tmp_path / "ens" / "nearest.safetensors"
    main([*runs, "--out", str(nearest), "--score", "nearest"])
    capsys.readouterr()
    _, card_n = load_embedder(nearest)
    assert card_n["reference_score"] == "nearest" and "nearest" in card_n["score"]
    assert card_n["weights_sha256"] == card["weights_sha256"]
    assert card_n["model_version"] == card["model_version"] + "-nearest"
    # --checkpoint last: each run's final step (here the same step as best, so the same weights), named so
    last = tmp_path / "ens" / "last.safetensors"
    main([*runs, "--out", str(last), "--checkpoint", "last"])
    capsys.readouterr()
    _, card_l = load_embedder(last)
    assert [m["checkpoint"] for m in card_l["members"]] == ["last", "last"]
    assert [m["checkpoint_step"] for m in card_l["members"]] == [2, 2]
    assert card_l["members"][0]["member_validation"]["eer"] == card["members"][0]["member_validation"]["eer"]
    assert card_l["weights_sha256"] == card["weights_sha256"] and "last checkpoint" in card_l["ensemble"]
    with pytest.raises(SystemExit):
        main([*runs, "--out", str(last), "--checkpoint", "first"])
