"""Learning-rate schedules: factors computed by hand."""

import math

import pytest
import torch

from nlpseq.tasks.schedules import reduce_on_plateau, warmup_cosine, warmup_linear


def factors(make, steps, **kwargs):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = make(optimizer, total_steps=steps, **kwargs)["scheduler"]
    seen = []
    for _ in range(steps):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return seen


def test_warmup_cosine_by_hand():
    lrs = factors(warmup_cosine, 6, warmup_steps=2, min_lr_ratio=0.0)
    # warm-up: 1/2, 2/2; then cos over 4 steps: progress 0, 1/4, 2/4, 3/4
    expected = [0.5, 1.0] + [0.5 * (1 + math.cos(math.pi * p)) for p in (0, 0.25, 0.5, 0.75)]
    assert lrs == pytest.approx(expected)


def test_warmup_linear_by_hand():
    lrs = factors(warmup_linear, 5, warmup_steps=1, min_lr_ratio=0.2)
    assert lrs == pytest.approx([1.0, 1.0, 0.8, 0.6, 0.4])


def test_plateau_is_epoch_wise_and_monitors():
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    config = reduce_on_plateau(optimizer, total_steps=10, monitor="val/loss", patience=0)
    assert config["interval"] == "epoch" and config["monitor"] == "val/loss"
    config["scheduler"].step(1.0)
    config["scheduler"].step(2.0)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
