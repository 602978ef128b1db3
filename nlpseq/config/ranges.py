"""Numbers of the optimizer, the learning-rate schedule and the trainer that no run can
train with.

The type checks of ``validate`` accept any float for ``optimizer.lr``; these bounds refuse
the values torch would train on silently (a learning rate of 0 learns nothing) or reject
with a traceback deep inside Lightning (a negative one), before any data is read. Keys are
the names torch and ``nlpseq.tasks.schedules`` use, wherever ``conf/optimizer`` and
``conf/scheduler`` (or a user's own file in those groups) write them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from omegaconf import DictConfig, ListConfig, OmegaConf

from nlpseq.checks import is_number
from nlpseq.errors import NlpseqError

Bound = tuple[Callable[[float], bool], str]
BOUNDS: dict[str, dict[str, Bound]] = {
    "optimizer": {
        "lr": (lambda v: v > 0, "a number > 0"),
        "weight_decay": (lambda v: v >= 0, "a number >= 0"),
        "momentum": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
        "dampening": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
        "eps": (lambda v: v > 0, "a number > 0"),
        "alpha": (lambda v: 0 <= v < 1, "a number in [0, 1)"),
    },
    "scheduler": {
        "warmup_steps": (lambda v: v >= 0, "an integer >= 0"),
        "min_lr_ratio": (lambda v: 0 <= v <= 1, "a number in [0, 1]"),
        "factor": (lambda v: 0 < v < 1, "a number in (0, 1)"),
        "patience": (lambda v: v >= 0, "an integer >= 0"),
    },
    "trainer": {
        "accumulate_grad_batches": (lambda v: v >= 1, "an integer >= 1"),
    },
}
BETA = (lambda v: 0 <= v < 1, "a number in [0, 1)")


def check_ranges(cfg: DictConfig) -> None:
    """Raise NlpseqError naming the first optimizer, schedule or trainer value out of its
    range."""
    for group, bounds in BOUNDS.items():
        node = OmegaConf.select(cfg, group, default=None)
        if not isinstance(node, DictConfig):
            continue
        for key, bound in bounds.items():
            if key in node:
                _check(f"{group}.{key}", node[key], bound)
        if group == "optimizer":
            _check_betas(node)
            _check_nesterov(node)
        if group == "trainer":
            _check_max_time(node.get("max_time"))


MAX_TIME = re.compile(r"\d{1,5}:\d{1,2}:\d{1,2}:\d{1,2}")  # Lightning's DD:HH:MM:SS


def _check_max_time(value) -> None:
    """``trainer.max_time`` as a string Lightning reads, ``DD:HH:MM:SS``."""
    if value is not None and not (isinstance(value, str) and MAX_TIME.fullmatch(value)):
        raise NlpseqError(f"trainer.max_time={value!r} is not valid: expected DD:HH:MM:SS, "
                          "e.g. 00:12:00:00 for 12 hours")


def _check(key: str, value, bound: Bound) -> None:
    test, expected = bound
    number = is_number(value)
    if value is not None and not (number and test(value)):
        raise NlpseqError(f"{key}={value!r} is not valid: expected {expected}")


def _check_betas(node: DictConfig) -> None:
    betas = node.get("betas")
    if betas is None:
        return
    if not isinstance(betas, ListConfig) or len(betas) != 2:
        shown = list(betas) if isinstance(betas, ListConfig) else betas
        raise NlpseqError(f"optimizer.betas={shown!r} is not valid: expected two numbers in "
                          "[0, 1), e.g. [0.9, 0.999]")
    for i, beta in enumerate(betas):
        _check(f"optimizer.betas.{i}", beta, BETA)


def _check_nesterov(node: DictConfig) -> None:
    if node.get("nesterov") and (node.get("momentum", 0) <= 0 or node.get("dampening", 0) != 0):
        raise NlpseqError(
            f"optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0; "
            f"got momentum={node.get('momentum', 0)}, dampening={node.get('dampening', 0)}")
