"""A tiny training run on synthetic signatures: checkpoints, resume, export with a model card."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from models.data import Sample
from models.signet import PooledConv, build_embedder
from models.train_signet import TrainConfig, load_config, lr_at, main, pooled_reading, writer_class_labels
from models.verification import Calibration
from models.weights import load_embedder
from transforms.demo_corpus import write_signature_manifest


def test_train_stop_resume_export(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    out = tmp_path / "run"
    common = ["--out", str(out), "--threads", "1"]
    # a time cap of ~0 stops at once: a checkpoint is still written and can be resumed
    main(["--manifest", str(manifest), "--steps", "3", "--eval-every", "2", "--batch-writers", "2",
          "--genuine-per-writer", "2", "--forged-per-writer", "1", "--val-fraction", "0.5", "--writer-weight", "0.5",
          "--forgery-weight", "0.5", "--minutes", "1e-9", *common])
    capsys.readouterr()
    state = json.loads((out / "last.json").read_text())
    assert state["step"] == 0 and (out / "best.safetensors").is_file() and (out / "config.json").is_file()
    weights = tmp_path / "export" / "tiny.safetensors"
    main(["--resume", "--minutes", "0", "--export-to", str(weights), *common])
    printed = json.loads(capsys.readouterr().out)
    state = json.loads((out / "last.json").read_text())
    assert state["step"] == 3 and [h["step"] for h in state["history"]] == [0, 2, 3]
    model, card = load_embedder(weights)
    assert printed["model_version"] == card["model_version"] and card["model_version"].startswith("signet_s4-")
    assert card["data"]["n_val_writers"] == 2 and len(card["data"]["val_writers"]) == 2
    assert not set(card["data"]["val_writers"]) & set(card["data"]["train_writers"])
    assert card["training"]["steps_done"] == 3 and card["training"]["config"]["seed"] == 1
    assert card["command"].startswith("python -m models.train_signet --manifest")
    cal = Calibration.from_card(card)
    assert cal.slope > 0
    for key in ("eer", "eer_random", "auc", "far", "frr"):
        assert key in card["validation"]
    # re-export with an attached evaluation: same weights, same model_version, figures in the card
    (tmp_path / "lodo.json").write_text(json.dumps({"eer": 0.1}))
    main([*common, "--export", "--export-to", str(weights), "--attach", f"left_out={tmp_path / 'lodo.json'}"])
    _, card2 = load_embedder(weights)
    assert card2["model_version"] == card["model_version"] and card2["evaluations"]["left_out"] == {"eer": 0.1}
    # whitening is folded in by default (fitted on the training split); --no-whiten exports the raw embedder
    assert card["whitening"]["applied"] and card["whitening"]["shrinkage"] == 0.1 and card["whitening"]["n_signers"] == 2
    raw = tmp_path / "export" / "raw.safetensors"
    main([*common, "--export", "--no-whiten", "--export-to", str(raw)])
    _, card3 = load_embedder(raw)
    assert card3["whitening"] == {"applied": False} and card3["model_version"] != card["model_version"]


def test_lr_schedule():
    cfg = TrainConfig(manifest="m", out="o", steps=1000, warmup_steps=100, lr=1e-3)
    assert lr_at(cfg, 0) < lr_at(cfg, 50) < lr_at(cfg, 99) <= 1e-3
    assert lr_at(cfg, 100) > lr_at(cfg, 600) > lr_at(cfg, 1000) >= 1e-5


def test_writer_classes_signer_or_person():
    rows = [Sample(Path(f"/x/{i}.png"), f"{i}.png", w, "genuine", "d", signer=sg)
            for i, (w, sg) in enumerate([("p1", "p1/n1"), ("p1", "p1/n2"), ("p2", "p2/n1"), ("p1", "p1/n1")])]
    assert writer_class_labels(rows, "signer").tolist() == [0, 1, 2, 0]
    assert writer_class_labels(rows, "person").tolist() == [0, 0, 1, 0]
    with pytest.raises(ValueError, match="'people'"):
        writer_class_labels(rows, "people")


def test_train_with_person_classes(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    main(["--manifest", str(manifest), "--out", str(tmp_path / "run"), "--threads", "1", "--steps", "2",
          "--eval-every", "2", "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1",
          "--val-fraction", "0.5", "--writer-weight", "0.5", "--writer-classes", "person", "--export-to",
          str(tmp_path / "w.safetensors")])
    capsys.readouterr()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["writer_classes"] == "person"
    assert json.loads((tmp_path / "run" / "last.json").read_text())["step"] == 2


def test_train_with_the_batch_hard_loss(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    main(["--manifest", str(manifest), "--out", str(tmp_path / "run"), "--threads", "1", "--steps", "2",
          "--eval-every", "2", "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1",
          "--val-fraction", "0.5", "--loss", "batch_hard", "--export-to", str(tmp_path / "w.safetensors")])
    capsys.readouterr()
    assert json.loads((tmp_path / "run" / "config.json").read_text())["loss"] == "batch_hard"
    assert load_embedder(tmp_path / "w.safetensors")[1]["arch"] == "signet_s4"
    # a run's config from before the option reads as the contrastive loss
    raw = json.loads((tmp_path / "run" / "config.json").read_text())
    raw.pop("loss")
    (tmp_path / "run" / "config.json").write_text(json.dumps(raw))
    assert load_config(tmp_path / "run").loss == "contrastive"


def test_weight_decay_is_chosen_recorded_and_given_to_the_optimizer(tmp_path, capsys, monkeypatch):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    seen = []
    adamw = torch.optim.AdamW

    def spy(params, **kwargs):
        seen.append(kwargs["weight_decay"])
        return adamw(params, **kwargs)

    monkeypatch.setattr(torch.optim, "AdamW", spy)
    common = ["--manifest", str(manifest), "--threads", "1", "--steps", "1", "--eval-every", "1",
              "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1", "--val-fraction", "0.5"]
    main([*common, "--out", str(tmp_path / "run"), "--weight-decay", "0.05",
          "--export-to", str(tmp_path / "w.safetensors")])
    capsys.readouterr()
    assert seen == [0.05] and load_config(tmp_path / "run").weight_decay == 0.05
    with pytest.raises(ValueError, match="weight-decay must be >= 0, got -0.1"):
        main([*common, "--out", str(tmp_path / "bad"), "--weight-decay", "-0.1"])
    assert TrainConfig(manifest="m", out="o").weight_decay == 1e-4


def test_train_with_synthetic_forgeries(tmp_path, capsys, monkeypatch):
    import models.data

    calls = []
    real = models.data.imitation_warp
    monkeypatch.setattr(models.data, "imitation_warp", lambda im, rng: calls.append(1) or real(im, rng))
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    main(["--manifest", str(manifest), "--out", str(tmp_path / "run"), "--threads", "1", "--steps", "2",
          "--eval-every", "2", "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1",
          "--val-fraction", "0.5", "--synthetic-forgeries", "1", "--export-to", str(tmp_path / "w.safetensors")])
    capsys.readouterr()
    assert len(calls) == 2 * 2  # two steps, two signers per batch, one warped image each
    assert json.loads((tmp_path / "run" / "config.json").read_text())["batch"]["synthetic"] == 1
    # a run's config from before the option reads as none
    raw = json.loads((tmp_path / "run" / "config.json").read_text())
    raw["batch"].pop("synthetic")
    (tmp_path / "run" / "config.json").write_text(json.dumps(raw))
    assert load_config(tmp_path / "run").batch.synthetic == 0


def test_weight_averaging_leaves_the_trajectory_and_saves_the_average(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    common = ["--manifest", str(manifest), "--threads", "1", "--steps", "4", "--eval-every", "2", "--batch-writers",
              "2", "--genuine-per-writer", "2", "--forged-per-writer", "1", "--val-fraction", "0.5"]
    main([*common, "--out", str(tmp_path / "plain"), "--export-to", str(tmp_path / "p.safetensors")])
    # stopped at once and resumed: the average goes on from its saved file
    main([*common, "--out", str(tmp_path / "swa"), "--swa-start", "2", "--swa-every", "1", "--minutes", "1e-9",
          "--export-to", str(tmp_path / "s0.safetensors")])
    main(["--resume", "--minutes", "0", "--out", str(tmp_path / "swa"), "--threads", "1",
          "--export-to", str(tmp_path / "s.safetensors")])
    capsys.readouterr()
    plain, swa = load_file(str(tmp_path / "plain" / "last.safetensors")), load_file(str(tmp_path / "swa" / "last.safetensors"))
    assert all(torch.equal(plain[k], swa[k]) for k in plain)  # the same steps with averaging on
    card = json.loads((tmp_path / "swa" / "swa.json").read_text())
    assert card["swa"] == {"start": 2, "every": 1, "snapshots": 3} and card["step"] == 4  # steps 2, 3 and 4
    assert "eer_random" in card["validation"]
    averaged = load_file(str(tmp_path / "swa" / "swa.safetensors"))
    assert any(not torch.equal(averaged[k], swa[k]) for k in swa if not k.endswith("num_batches_tracked"))
    assert not (tmp_path / "plain" / "swa.safetensors").exists()
    assert load_config(tmp_path / "plain").swa_start == 0


def test_split_seed_keeps_the_writer_split_of_another_training_seed(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=8, n_genuine=4, height=40)
    splits = {}
    for name, extra in (("a", ["--seed", "1"]), ("b", ["--seed", "3", "--split-seed", "1"]), ("c", ["--seed", "3"])):
        out = tmp_path / name
        main(["--manifest", str(manifest), "--out", str(out), "--threads", "1", "--steps", "1", "--eval-every", "1",
              "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1", "--val-fraction",
              "0.5", "--no-whiten", "--export-to", str(tmp_path / f"{name}.safetensors"), *extra])
        capsys.readouterr()
        splits[name] = load_embedder(tmp_path / f"{name}.safetensors")[1]["data"]["val_writers"]
    assert json.loads((tmp_path / "b" / "config.json").read_text())["split_seed"] == 1
    assert splits["a"] == splits["b"] and splits["a"] != splits["c"]


def test_train_with_page_copies(tmp_path, capsys, monkeypatch):
    """--page-copies: the copies are made once, from the run's seed, and drawn into the batches."""
    import models.train_signet as train_signet

    made = []
    real = train_signet.load_page_copies

    def spy(samples, copies, seed, ink):
        made.append((len(samples), copies, seed, ink))
        return real(samples, copies, seed, ink)

    monkeypatch.setattr(train_signet, "load_page_copies", spy)
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    main(["--manifest", str(manifest), "--out", str(tmp_path / "run"), "--threads", "1", "--steps", "2",
          "--eval-every", "2", "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1",
          "--val-fraction", "0.5", "--page-copies", "2", "--page-share", "0.7", "--seed", "3",
          "--export-to", str(tmp_path / "w.safetensors")])
    capsys.readouterr()
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["page_copies"] == 2 and config["page_share"] == 0.7
    assert len(made) == 1 and made[0][1:] == (2, 3, "otsu") and made[0][0] > 0


