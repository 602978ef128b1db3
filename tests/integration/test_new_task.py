"""A task is a plug: a tagging task defined entirely in tests/plugin_task trains,
evaluates, predicts, reports and is inspected through the real commands, and nothing in
nlpseq/cli knows it exists."""

import json
import re
from pathlib import Path

import pytest

from tests.integration.conftest import TINY, run_cli

CONF = Path(__file__).resolve().parents[1] / "plugin_task" / "conf"
PLUGIN = [f"hydra.searchpath=[file://{CONF}]", "allowed_targets=[tests.plugin_task.*]"]


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tagging") / "run"
    result = run_cli("train", "task=tagging", *TINY, "trainer.max_epochs=6", "optimizer.lr=0.02",
                     "encoder=gru", *PLUGIN, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_a_new_task_trains_and_its_final_evaluation_is_the_protocols(tagger):
    metrics = json.loads((tagger / "metrics.json").read_text())
    assert metrics["val/acc"] > 0.95  # a number or not: learnt from the token alone
    assert metrics["test/acc"] > 0.95
    assert metrics["test/tokens"] > 100
    assert (tagger / "checkpoints" / "best.ckpt").is_file()


def test_nlpseq_eval_gives_the_numbers_of_the_final_evaluation(tagger, tmp_path):
    result = run_cli("evaluate", f"ckpt_path={tagger}", *PLUGIN[1:], f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads((tagger / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    assert evaluated["test/acc"] == trained["test/acc"]
    assert evaluated["test/loss"] == pytest.approx(trained["test/loss"], rel=1e-6)
    assert evaluated["task"] == "tagging"


def test_a_checkpoint_of_a_task_nlpseq_does_not_know_needs_the_users_trust(tagger, tmp_path):
    result = run_cli("evaluate", f"ckpt_path={tagger}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert "tests.plugin_task.tagging.TaggingTask" in result.stderr


def test_nlpseq_predict_tags_each_token(tagger):
    result = run_cli("predict", f"ckpt_path={tagger}", "text=the cat 42 sat", *PLUGIN[1:])
    assert result.returncode == 0, result.stderr[-3000:]
    row = json.loads(result.stdout)
    assert row == {"text": "the cat 42 sat", "tags": ["word", "word", "num", "word"]}


def test_nlpseq_eval_refuses_options_the_task_does_not_read(tagger, tmp_path):
    result = run_cli("evaluate", f"ckpt_path={tagger}", "beam_size=2", *PLUGIN[1:],
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert "beam_size applies to translation checkpoints; " in result.stderr
    assert re.search(r"is a tagging one", result.stderr)


def test_nlpseq_report_and_inspect_read_it(tagger, tmp_path):
    report = run_cli("compare", str(tagger), "--out", str(tmp_path / "report"))
    assert report.returncode == 0, report.stderr[-3000:]
    assert "tagging" in (tmp_path / "report" / "report.md").read_text().lower()
    inspect = run_cli("inspect_cells", f"ckpt_path={tagger}", "text=the cat 42", *PLUGIN[1:],
                      f"hydra.run.dir={tmp_path / 'inspect'}")
    assert inspect.returncode == 0, inspect.stderr[-3000:]
    gates = json.loads((tmp_path / "inspect" / "gates.json").read_text())
    assert gates["tokens"] == ["the", "cat", "42"]
