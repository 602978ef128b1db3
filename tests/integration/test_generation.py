"""task=generation as a user runs it: train each cell, evaluate, generate, and the errors."""

import json
import math

import pytest
import torch

from nlpseq.cli.train import train
from nlpseq.errors import NlpseqError
from nlpseq.tasks.checkpoint import load_task, read_checkpoint
from tests.integration.conftest import TINY, compose_config, error_line, run_cli, run_cli_cases

LM = ["task=generation", *TINY, "encoder.num_layers=2", "data.block_size=32"]


@pytest.fixture(scope="session")
def trained_lm(tmp_path_factory):
    """One small character-level language model on the embedded sample (shared)."""
    run_dir = tmp_path_factory.mktemp("lm") / "run"
    result = run_cli("train", "task=generation", "tokenizer=char", "task.embedding_dim=48",
                     "encoder.hidden_size=48", "optimizer.lr=0.01", "trainer.max_epochs=4",
                     "trainer.enable_progress_bar=false", "logger=csv",
                     "callbacks.text_sample.max_new_tokens=40", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "sample at epoch 3" in result.stderr  # the sample callback wrote to the log
    return run_dir


def test_a_character_model_learns_the_sample_and_reports_nats_ppl_bpc(trained_lm):
    metrics = json.loads((trained_lm / "metrics.json").read_text())
    # a uniform guess over the ~40 characters costs ln(40) = 3.7 nats; the model learns
    assert metrics["val/loss"] < 2.5
    assert metrics["val/ppl"] == pytest.approx(math.exp(metrics["val/loss"]))
    assert metrics["val/bpc"] == pytest.approx(metrics["val/loss"] / math.log(2))
    assert metrics["test/tokens"] > 1000 and "test/bpc" in metrics


def test_eval_reproduces_the_test_metrics_and_reads_other_text_files(trained_lm, tmp_path):
    result = run_cli("evaluate", f"ckpt_path={trained_lm}", f"hydra.run.dir={tmp_path}/a")
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.loads((tmp_path / "a" / "metrics.json").read_text())
    trained = json.loads((trained_lm / "metrics.json").read_text())
    assert evaluated["test/loss"] == pytest.approx(trained["test/loss"], abs=1e-5)
    assert "perplexity" in result.stdout

    text = tmp_path / "other.txt"
    text.write_text("the cat sat on the mat.\nthe dog ran to the barn.\n" * 40)
    result = run_cli("evaluate", f"ckpt_path={trained_lm}", "data=files",
                     f"data.test_file={text}", "batch_size=2",
                     f"hydra.run.dir={tmp_path}/b")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "b" / "metrics.json").read_text())["test/tokens"] > 1500