def test_ink_mask_of_the_training_images_is_chosen_recorded_and_used(tmp_path, capsys, monkeypatch):
    """--ink-mask reaches every training-side preprocessing (caches, page copies, whitening at export) and
    the config; the default is otsu (the shipped members' masks), and a config.json from before the option
    reads as otsu."""
    import models.data as data
    import models.export as export
    import models.train_signet as train_signet

    used = []
    real = data.load_preprocessed

    def spy(samples, ink="hysteresis"):
        used.append(ink)
        return real(samples, ink)

    monkeypatch.setattr(train_signet, "load_preprocessed", spy)
    monkeypatch.setattr(export, "load_preprocessed", spy)
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    for mask in ("hysteresis", None):
        out = tmp_path / f"run_{mask}"
        main(["--manifest", str(manifest), "--out", str(out), "--threads", "1", "--steps", "1", "--eval-every", "1",
              "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1", "--val-fraction", "0.5",
              "--export-to", str(tmp_path / f"{mask}.safetensors"), *(["--ink-mask", mask] if mask else [])])
        capsys.readouterr()
        expected = mask or "otsu"
        assert used == [expected] * 3 and json.loads((out / "config.json").read_text())["ink_mask"] == expected
        used.clear()
    raw = json.loads((tmp_path / "run_None" / "config.json").read_text())
    del raw["ink_mask"]
    (tmp_path / "run_None" / "config.json").write_text(json.dumps(raw))
    assert train_signet.load_config(tmp_path / "run_None").ink_mask == "otsu"
    with pytest.raises(SystemExit):
        main(["--manifest", str(manifest), "--out", str(tmp_path / "bad"), "--ink-mask", "canny"])


