"""The three commands as a user runs them: files written, metrics, exit codes, errors."""

import json
import subprocess
import sys

import pytest
import torch

from tests.integration.conftest import TINY, error_line, run_cli, run_cli_cases


def test_train_writes_the_run_directory_and_learns_the_sample(trained_run):
    for name in (".hydra/config.yaml", "checkpoints/best.ckpt", "checkpoints/last.ckpt",
                 "tokenizer.json", "metrics.json", "csv/metrics.csv", "train.log"):
        assert (trained_run / name).is_file(), name
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test/acc"] > 0.8  # chance is 0.5 on the balanced sample
    assert metrics["val/acc"] > 0.8
    assert metrics["train/tokens_per_s"] > 0
    hparams = (trained_run / "csv" / "hparams.yaml").read_text()  # what TensorBoard shows too
    assert "hidden_size: 32" in hparams and "cell: lstm" in hparams


def test_eval_reproduces_the_test_metrics_of_training(trained_run, tmp_path):
    result = run_cli("evaluate", f"ckpt_path={trained_run}/checkpoints/best.ckpt",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    trained = json.loads((trained_run / "metrics.json").read_text())
    assert abs(evaluated["test/acc"] - trained["test/acc"]) < 1e-6
    assert "confusion matrix" in result.stdout and "macro-F1" in result.stdout


def test_eval_on_another_file(trained_run, tmp_path, write_tsv):
    rows = [("the movie is wonderful .", "positive"), ("the plot is dull .", "negative")] * 5
    test_file = write_tsv("other.tsv", rows)
    result = run_cli("evaluate", f"ckpt_path={trained_run}", "data=files",
                     f"data.test_file={test_file}", f"hydra.run.dir={tmp_path}/ev")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert metrics["test/examples"] == 10


def test_predict_text_file_and_stdin_give_json_lines(trained_run, tmp_path):
    ckpt = f"ckpt_path={trained_run}/checkpoints/best.ckpt"
    one = run_cli("predict", ckpt, "text=what a wonderful film .")
    assert one.returncode == 0, one.stderr[-2000:]
    row = json.loads(one.stdout)
    assert row["label"] in ("negative", "positive")
    assert abs(sum(row["probabilities"].values()) - 1) < 1e-5
    assert row["probability"] == max(row["probabilities"].values())

    inputs = tmp_path / "in.txt"
    inputs.write_text("the plot is dull .\n\nwhat a charming story .\n")
    out = tmp_path / "out.jsonl"
    from_file = run_cli("predict", ckpt, f"input_file={inputs}", f"output_file={out}")
    assert from_file.returncode == 0, from_file.stderr[-2000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["text"] for r in rows] == ["the plot is dull .", "what a charming story ."]

    piped = run_cli("predict", ckpt, stdin=inputs.read_text())
    assert [json.loads(line) for line in piped.stdout.splitlines()] == rows


def test_a_run_never_overwrites_existing_checkpoints(trained_run):
    best = trained_run / "checkpoints" / "best.ckpt"
    before = best.read_bytes()
    result = run_cli("train", *TINY, f"hydra.run.dir={trained_run}")
    assert result.returncode == 2
    assert "already holds the record of a run (checkpoints/best.ckpt" in error_line(result)
    assert best.read_bytes() == before


def test_user_errors_are_one_line_with_exit_status_2(trained_run, tmp_path):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"not a checkpoint at all")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes("sentence\tlabel\ncaf\xe9\tpositive\n".encode("latin-1"))
    ckpt = f"ckpt_path={trained_run}"
    cases = [
        (("train", "encoder=lsmt"), "Unknown choice encoder=lsmt; choose one of gru, lstm, rnn"),
        (("train", "encoder.hiden_size=8"), "Unknown key 'encoder.hiden_size'"),
        (("train", "trainer.max_epoch=2", "trainer.limit_train_batches=2"),
         "Unknown key 'trainer.max_epoch'; trainer has: accelerator"),
        (("train", "+trainer.max_steps=5"),
         "'trainer.max_steps' is already in the config: set it without the '+' "
         "(trainer.max_steps=5)"),
        (("train", "encoder.cell=lsmt"), "expected one of 'rnn', 'lstm', 'gru'"),
        (("train", "data=files", f"data.train_file={tmp_path}/nope.tsv"), "nope.tsv"),
        (("train", "data=files", f"data.train_file={latin1}"),
         "line 2, column 4 is not valid UTF-8"),
        (("predict", ckpt, "text="), "text is empty"),
        (("predict", ckpt, "text=dull, but short"),
         "quote the value inside the shell's quotes, 'text=\"dull, but short\"'"),
        (("predict", ckpt, "text=a = b"), "quote the value inside the shell's quotes"),
        (("predict", ckpt, "text=it's great"),
         "cannot read 'text=it's great' as key=value: quote the value inside the shell's "
         "quotes, \"text=\\\"it's great\\\"\""),
        (("train", "encoder=gru,lstm"), "'encoder=gru,lstm' is a sweep: add -m"),
        (("evaluate",), "'ckpt_path' is required: add ckpt_path=... to the command line"),
        (("predict", f"ckpt_path={tmp_path}/missing.ckpt", "text=hi"), "Checkpoint not found"),
        (("evaluate", f"ckpt_path={garbage}"), "is not a readable checkpoint"),
        (("evaluate", f"ckpt_path={foreign}"), "is not an nlpseq checkpoint"),
    ]
    results = run_cli_cases([args for args, _ in cases], f"hydra.run.dir={tmp_path}/run")
    for (args, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert expected in error_line(result), args
        assert "Traceback" not in result.stderr, args


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_help_of_the_checkpoint_commands_offers_only_what_they_accept(command):
    """nlpseq-eval and nlpseq-predict take a checkpoint's model as it is: their --help
    names no training group (encoder=, trainer.*) that they would refuse."""
    result = run_cli(command, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "ckpt_path" in result.stdout
    for training_only in ("encoder:", "trainer:", "optimizer:", "trainer.max_epochs"):
        assert training_only not in result.stdout, training_only


def test_the_console_commands_answer_help_without_torch_or_lightning():
    """--help, --cfg and a bad override never import torch, Lightning or datasets (seconds
    of start-up): nlpseq.cli.entry imports a command's work module only for work."""
    probe = ("import sys; from nlpseq.cli import entry; sys.argv = ['nlpseq-train', '--help']\n"
             "try:\n    entry.train()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'pytorch_lightning', 'datasets') "
             "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "nlpseq-train" in result.stdout and result.stdout.strip().endswith("[]")
