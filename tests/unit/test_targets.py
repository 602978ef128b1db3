"""The allow-list of targets a stored config may name (nlpseq.config.targets)."""

import pytest
import torch
from omegaconf import OmegaConf

from nlpseq.config.targets import (
    check_patterns,
    check_stored_config,
    conf_targets,
    matches,
    run_targets,
)
from nlpseq.errors import NlpseqError

SENTIMENT = {
    "task": {"_target_": "nlpseq.tasks.SentimentTask", "embedding_dim": 8},
    "encoder": {"_target_": "nlpseq.encoders.RecurrentEncoder", "_partial_": True},
    "optimizer": {"_target_": "torch.optim.AdamW", "_partial_": True, "lr": 0.01},
    "scheduler": None,
    "data": {"_target_": "nlpseq.data.SentimentDataModule", "train_file": "a.tsv"},
    "callbacks": {"early_stopping": {"_target_": "pytorch_lightning.callbacks.EarlyStopping"}},
    "seed": 1,
}


def test_the_allow_list_is_what_conf_builds_by_group_and_nothing_of_hydra():
    admitted = conf_targets()
    assert admitted["encoder"] == {"nlpseq.encoders.RecurrentEncoder"}
    assert admitted["optimizer"] == {"torch.optim.Adam", "torch.optim.AdamW", "torch.optim.SGD"}
    assert "nlpseq.heads.RecurrentDecoder" in admitted["task"]  # task/translation.yaml's decoder
    assert "nlpseq.data.SentimentDataModule" in admitted["data"]  # set by data/base/
    everything = set().union(*admitted.values())
    assert "nlpseq.cli.sweep.SweepSummary" not in everything  # train.yaml's hydra: section
    assert not any("submitit" in target for target in everything)  # conf/hydra/launcher
    assert all(target.startswith(("nlpseq.", "torch.optim.", "pytorch_lightning."))
               for target in everything), everything


def test_a_config_of_conf_targets_passes():
    check_stored_config(SENTIMENT, "run.ckpt")


@pytest.mark.parametrize("where, node", [
    ("task", {"_target_": "nlpseq.cli.train.main"}),  # nlpseq's, but not a component
    ("task", {"_target_": "nlpseq.encoders.RecurrentEncoder"}),  # a component of another group
    ("optimizer", {"_target_": "torch.optim.AdamW",
                   "_args_": [[{"_target_": "builtins.open", "_partial_": True}]]}),
    ("scheduler", {"_target_": "builtins.eval", "_partial_": True, "_recursive_": False}),
    ("data", {"_target_": "nlpseq.data.SentimentDataModule", "label_names": [{"x": {
        "_target_": "os.system"}}]}),
    ("hydra", {"callbacks": {"c": {"_target_": "nlpseq.cli.sweep.SweepSummary"}}}),
    ("task", {"_target_": ["nlpseq.tasks.SentimentTask"]}),
])
def test_a_target_conf_does_not_build_there_is_refused_with_its_place(where, node):
    with pytest.raises(NlpseqError, match=r"^run\.ckpt: refuses to load: .* is not an nlpseq "
                                          rf"component \(at {where}[.\w]*\._target_; "):
        check_stored_config({**SENTIMENT, where: node}, "run.ckpt")


def test_interpolations_and_values_that_are_not_plain_are_refused():
    with pytest.raises(NlpseqError, match=r"refuses to load: data.train_file is an "
                                          r"interpolation '\$\{oc.env:HOME\}'"):
        check_stored_config({**SENTIMENT, "data": {**SENTIMENT["data"],
                                                  "train_file": "${oc.env:HOME}"}}, "run.ckpt")
    with pytest.raises(NlpseqError, match="malformed checkpoint: config value task.w is a Tensor"):
        check_stored_config({**SENTIMENT, "task": {**SENTIMENT["task"], "w": torch.ones(1)}},
                            "run.ckpt")


def test_a_deeply_nested_config_is_walked_without_recursion():
    node = {"_target_": "builtins.exec"}
    for _ in range(5000):
        node = {"inner": node}
    with pytest.raises(NlpseqError, match="'builtins.exec' is not an nlpseq component"):
        check_stored_config({"task": node}, "run.ckpt")


def test_patterns_are_dotted_names_or_packages_and_match_exactly():
    assert check_patterns(["mypkg.*", "other.Task"]) == ("mypkg.*", "other.Task")
    assert matches("mypkg.sub.Task", ["mypkg.*"]) and matches("other.Task", ["other.Task"])
    assert not matches("mypkgevil.Task", ["mypkg.*"])
    assert not matches("other.Task2", ["other.Task"])
    for bad in ("*", "", "mypkg.*.x", "my pkg", "a..b", 3):
        with pytest.raises(NlpseqError, match="allowed_targets: .* is not a dotted name"):
            check_patterns([bad])
    check_stored_config({**SENTIMENT, "task": {"_target_": "mypkg.MyTask"}}, "run.ckpt",
                        trusted=("mypkg.*",))


def test_a_training_run_trusts_its_own_targets_and_its_allowed_targets():
    cfg = OmegaConf.create({**SENTIMENT, "task": {"_target_": "mypkg.MyTask"},
                            "allowed_targets": ["extra.*"]})
    assert set(run_targets(cfg)) >= {"extra.*", "mypkg.MyTask", "torch.optim.AdamW"}