def test_pooled_weight_trains_the_conv4_reading_and_selects_on_it(tmp_path, capsys):
    manifest = write_signature_manifest(tmp_path / "data", n_writers=4, n_genuine=6, height=50)
    out = tmp_path / "run"
    init = tmp_path / "init.safetensors"
    torch.manual_seed(0)
    start = {k: v.contiguous() for k, v in build_embedder("signet_s4").state_dict().items()}
    save_file(start, str(init))
    main(["--manifest", str(manifest), "--out", str(out), "--threads", "1", "--steps", "2", "--eval-every", "2",
          "--batch-writers", "2", "--genuine-per-writer", "2", "--forged-per-writer", "1", "--val-fraction", "0.5",
          "--pooled-weight", "1.0", "--init-from", str(init), "--no-whiten", "--export-to", str(tmp_path / "w.safetensors")])
    capsys.readouterr()
    assert json.loads((out / "config.json").read_text())["pooled_weight"] == 1.0
    history = json.loads((out / "last.json").read_text())["history"]
    # validation figures are the pooled reading's, the head's kept beside them
    assert history[-1]["reading"] == "pooled_conv4" and "eer_random" in history[-1]["head"]
    trained = load_file(str(out / "last.safetensors"))
    assert not torch.equal(trained["features.conv4.weight"], start["features.conv4.weight"])
    # the loss's reading is PooledConv's on the same trunk, scaled to unit norm
    model = build_embedder("signet_s4")
    model.load_state_dict(trained)
    pooled = PooledConv()
    pooled.load_state_dict({k: v for k, v in trained.items() if k in pooled.state_dict()} | {"scale": torch.tensor(1.0)})
    x = torch.rand(3, 1, 155, 220)
    cells, emb = pooled_reading(model.eval(), x)
    assert torch.allclose(cells * 12 ** 0.5, pooled.eval()(x), atol=1e-5)
    assert torch.allclose(cells.norm(dim=1), torch.ones(3), atol=1e-5) and torch.allclose(emb, model(x), atol=1e-5)


def test_pooled_weight_needs_a_single_signet():
    with pytest.raises(ValueError, match="single SigNet"):
        pooled_reading(build_embedder("signet_s4x2"), torch.rand(1, 1, 155, 220))
