"""DDP on the CPU (gloo, 2 processes): the same metrics as one process, and every rank of
every job working in that job's own run directory — also inside a -m sweep."""

import json

import pytest

from tests.integration.conftest import TINY, run_cli

RUN = [*TINY, "task.dropout=0", "task.embedding_dropout=0", "task.word_dropout=0",
       "data.batch_size=16"]
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


@pytest.mark.parametrize("loss", [[], pytest.param(["task.adversarial_epsilon=0.05"],
                                                     marks=pytest.mark.slow)],
                         ids=["plain", "adversarial"])
def test_two_processes_give_the_metrics_of_one(tmp_path, loss):
    """Adversarial training takes a gradient to the word vectors inside the step, which DDP
    must leave alone; its steps are per sentence, so half batches give the same ones."""
    one = run_cli("train", *RUN, *loss, f"hydra.run.dir={tmp_path / 'one'}", cwd=tmp_path)
    two = run_cli("train", *RUN, *loss, *DDP, f"hydra.run.dir={tmp_path / 'two'}", cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    assert (tmp_path / "two" / "ddp_rank_1.log").is_file()  # the second rank ran, in this dir
    expected = json.loads((tmp_path / "one" / "metrics.json").read_text())
    got = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert got["train/best_step"] == expected["train/best_step"]  # same number of steps
    for key in ("val/acc", "val/loss", "test/acc"):
        assert got[key] == pytest.approx(expected[key], abs=1e-4), key
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # no stray outputs/


@pytest.mark.slow  # a sweep of two-process jobs, ~23 s (CI runs it with make test-slow)
def test_ddp_inside_a_sweep_keeps_every_rank_in_its_job_directory(tmp_path):
    sweep = tmp_path / "sweep"
    result = run_cli("train", "-m", *RUN, *DDP, "encoder=gru,rnn", "trainer.max_epochs=1",
                     f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in ("0", "1"):
        assert json.loads((sweep / job / "status.json").read_text())["status"] == "finished"
        assert (sweep / job / "metrics.json").is_file()
        assert (sweep / job / "ddp_rank_1.log").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    assert sorted(p.name for p in sweep.iterdir()) == ["0", "1", "multirun.yaml"]
