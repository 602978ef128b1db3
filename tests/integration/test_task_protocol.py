"""Validation during training and ``nlpseq-eval`` are one computation: for every task, the
metrics Lightning logs in a validation loop equal those ``evaluate`` reports on the same
data (an untrained model is as good a witness as a trained one)."""

from pathlib import Path

import pytest
import pytorch_lightning as pl

from nlpseq.cli.train import prepare_data
from nlpseq.tasks.checkpoint import build_task
from tests.integration.conftest import TINY, compose_config

PLUGIN_CONF = Path(__file__).resolve().parents[1] / "plugin_task" / "conf"
CASES = {
    "sentiment": ["task=sentiment"],
    "generation": ["task=generation"],
    "generation_lines": ["task=generation", "data.mode=lines"],
    "translation": ["task=translation", "task.decoder.hidden_size=16"],
    "probe": ["experiment=adding", "data.length=12", "++data.train_size=64",
              "++data.validation_size=32", "++data.test_size=32"],
    "tagging": ["task=tagging", f"hydra.searchpath=[file://{PLUGIN_CONF}]"],
}


@pytest.mark.parametrize("case", list(CASES))
def test_validation_and_evaluate_give_identical_numbers(case, tmp_path):
    tiny = [o for o in TINY if case != "probe" or not o.startswith("task.embedding_dim")]
    cfg = compose_config("train", [*tiny, *CASES[case]], tmp_path)
    pl.seed_everything(0)
    datamodule, tokenizer = prepare_data(cfg)
    task = build_task(cfg, tokenizer, datamodule.label_names)
    loader = datamodule.split_loader("validation")
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    logged = trainer.validate(task, dataloaders=loader, verbose=False)[0]
    options = {"beam_size": 1} if case == "translation" else {}  # validation decodes greedily
    report = task.evaluate(loader, "val", **options)
    assert logged, "validation logged nothing"
    for key, value in logged.items():
        assert value == pytest.approx(report[key], rel=1e-5, abs=1e-6), key
    assert f"val/{task.monitor.removeprefix('val/')}" in logged  # what picks the checkpoint

    tested = trainer.test(task, dataloaders=loader, verbose=False)[0]  # the task's defaults
    report = task.evaluate(loader, "test")
    for key, value in tested.items():
        assert value == pytest.approx(report[key], rel=1e-5, abs=1e-6), key
