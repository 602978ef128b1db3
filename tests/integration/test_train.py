"""Training in-process with the real configs: every cell, options, repeatability, reload."""

import csv
import json

import pytest
import torch

from nlpseq.cli.train import train
from nlpseq.errors import NlpseqError
from nlpseq.tasks.checkpoint import load_task, read_checkpoint
from tests.integration.conftest import TINY, compose_config

SHORT = [*TINY, "debug=limit"]


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_cell_trains_and_its_checkpoint_round_trips(cell, tmp_path):
    cfg = compose_config("train", [*TINY, f"encoder={cell}", "optimizer.lr=0.01"], tmp_path)
    metrics = train(cfg)
    assert 0.0 <= metrics["val/acc"] <= 1.0 and metrics["test/examples"] == 150
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["val/acc"] == pytest.approx(metrics["val/acc"])

    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "last.ckpt")
    meta = checkpoint["nlpseq"]
    assert meta["task"] == "sentiment" and meta["label_names"] == ["negative", "positive"]
    assert meta["config"]["encoder"]["cell"] == cell
    assert "hydra" not in meta["config"]

    task, tokenizer, _ = load_task(tmp_path / "checkpoints" / "last.ckpt")
    again, _, _ = load_task(tmp_path / "checkpoints" / "last.ckpt")
    tokens = torch.tensor([tokenizer.encode("the movie is not dull .")])
    lengths = torch.tensor([tokens.shape[1]])
    assert task.model.encoder.cell == cell
    assert torch.equal(task(tokens, lengths), again(tokens, lengths))


def test_the_same_seed_gives_the_same_run(tmp_path):
    runs = [train(compose_config("train", [*SHORT, "seed=3"], tmp_path / str(i)))
            for i in range(2)]
    assert runs[0]["val/loss"] == runs[1]["val/loss"]
    other = train(compose_config("train", [*SHORT, "seed=4"], tmp_path / "other"))
    assert other["val/loss"] != runs[0]["val/loss"]


@pytest.mark.parametrize("overrides", [
    ["task.pooling=last"], ["task.pooling=mean"], ["task.pooling=attention"],
    ["optimizer=sgd"], ["optimizer=adam"], ["scheduler=plateau"], ["scheduler=constant"],
    ["scheduler=warmup_linear"], ["tokenizer=sp_unigram"], ["tokenizer=char"],
    ["logger=many"], ["encoder.num_layers=2", "encoder.dropout=0.2"],
    ["encoder=rnn", "encoder.nonlinearity=relu"], ["task.word_dropout=0.3"],
    ["task.label_smoothing=0.1"], ["task.mixup_alpha=0.4"], ["task.adversarial_epsilon=0.05"],
])
def test_options_train(overrides, tmp_path):
    metrics = train(compose_config("train", [*SHORT, *overrides], tmp_path))
    assert metrics["val/loss"] > 0
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()


def test_mixed_precision_trains_with_the_fused_optimizer_unfused(tmp_path, caplog):
    """trainer.precision=bf16-mixed with AdamW(fused=True) and gradient clipping: Lightning
    refuses a fused optimizer there, so the task builds it unfused (it crashed before)."""
    cfg = compose_config("train", [*SHORT, "trainer.precision=bf16-mixed"], tmp_path)
    with caplog.at_level("INFO", logger="nlpseq.task"):
        metrics = train(cfg)
    assert metrics["val/loss"] > 0
    assert "the optimizer runs unfused (fused=false)" in caplog.text


def test_ema_validates_saves_and_evaluates_the_averaged_weights(tmp_path):
    overrides = ["callbacks=ema", "callbacks.ema.decay=0.9", "optimizer.lr=0.01", "logger=csv"]
    metrics = train(compose_config("train", [*TINY, *overrides], tmp_path))
    checkpoint = read_checkpoint(tmp_path / "checkpoints" / "best.ckpt")
    average, trained = checkpoint["state_dict"], checkpoint["current_model_state"]
    assert average.keys() == trained.keys()
    assert not torch.equal(average["model.embedding.weight"], trained["model.embedding.weight"])
    # The best check was measured on the average, which is what best.ckpt holds: the final
    # evaluation of best.ckpt gives the same accuracy as the check that chose it.
    with open(tmp_path / "csv" / "metrics.csv") as file:
        checks = [float(row["val/acc"]) for row in csv.DictReader(file) if row["val/acc"]]
    assert metrics["val/acc"] == pytest.approx(max(checks), abs=1e-6)


def test_train_loss_is_logged_every_n_steps_and_validation_as_often_as_asked(tmp_path):
    overrides = ["logger=csv", "trainer.max_epochs=1", "trainer.log_every_n_steps=3",
                 "trainer.val_check_interval=0.5"]
    train(compose_config("train", [*TINY, *overrides], tmp_path))
    with open(tmp_path / "csv" / "metrics.csv") as file:
        rows = list(csv.DictReader(file))
    train_steps = [int(row["step"]) for row in rows if row["train/loss"]]
    val_steps = [int(row["step"]) for row in rows if row["val/acc"]]
    last_step = max(int(row["step"]) for row in rows)
    assert train_steps == list(range(2, last_step + 1, 3))
    assert len(val_steps) == 2 and val_steps[-1] == last_step


def test_fast_dev_run_writes_no_checkpoint(tmp_path):
    metrics = train(compose_config("train", [*TINY, "debug=fdr"], tmp_path))
    assert "val/acc" not in metrics
    assert not list(tmp_path.glob("checkpoints/*.ckpt"))


def test_checkpoint_of_another_task_is_refused_naming_both(tmp_path):
    train(compose_config("train", SHORT, tmp_path))
    checkpoint = torch.load(tmp_path / "checkpoints" / "best.ckpt", weights_only=True)
    checkpoint["nlpseq"]["task"] = "generation"
    torch.save(checkpoint, tmp_path / "lm.ckpt")
    with pytest.raises(NlpseqError, match="is a 'generation' checkpoint; this command needs "
                                          "a 'sentiment' one"):
        load_task(tmp_path / "lm.ckpt", expected_task="sentiment")


def test_without_a_test_file_test_metrics_are_the_validation_ones(tmp_path, write_tsv):
    rows = [("what a wonderful film .", "positive"), ("the plot is dull .", "negative")] * 20
    train_file, dev_file = write_tsv("train.tsv", rows), write_tsv("dev.tsv", rows[:10])
    metrics = train(compose_config("train", [*SHORT, "data=files", f"data.train_file={train_file}",
                                             f"data.validation_file={dev_file}"], tmp_path))
    assert metrics["test/examples"] == metrics["val/examples"] == 10
    assert metrics["test/acc"] == metrics["val/acc"] and metrics["test/loss"] == metrics["val/loss"]


def test_bad_data_fails_before_any_file_is_written(tmp_path, write_tsv):
    bad = write_tsv("bad.tsv", [("fine", "positive")], header=("text", "label"))
    cfg = compose_config("train", [*SHORT, "data=files", f"data.train_file={bad}"], tmp_path)
    with pytest.raises(NlpseqError, match="columns found: text, label"):
        train(cfg)
    assert not (tmp_path / "checkpoints").exists()
