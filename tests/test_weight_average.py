"""Weight averaging of a run: the running mean of parameters, its file, BatchNorm statistics measured again."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.weight_average import RunningAverage, recompute_batchnorm


def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))


def _snapshots() -> list[nn.Module]:
    nets = [nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3)) for _ in range(3)]
    for i, net in enumerate(nets):
        torch.manual_seed(i)
        for p in net.parameters():
            nn.init.normal_(p)
    return nets


def test_running_average_is_the_mean_of_the_snapshots(tmp_path) -> None:
    nets = _snapshots()
    avg = RunningAverage()
    for net in nets:
        avg.update(net)
    assert avg.n == 3
    target = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3))
    buffers = {k: v.clone() for k, v in target.named_buffers()}
    avg.apply_to(target)
    for name, p in target.named_parameters():
        expected = sum(dict(n.named_parameters())[name] for n in nets) / 3
        assert torch.allclose(p, expected, atol=1e-6), name
    assert all(torch.equal(v, buffers[k]) for k, v in target.named_buffers())  # buffers are not averaged
    avg.save(tmp_path / "a.safetensors")
    again = RunningAverage.load(tmp_path / "a.safetensors")
    assert again.n == 3 and all(torch.equal(again.mean[k], avg.mean[k]) for k in avg.mean)
    # going on from the file gives the same mean as going on in memory
    extra = _snapshots()[0]
    avg.update(extra)
    again.update(extra)
    assert all(torch.allclose(again.mean[k], avg.mean[k]) for k in avg.mean)


def test_running_average_refuses_other_networks_and_empty_use() -> None:
    avg = RunningAverage()
    with pytest.raises(ValueError, match="no snapshot"):
        avg.apply_to(nn.Linear(2, 2))
    avg.update(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="differ"):
        avg.update(nn.Linear(3, 2))
    with pytest.raises(ValueError, match="differ"):
        avg.apply_to(nn.Conv2d(1, 1, 1))


def test_recompute_batchnorm_measures_the_images_statistics() -> None:
    net = nn.Sequential(nn.BatchNorm2d(1))
    net[0].running_mean.fill_(5.0)
    rng = np.random.default_rng(0)
    images = [rng.normal(2.0, 3.0, (8, 10)).astype(np.float32) for _ in range(10)]
    out = recompute_batchnorm(net, (np.stack(images[i:i + 5]) for i in (0, 5)))  # equal batches count the same
    assert not out.training and net[0].momentum == 0.1  # momentum restored
    assert abs(float(net[0].running_mean[0]) - float(np.mean(images))) < 1e-4
    assert abs(float(net[0].running_var[0]) - float(np.var(images))) < 0.3
    plain = nn.Sequential(nn.Conv2d(1, 1, 1))
    weight = plain[0].weight.clone()
    assert recompute_batchnorm(plain, [np.stack(images)]) is plain and torch.equal(plain[0].weight, weight)
    with pytest.raises(ValueError, match="at least one image"):
        recompute_batchnorm(net, [])
