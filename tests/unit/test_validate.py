"""Config validation against target signatures and top-level schemas."""

from dataclasses import dataclass
from typing import Literal

import pytest
from omegaconf import OmegaConf

from nlpseq.config import validate_config
from nlpseq.errors import NlpseqError


def build(size: int, name: str = "x", mode: Literal["a", "b"] = "a", rate: float = 0.5,
          flag: bool = False, limit: int | None = None):
    return size, name, mode, rate, flag, limit


def flexible(size: int, **kwargs):
    return size


TARGET = f"{__name__}.build"


@dataclass
class Top:
    part: object
    seed: int = 0


def check(node: dict, schema=None):
    validate_config(OmegaConf.create(node), schema)


def test_a_valid_node_passes_and_ints_count_as_floats():
    check({"part": {"_target_": TARGET, "size": 3, "rate": 1, "limit": None, "mode": "b"}})


@pytest.mark.parametrize("node, message", [
    ({"_target_": TARGET, "sise": 3}, "Unknown key 'part.sise' for tests.unit.test_validate.build; "
                                      "valid keys: size, name, mode, rate, flag, limit"),
    ({"_target_": TARGET, "size": "3"}, "part.size='3' is not valid: expected int"),
    ({"_target_": TARGET, "size": True}, "part.size=True is not valid: expected int"),
    ({"_target_": TARGET, "flag": 1}, "part.flag=1 is not valid: expected bool"),
    ({"_target_": TARGET, "mode": "c"}, "part.mode='c' is not valid: expected one of 'a', 'b'"),
    ({"_target_": TARGET, "limit": 2.5}, "part.limit=2.5 is not valid: expected int or None"),
    ({"_target_": "tests.unit.test_validate.nothing"}, "part._target_: cannot import"),
])
def test_bad_nodes_name_the_key(node, message):
    with pytest.raises(NlpseqError) as err:
        check({"part": node})
    assert str(err.value) == message or str(err.value).startswith(message)


def test_functions_taking_kwargs_accept_any_key():
    check({"part": {"_target_": f"{__name__}.flexible", "size": 1, "anything": 2}})


def test_nested_targets_are_checked():
    with pytest.raises(NlpseqError, match="part.inner.sise"):
        check({"part": {"inner": {"_target_": TARGET, "sise": 1}}})


def test_top_level_schema_rejects_unknown_keys_and_types():
    check({"part": {}, "seed": 3}, Top)
    with pytest.raises(NlpseqError, match="Unknown config key 'sede'; top-level keys are: "
                                          "part, seed"):
        check({"part": {}, "sede": 3}, Top)
    with pytest.raises(NlpseqError, match="seed='x' is not valid: expected int"):
        check({"part": {}, "seed": "x"}, Top)
    with pytest.raises(NlpseqError, match="'seed' is required: add seed=... to the command line"):
        check({"part": {}, "seed": "???"}, Top)
    with pytest.raises(NlpseqError) as removed:
        check({"seed": 1}, Top)  # ~part on the command line
    assert str(removed.value) == ("The config has no 'part' (was it removed with ~part?); a run "
                                  "needs part")


def optimizer(target: str = "torch.optim.AdamW", **values) -> dict:
    return {"optimizer": {"_target_": target, "_partial_": True, **values}}


def schedule(target: str = "nlpseq.tasks.schedules.warmup_cosine", **values) -> dict:
    return {"scheduler": {"_target_": target, "_partial_": True, **values}}


@pytest.mark.parametrize("node, message", [
    (optimizer(lr=0), "optimizer.lr=0 is not valid: expected a number > 0"),
    (optimizer(lr=-1.0), "optimizer.lr=-1.0 is not valid: expected a number > 0"),
    (optimizer(lr=0.001, weight_decay=-0.1),
     "optimizer.weight_decay=-0.1 is not valid: expected a number >= 0"),
    (optimizer(betas=[0.9, 1.0]),
     "optimizer.betas.1=1.0 is not valid: expected a number in [0, 1)"),
    (optimizer(betas=[0.9]), "optimizer.betas=[0.9] is not valid: expected two numbers in [0, 1)"),
    (optimizer(eps=0), "optimizer.eps=0 is not valid: expected a number > 0"),
    (optimizer("torch.optim.SGD", lr=0.1, momentum=-0.5),
     "optimizer.momentum=-0.5 is not valid: expected a number in [0, 1)"),
    (optimizer("torch.optim.SGD", lr=0.1, momentum=0.0, nesterov=True),
     "optimizer.nesterov=true needs optimizer.momentum > 0 and optimizer.dampening=0"),
    ({"trainer": {"_target_": "pytorch_lightning.Trainer", "accumulate_grad_batches": 0}},
     "trainer.accumulate_grad_batches=0 is not valid: expected an integer >= 1"),
    ({"trainer": {"_target_": "pytorch_lightning.Trainer", "max_time": "1:2"}},
     "trainer.max_time='1:2' is not valid: expected DD:HH:MM:SS, e.g. 00:12:00:00 for 12 hours"),
    ({"trainer": {"_target_": "pytorch_lightning.Trainer", "max_time": {"hours": 1}}},
     "trainer.max_time={'hours': 1} is not valid: expected DD:HH:MM:SS"),
    (schedule(warmup_steps=-5), "scheduler.warmup_steps=-5 is not valid: expected an integer >= 0"),
    (schedule(min_lr_ratio=1.5),
     "scheduler.min_lr_ratio=1.5 is not valid: expected a number in [0, 1]"),
    (schedule("nlpseq.tasks.schedules.reduce_on_plateau", factor=1.0),
     "scheduler.factor=1.0 is not valid: expected a number in (0, 1)"),
    (schedule("nlpseq.tasks.schedules.reduce_on_plateau", patience=-1),
     "scheduler.patience=-1 is not valid: expected an integer >= 0"),
    (schedule("nlpseq.tasks.schedules.reduce_on_plateau", mode="up"),
     "scheduler.mode='up' is not valid: expected one of 'min', 'max'"),
])
def test_optimizer_and_schedule_numbers_out_of_range_are_refused(node, message):
    with pytest.raises(NlpseqError) as err:
        check(node)
    assert str(err.value).startswith(message)


def test_optimizer_and_schedule_numbers_in_range_pass():
    check({**optimizer(lr=1e-5, weight_decay=0, betas=[0, 0.999], eps=1e-8),
           **schedule(warmup_steps=0, min_lr_ratio=1)})
    check(optimizer("torch.optim.SGD", lr=0.1, momentum=0.9, nesterov=True))


def test_an_interpolation_of_a_key_nobody_set_is_named_in_one_line():
    """A task config without ``monitor`` leaves the checkpoint callback's ${task.monitor}
    dangling: the error names both keys, not an OmegaConf traceback."""
    cfg = OmegaConf.create({"task": {"size": 3},
                            "callbacks": {"checkpoint": {"monitor": "${task.monitor}"}}})
    with pytest.raises(NlpseqError) as caught:
        validate_config(cfg)
    assert str(caught.value) == (
        "callbacks.checkpoint.monitor: Interpolation key 'task.monitor' not found; "
        "set that key in the config or on the command line")