def test_predict_streams_a_continuation_and_repeats_it_with_a_seed(trained_lm):
    ckpt = f"ckpt_path={trained_lm}"
    runs = [run_cli("predict", ckpt, "prompt=the cat", "max_new_tokens=30", "seed=3",
                    "temperature=0.7", "top_k=10", "top_p=0.9", "stop_at_eos=true")
            for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout and runs[0].stdout.startswith("the cat")
    assert 8 < len(runs[0].stdout) <= len("the cat") + 30 + 1
    greedy = run_cli("predict", ckpt, "prompt=", "greedy=true", "max_new_tokens=20")
    assert greedy.returncode == 0 and "start token" in greedy.stderr


def test_prompts_from_a_file_give_one_json_line_each(trained_lm, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("the dog\nwhere is\n")
    out = tmp_path / "out.jsonl"
    result = run_cli("predict", f"ckpt_path={trained_lm}", f"input_file={prompts}",
                     f"output_file={out}", "max_new_tokens=15", "greedy=true")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["prompt"] for row in rows] == ["the dog", "where is"]
    assert all(0 < len(row["continuation"]) <= 15 for row in rows)


def test_generation_errors_are_one_line_with_exit_status_2(trained_lm, trained_run, tmp_path):
    lm, sentiment = f"ckpt_path={trained_lm}", f"ckpt_path={trained_run}"
    cases = [
        (("predict", lm, "prompt=the", "max_new_tokens=0"), "max_new_tokens must be a positive"),
        (("predict", lm, "prompt=the", "top_p=1.5"), "top_p must be in (0, 1]; got 1.5"),
        (("predict", lm, "prompt=the", "temperature=0"), "temperature must be"),
        (("predict", lm, "text=the cat"), "is a generation checkpoint: give prompt="),
        (("predict", sentiment, "prompt=the"),
         "is a 'sentiment' checkpoint; this command needs a 'generation' one"),
        (("evaluate", lm, "data=sst2"), "data=sst2 is a sentiment dataset"),
        (("train", "task=generation", "encoder.bidirectional=true"),
         "needs a unidirectional encoder"),
        (("train", "task=generation", "data=sst2"),
         "data=sst2 is a sentiment dataset and cannot train task=generation"),
    ]
    results = run_cli_cases([args for args, _ in cases], f"hydra.run.dir={tmp_path}/run")
    for (args, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert expected in error_line(result), args


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_cell_trains_as_a_language_model_and_round_trips(cell, tmp_path):
    cfg = compose_config("train", [*LM, f"encoder={cell}", "debug=limit"], tmp_path)
    metrics = train(cfg)
    assert metrics["val/loss"] > 0 and metrics["val/ppl"] > 1
    task, tokenizer, _ = load_task(tmp_path / "checkpoints" / "last.ckpt")
    assert task.task_name == "generation" and task.model.encoder.cell == cell
    again, _, _ = load_task(tmp_path / "checkpoints" / "last.ckpt")
    first = task.complete("the", 20, seed=1)
    assert again.complete("the", 20, seed=1) == first


@pytest.mark.parametrize("overrides", [
    ["data.mode=lines"], ["tokenizer=sp_bpe", "tokenizer.vocab_size=200"],
    ["tokenizer=char", "data.line_end=newline"], ["task.tie_weights=false"],
    ["encoder.hidden_size=24"],  # tied with a projection
])
def test_generation_options_train(overrides, tmp_path):
    metrics = train(compose_config("train", [*LM, "debug=limit", *overrides], tmp_path))
    assert metrics["val/loss"] > 0


def test_a_bidirectional_language_model_fails_before_any_work(tmp_path):
    cfg = compose_config("train", [*LM, "encoder.bidirectional=true"], tmp_path)
    with pytest.raises(NlpseqError, match="unidirectional"):
        train(cfg)
    assert not (tmp_path / "tokenizer.json").exists()


def test_a_bad_sampling_option_prints_nothing_of_the_prompt(trained_lm):
    result = run_cli("predict", f"ckpt_path={trained_lm}", "prompt=ROMEO:", "temperature=0")
    assert result.returncode == 2
    assert result.stdout == ""  # refused before the prompt is shown
    assert "temperature must be" in error_line(result)


def test_a_checkpoint_from_before_num_streams_reads_its_streams_from_batch_size(
        trained_lm, tmp_path):
    """Earlier nlpseq stored a stream-mode model's streams as data.batch_size."""
    checkpoint = torch.load(trained_lm / "checkpoints" / "best.ckpt", weights_only=True)
    data = checkpoint["nlpseq"]["config"]["data"]
    del data["num_streams"], data["eval_num_streams"]
    data["batch_size"], data["eval_batch_size"] = 5, 3
    torch.save(checkpoint, tmp_path / "old.ckpt")
    data = read_checkpoint(tmp_path / "old.ckpt")["nlpseq"]["config"]["data"]
    assert (data["num_streams"], data["eval_num_streams"]) == (5, 3)
    assert load_task(tmp_path / "old.ckpt")[2].data.num_streams == 5
