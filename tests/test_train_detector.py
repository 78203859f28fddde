"""Tests of the detector training pieces: losses, batches, holdout split, threshold choice, CLI checks."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.detector_data import augment_page
from models.train_detector import (
    TrainConfig,
    WeightEMA,
    best_threshold,
    export,
    focal_loss,
    giou_loss,
    make_batch,
    parse_args,
    schedule_progress,
    schedule_record,
    split_holdout,
)
from transforms.boxes import Box
from transforms.detection_prep import encode_targets


def test_focal_loss_rewards_the_right_heatmap() -> None:
    heat, _, _ = encode_targets([Box(0.2, 0.2, 0.6, 0.4)], 16, 16)
    target = torch.from_numpy(heat)[None]
    good = torch.logit(target.clamp(1e-4, 1 - 1e-4))
    assert float(focal_loss(good, target)) < 0.05
    assert float(focal_loss(torch.full_like(target, -4.0), target)) > 1.0
    assert float(focal_loss(torch.zeros_like(target), target)) > float(focal_loss(good, target))


def test_giou_loss_is_zero_for_exact_boxes_and_grows_with_error() -> None:
    _, ltrb, weight = encode_targets([Box(0.2, 0.2, 0.6, 0.4)], 16, 16)
    t, w = torch.from_numpy(ltrb)[None], torch.from_numpy(weight)[None]
    assert float(giou_loss(t, t, w, 1)) == pytest.approx(0.0, abs=1e-6)
    assert float(giou_loss(t * 1.5, t, w, 1)) > 0.1
    assert float(giou_loss(t, t, torch.zeros_like(w), 0)) == 0.0


def test_make_batch_shapes_and_targets() -> None:
    page = np.full((64, 64), 240, np.uint8)
    page[20:30, 10:40] = 0
    cfg = TrainConfig(out=Path("unused"), input_size=64, batch=3)
    x, heat, ltrb, weight, n = make_batch([(page, [Box(10 / 64, 20 / 64, 40 / 64, 30 / 64)])], [], cfg,
                                          np.random.default_rng(0))
    assert x.shape == (3, 1, 64, 64) and heat.shape == (3, 16, 16) and ltrb.shape == (3, 4, 16, 16)
    assert weight.shape == (3, 16, 16) and 0 <= n <= 3 and float(x.max()) <= 1.0


def test_split_holdout_is_seeded_and_disjoint() -> None:
    a = split_holdout(100, 0.12, 0)
    assert a == split_holdout(100, 0.12, 0) and a != split_holdout(100, 0.12, 1)
    assert len(a[1]) == 12 and not set(a[0]) & set(a[1]) and sorted(a[0] + a[1]) == list(range(100))


def test_best_threshold_separates_hits_from_false_alarms() -> None:
    truth = [[Box(0.1, 0.1, 0.3, 0.2)], []]
    preds = [[Box(0.1, 0.1, 0.3, 0.2, 0.8)], [Box(0.5, 0.5, 0.7, 0.6, 0.4)]]
    threshold, f1 = best_threshold(preds, truth)
    assert 0.4 < threshold <= 0.8 and f1 == 1.0


@pytest.mark.parametrize(("flag", "value", "match"), [("--steps", "0", "--steps"), ("--minutes", "0", "--minutes")])
def test_parse_args_rejects_bad_values(flag: str, value: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_args(["--out", "x", flag, value])


def test_weight_ema_follows_the_model_slowly() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    ema = WeightEMA(net, decay=0.9)
    start = net[0].weight.detach().clone()
    with torch.no_grad():
        net[0].weight.add_(1.0)
    net[1].num_batches_tracked += 5
    ema.update(net)  # first update: the ramp min(decay, 1/10) takes 90 % of the model
    assert torch.allclose(ema.state["0.weight"], start + 0.9, atol=1e-5)
    ema.updates = 1000  # past the ramp: a tenth of the way (decay 0.9)
    with torch.no_grad():
        net[0].weight.add_(1.0)
    ema.update(net)
    assert torch.allclose(ema.state["0.weight"], start + 0.9 * 0.9 + 2.0 * 0.1, atol=1e-5)
    assert int(ema.state["1.num_batches_tracked"]) == 5  # integer buffers are copied
    with pytest.raises(ValueError, match="decay"):
        WeightEMA(net, decay=1.0)


def test_parse_args_ema() -> None:
    cfg, _ = parse_args(["--out", "x", "--ema", "0.998"])
    assert cfg.ema == 0.998
    with pytest.raises(ValueError, match="--ema"):
        parse_args(["--out", "x", "--ema", "1.5"])


def test_parse_args_giou_weight() -> None:
    cfg, _ = parse_args(["--out", "x", "--giou-weight", "10"])
    assert cfg.giou_weight == 10.0
    with pytest.raises(ValueError, match="--giou-weight"):
        parse_args(["--out", "x", "--giou-weight", "-1"])


def test_parse_args_handwritten_marks() -> None:
    cfg, _ = parse_args(["--out", "x", "--handwritten-marks", "0.7"])
    assert cfg.handwritten_marks == 0.7
    assert parse_args(["--out", "x"])[0].handwritten_marks == 0.0  # off unless asked: the shipped recipe
    with pytest.raises(ValueError, match="--handwritten-marks"):
        parse_args(["--out", "x", "--handwritten-marks", "1.5"])


def test_parse_args_letters() -> None:
    assert parse_args(["--out", "x", "--letters", "0.5"])[0].letters == 0.5
    assert parse_args(["--out", "x"])[0].letters == 0.0
    with pytest.raises(ValueError, match="--letters"):
        parse_args(["--out", "x", "--letters", "-0.1"])


def test_export_takes_the_best_or_the_last_checkpoint(tmp_path: Path) -> None:
    _, a = parse_args(["--out", "x", "--export", "--checkpoint", "last"])
    assert a.export and a.checkpoint == "last"
    assert parse_args(["--out", "x", "--export"])[1].checkpoint == "best"
    with pytest.raises(SystemExit):
        parse_args(["--out", "x", "--export", "--checkpoint", "middle"])
    with pytest.raises(ValueError, match="checkpoint must be one of \\('best', 'last'\\), got 'middle'"):
        export(TrainConfig(out=tmp_path), tmp_path / "w.safetensors", "middle")


def test_schedule_follows_whichever_bound_runs_out_first() -> None:
    # 100 steps or 10 minutes: at step 50 after 2 minutes the steps lead, after 6 minutes the clock
    assert schedule_progress(50, 120.0, 100, 10.0) == (0.5, False)
    assert schedule_progress(50, 360.0, 100, 10.0) == (0.6, True)
    assert schedule_progress(100, 120.0, 100, 10.0)[0] == 1.0
    assert schedule_record(0, 2800)["bound"] == "steps"
    timed = schedule_record(700, 2800)
    assert timed["bound"] == "minutes" and timed["time_led_steps"] == 700 and "700 of 2800" in timed["replay"]


def test_parse_args_zoom_and_mosaic() -> None:
    cfg, _ = parse_args(["--out", "x", "--zoom", "0.6667", "1.5", "--mosaic", "0.5"])
    assert cfg.zoom == (0.6667, 1.5) and cfg.mosaic == 0.5
    default = parse_args(["--out", "x"])[0]
    assert default.zoom == (0.8, 1.25) and default.mosaic == 0.0  # the shipped recipe
    with pytest.raises(ValueError, match="--zoom"):
        parse_args(["--out", "x", "--zoom", "1.5", "0.8"])
    with pytest.raises(ValueError, match="--mosaic"):
        parse_args(["--out", "x", "--mosaic", "2"])


def test_parse_args_copy_paste() -> None:
    assert parse_args(["--out", "x", "--copy-paste", "0.5"])[0].copy_paste == 0.5
    assert parse_args(["--out", "x"])[0].copy_paste == 0.0  # off unless asked
    assert parse_args(["--out", "x", "--seed", "0", "--stream-seed", "3"])[0].stream_seed == 3
    assert parse_args(["--out", "x"])[0].stream_seed is None  # the stream follows --seed
    with pytest.raises(ValueError, match="--copy-paste"):
        parse_args(["--out", "x", "--copy-paste", "-0.1"])


def test_make_batch_copy_paste_adds_the_banks_signatures_to_real_pages() -> None:
    page = np.full((64, 64), 240, np.uint8)
    page[40:48, 10:40] = 0
    pages = [(page, [Box(10 / 64, 40 / 64, 40 / 64, 48 / 64)])]
    bank = [np.where(np.arange(16)[None, :] % 3 == 0, 0, 255).astype(np.uint8).repeat(6, axis=0)]  # (6, 16)
    plain = TrainConfig(out=Path("unused"), input_size=64, batch=6, quarter_turns=0.0)
    pasted = TrainConfig(out=Path("unused"), input_size=64, batch=6, quarter_turns=0.0, copy_paste=1.0)
    a = make_batch(pages, [], plain, np.random.default_rng(0))
    b = make_batch(pages, [], pasted, np.random.default_rng(0), bank)
    assert b[0].shape == a[0].shape and b[4] > a[4]  # more labelled boxes in the batch
    assert make_batch(pages, [], plain, np.random.default_rng(0), bank)[4] == a[4]  # off: the bank is not used


def test_make_batch_mosaic_keeps_shapes_and_off_leaves_the_stream_alone() -> None:
    page = np.full((64, 64), 240, np.uint8)
    page[20:30, 10:40] = 0
    pages = [(page, [Box(10 / 64, 20 / 64, 40 / 64, 30 / 64)])]
    plain = TrainConfig(out=Path("unused"), input_size=64, batch=4)
    mosaic = TrainConfig(out=Path("unused"), input_size=64, batch=4, mosaic=1.0)
    a = make_batch(pages, [], plain, np.random.default_rng(0))
    b = make_batch(pages, [], mosaic, np.random.default_rng(0))
    assert b[0].shape == a[0].shape and b[1].shape == a[1].shape
    assert not torch.equal(a[0], b[0])
    # mosaic 0 draws nothing extra: the batch is the pages augment_page makes from the same stream
    rng, manual = np.random.default_rng(0), []
    for _ in range(4):
        rng.integers(1)  # the page draw (no synthetic pool: no pool draw)
        manual.append(augment_page(page, pages[0][1], rng, plain.quarter_turns)[0])
    assert np.array_equal(a[0][:, 0].numpy(), np.stack(manual).astype(np.float32) / 255.0)


def test_parse_args_holdout_fraction() -> None:
    assert parse_args(["--out", "x"])[0].holdout_fraction == TrainConfig.holdout_fraction
    assert parse_args(["--out", "x", "--holdout-fraction", "0"])[0].holdout_fraction == 0.0
    for bad in ("1", "-0.1"):
        with pytest.raises(ValueError, match=f"--holdout-fraction must be in \\[0, 1\\), got {bad}"):
            parse_args(["--out", "x", "--holdout-fraction", bad])


def _tiny_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, holdout: list) -> TrainConfig:
    """Two training steps of centernet_m on one blank 64-px page with one box (no shared data)."""
    import models.train_detector as td

    page = (np.full((64, 64), 255, np.uint8), [Box(0.2, 0.4, 0.6, 0.55)])
    monkeypatch.setattr(td, "_data", lambda cfg: ([page], holdout, [], {"train_pages": 1}))
    monkeypatch.setattr(td.sys, "argv", ["train_detector"])
    cfg = TrainConfig(out=tmp_path / "run", input_size=64, batch=2, steps=2, eval_every=1, warmup=1,
                      synthetic=0, synthetic_fraction=0.0, threads=1, holdout_fraction=0.0 if not holdout else 0.5)
    td.train(cfg, resume=False)
    return cfg


def test_training_without_held_out_pages_keeps_only_the_last_checkpoint(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    cfg = _tiny_run(tmp_path, monkeypatch, [])
    assert (cfg.out / "last.pt").is_file() and not (cfg.out / "best.pt").exists()
    rows = [json.loads(line) for line in (cfg.out / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and not any("holdout_ap50" in r for r in rows)
    assert torch.load(cfg.out / "last.pt", weights_only=True)["step"] == 2
    with pytest.raises(ValueError, match="--settings-from CARD"):  # no holdout to fit a threshold on
        export(cfg, tmp_path / "w.safetensors", "last")
    twin = tmp_path / "twin.json"
    twin.write_text(json.dumps({"model_version": "twin-v1", "score_threshold": 0.34, "box_scale": [0.99, 0.9],
                                "views": [[64, False], [64, True]], "fusion_iou": 0.55, "holdout": {"f1": 0.8}}))
    with pytest.raises(ValueError, match="--settings-from CARD"):  # only the last checkpoint exists
        export(cfg, tmp_path / "w.safetensors", "best", twin)
    monkeypatch.setattr("models.train_detector.shared_data_dir", lambda: tmp_path / "no_shared")  # no valid
    card = export(cfg, tmp_path / "w.safetensors", "last", twin)
    assert card["score_threshold"] == 0.34 and card["box_scale"] == [0.99, 0.9] and card["fusion_iou"] == 0.55
    assert card["views"] == [[64, False], [64, True]] and card["holdout"] is None
    assert card["model_version"] == "detector-centernet_m-s0-allpages-step2"
    assert card["settings_from"]["model_version"] == "twin-v1" and card["settings_from"]["weights_sha256"] is None
    assert "twin" in card["threshold_rule"] and "validation" not in card
    saved = json.loads((tmp_path / "w.json").read_text())
    assert saved["score_threshold"] == 0.34 and saved["views"] == card["views"]


def test_export_of_a_run_with_held_out_pages_fits_its_own_settings(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    held = [(np.full((64, 64), 255, np.uint8), [Box(0.3, 0.3, 0.7, 0.5)])]
    cfg = _tiny_run(tmp_path, monkeypatch, held)
    assert (cfg.out / "best.pt").is_file() and "holdout_ap50" in (cfg.out / "log.jsonl").read_text()
    twin = tmp_path / "twin.json"
    twin.write_text(json.dumps({"score_threshold": 0.34}))
    with pytest.raises(ValueError, match="fitted on them"):
        export(cfg, tmp_path / "w.safetensors", "last", twin)


def test_twin_settings_takes_the_test_time_settings_and_needs_a_threshold() -> None:
    from models.train_detector import twin_settings

    card = {"score_threshold": 0.3, "box_scale": [1.0, 0.9], "arch": "centernet_m", "holdout": {}}
    assert twin_settings(card, "c.json") == {"score_threshold": 0.3, "box_scale": [1.0, 0.9]}
    with pytest.raises(ValueError, match="c.json holds no score_threshold"):
        twin_settings({"views": [[384, False]]}, "c.json")
