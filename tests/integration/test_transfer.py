"""encoder.init_from / task.decoder.init_from: a language model's embedding, encoder and
tokenizer start a sentiment model, a language model and a translation model; settings
that do not fit are refused; the transferred model loads without the pretrained run."""

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from nlpseq.cli.inspect_cells import text_example
from nlpseq.cli.train import prepare_data, start_from_pretrained, train
from nlpseq.errors import NlpseqError
from nlpseq.export.exporter import export_checkpoint
from nlpseq.export.runtime import load as load_exported
from nlpseq.tasks.checkpoint import build_task, load_task
from nlpseq.tasks.transfer import pretrained_tokenizers
from tests.integration.conftest import TINY, compose_config, error_line, run_cli, run_cli_cases

ONE_EPOCH = [*TINY, "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory):
    """A tiny 2-layer LSTM language model on the sample text."""
    run_dir = tmp_path_factory.mktemp("lm") / "run"
    train(compose_config("train", ["task=generation", *ONE_EPOCH, "encoder.num_layers=2"],
                         run_dir))
    return run_dir


def transferred(overrides, run_dir):
    """Build (task, pretrained) as nlpseq-train does, before any training."""
    cfg = compose_config("train", overrides, run_dir)
    pretrained = start_from_pretrained(cfg)
    datamodule, tokenizer = prepare_data(cfg, None, pretrained_tokenizers(pretrained))
    task = build_task(cfg, tokenizer, datamodule.label_names)
    task.init_from_pretrained(pretrained)
    return task, pretrained, cfg


def test_sentiment_starts_from_the_language_model(lm_run, tmp_path):
    lm, _, _ = load_task(lm_run)
    task, pretrained, cfg = transferred([f"encoder.init_from={lm_run}"], tmp_path)
    assert pretrained["encoder"].path == lm_run / "checkpoints" / "best.ckpt"
    # the cell, sizes and direction come from the language model (sentiment's default
    # would be a bidirectional 1-layer encoder)
    assert (cfg.encoder.cell, cfg.encoder.hidden_size, cfg.encoder.num_layers,
            cfg.encoder.bidirectional, cfg.task.embedding_dim) == ("lstm", 16, 2, False, 16)
    assert task.tokenizer.to_state() == lm.tokenizer.to_state()  # the same vocabulary
    assert torch.equal(task.model.embedding.weight, lm.model.embedding.weight)
    lm_encoder = lm.model.encoder.state_dict()
    for name, value in task.model.encoder.state_dict().items():
        assert torch.equal(value, lm_encoder[name]), name


def test_language_model_continues_with_its_output_layer(lm_run, tmp_path):
    lm, _, _ = load_task(lm_run)
    task, _, _ = transferred(["task=generation", f"encoder.init_from={lm_run}"], tmp_path)
    for name, value in lm.model.state_dict().items():
        assert torch.equal(task.model.state_dict()[name], value), name


def test_translation_starts_both_sides(lm_run, tmp_path):
    lm, _, _ = load_task(lm_run)
    task, _, _ = transferred(["task=translation", f"encoder.init_from={lm_run}",
                              f"task.decoder.init_from={lm_run}",
                              "task.decoder.input_feeding=false"], tmp_path)
    model = task.model
    assert task.tokenizer.source.to_state() == lm.tokenizer.to_state()
    assert task.tokenizer.target.to_state() == lm.tokenizer.to_state()
    assert torch.equal(model.source_embedding.weight, lm.model.embedding.weight)
    assert torch.equal(model.target_embedding.weight, lm.model.embedding.weight)
    assert torch.equal(model.encoder.rnn.weight_hh_l1, lm.model.encoder.rnn.weight_hh_l1)
    assert torch.equal(model.decoder.rnn.weight_ih_l0, lm.model.encoder.rnn.weight_ih_l0)


def test_settings_that_do_not_fit_are_refused(lm_run, tmp_path):
    init = f"encoder.init_from={lm_run}"
    ckpt = lm_run / "checkpoints" / "best.ckpt"
    cases = [
        (("train", init, "encoder=gru"),
         "error: encoder.cell='gru' does not match encoder.init_from: the checkpoint has "
         "encoder.cell='lstm'"),
        (("train", init, "encoder.hidden_size=32"),
         "error: encoder.hidden_size=32 does not match encoder.init_from: the checkpoint has "
         "encoder.hidden_size=16"),
        (("train", init, "encoder.bidirectional=true"),
         "error: encoder.bidirectional=True does not match encoder.init_from: the checkpoint "
         "has encoder.bidirectional=False"),
        (("train", init, "tokenizer=bpe"),
         "error: tokenizer.model='bpe' does not match encoder.init_from: the checkpoint has "
         "tokenizer.model='word' (its tokenizer is used)"),
        (("train", "task=translation", f"task.decoder.init_from={lm_run}"),
         "error: task.decoder.init_from needs task.decoder.input_feeding=false and an "
         "attention other than bahdanau: the decoder's RNN then reads the target embedding "
         "alone, as the language model's did"),
        (("train", init, "task=probe"),
         f"error: encoder.init_from={ckpt} does not fit this model: recurrent weight "
         "weight_ih_l0 has shape (64, 16) there and (64, 2) here"),
        (("train", f"encoder.init_from={tmp_path}/nothing"),
         f"error: encoder.init_from: Checkpoint not found: '{tmp_path}/nothing' (train the "
         "run to start from first, or give a run directory or .ckpt that exists)"),
    ]
    results = run_cli_cases([("train", *without_probe_options(ONE_EPOCH, args), *args[1:],
                              f"hydra.run.dir={tmp_path}/{i}")
                             for i, (args, _) in enumerate(cases)])
    for (args, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert error_line(result) == expected, args


def without_probe_options(common, args):
    """A probe has no embedding size to set."""
    return [o for o in common if "task=probe" not in args or not o.startswith("task.")]


def test_transferred_run_freezes_and_loads_without_the_pretrained_run(lm_run, tmp_path):
    pretrained = tmp_path / "lm"
    shutil.copytree(lm_run, pretrained)
    run = tmp_path / "sentiment"
    train(compose_config("train", [*ONE_EPOCH, f"encoder.init_from={pretrained}",
                                   "task.finetune.freeze_encoder=true"], run))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["init_from"] == str(pretrained / "checkpoints" / "best.ckpt")
    lm, _, _ = load_task(pretrained)
    task, _, _ = load_task(run)
    for name, value in lm.model.encoder.state_dict().items():  # frozen: never trained
        assert torch.equal(task.model.encoder.state_dict()[name], value), name
    assert torch.equal(task.model.embedding.weight, lm.model.embedding.weight)

    shutil.rmtree(pretrained)  # the transferred checkpoint holds every weight it needs
    evaluated = run_cli("evaluate", f"ckpt_path={run}", f"hydra.run.dir={tmp_path}/eval")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    predicted = run_cli("predict", f"ckpt_path={run}", "text=a wonderful film .")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert json.loads(predicted.stdout)["label"] in ("negative", "positive")


@pytest.fixture(scope="module")
def backward_lm_run(tmp_path_factory):
    """The same language model as lm_run, reading the text right to left."""
    run_dir = tmp_path_factory.mktemp("backward_lm") / "run"
    train(compose_config("train", ["task=generation", *ONE_EPOCH, "encoder.num_layers=2",
                                   "data.reverse=true"], run_dir))
    return run_dir


def test_a_forward_and_a_backward_model_make_one_bidirectional_encoder(
        lm_run, backward_lm_run, tmp_path):
    forward, backward = load_task(lm_run)[0], load_task(backward_lm_run)[0]
    task, _, cfg = transferred([f"encoder.init_from={lm_run}",
                                f"encoder.init_from_backward={backward_lm_run}"], tmp_path)
    assert (cfg.encoder.bidirectional, cfg.encoder.num_layers, cfg.task.embedding_dim) == (
        True, 2, 32)  # two 16-wide embeddings side by side
    assert torch.equal(task.model.embedding.weight[:, :16], forward.model.embedding.weight)
    assert torch.equal(task.model.embedding.weight[:, 16:], backward.model.embedding.weight)
    # before fine-tuning the encoder computes what the two language models compute: the
    # forward direction the forward model on the text, the reverse direction the backward
    # model on each text reversed
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, forward.tokenizer.vocab_size, (3, 7), generator=generator)
    lengths = torch.tensor([7, 4, 1])
    for model in (task, forward, backward):
        model.eval()
    with torch.no_grad():
        both = task.model.encoder(task.model.embedding(ids), lengths).outputs  # (3, 7, 32)
        left_to_right = forward.model.encoder(forward.model.embedding(ids), lengths).outputs
        for row, length in enumerate(lengths.tolist()):
            text = ids[row, :length]
            torch.testing.assert_close(both[row, :length, :16], left_to_right[row, :length])
            right_to_left = backward.model.encoder(
                backward.model.embedding(text.flip(0)[None]), None).outputs[0].flip(0)
            torch.testing.assert_close(both[row, :length, 16:], right_to_left)


def test_directions_that_do_not_fit_are_refused(lm_run, backward_lm_run, tmp_path):
    forward, backward = (f"encoder.init_from={lm_run}",
                         f"encoder.init_from_backward={backward_lm_run}")
    cases = [
        ([backward], "encoder.init_from_backward needs encoder.init_from: the forward "
                     "language model whose encoder starts the forward direction"),
        ([forward, f"encoder.init_from_backward={lm_run}"],
         f"encoder.init_from_backward={lm_run}/checkpoints/best.ckpt reads text left to "
         "right; train the backward model with data.reverse=true"),
        ([f"encoder.init_from={backward_lm_run}", backward],
         f"encoder.init_from={backward_lm_run}/checkpoints/best.ckpt reads text right to left "
         "(data.reverse=true); it must be the forward model"),
        ([f"encoder.init_from={backward_lm_run}"],
         f"encoder.init_from={backward_lm_run}/checkpoints/best.ckpt reads text right to left "
         "(data.reverse=true): give it as encoder.init_from_backward beside a forward model "
         "(or continue it with data.reverse=true)"),
        ([forward, backward, "task.embedding_dim=16"],
         "task.embedding_dim=16 does not match encoder.init_from and "
         "encoder.init_from_backward: two left-to-right models side by side make "
         "task.embedding_dim=32"),
    ]
    for i, (overrides, expected) in enumerate(cases):
        with pytest.raises(NlpseqError) as refused:
            transferred(overrides, tmp_path / str(i))
        assert str(refused.value) == expected
    task, _, _ = transferred(["task=generation", f"encoder.init_from={backward_lm_run}",
                              "data.reverse=true"], tmp_path / "continued")
    assert task.reverse  # a backward language model continued on new text, still backward


def test_backward_model_trains_exports_and_refuses_prompts(lm_run, backward_lm_run, tmp_path):
    backward, _, _ = load_task(backward_lm_run)
    with pytest.raises(NlpseqError, match="this is a backward language model"):
        backward.predict(["the film"])
    forward, _, _ = load_task(lm_run)
    text = "the king of the land"
    _, _, read_backward, _ = text_example(backward, backward.tokenizer, text)
    _, _, read_forward, _ = text_example(forward, forward.tokenizer, text)
    assert read_backward == read_forward[::-1] != read_forward  # nlpseq-inspect: as read
    run = tmp_path / "sentiment"
    two_directions = [o for o in ONE_EPOCH if not o.startswith("task.embedding_dim")]
    train(compose_config("train", [*two_directions, f"encoder.init_from={lm_run}",
                                   f"encoder.init_from_backward={backward_lm_run}",
                                   "task.finetune.unfreeze_schedule=gradual"], run))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["backward_init_from"] == str(backward_lm_run / "checkpoints" / "best.ckpt")
    pytest.importorskip("onnxruntime")
    directory = export_checkpoint(run, "onnx")
    texts = ["a wonderful film .", "dull and slow ."]
    from_onnx = load_exported(directory / "model.onnx").predict(texts)
    from_torch = load_task(run)[0].predict(texts)
    assert [r["label"] for r in from_onnx] == [r["label"] for r in from_torch]
    for ours, theirs in zip(from_onnx, from_torch, strict=True):
        assert ours["probability"] == pytest.approx(theirs["probability"], abs=1e-4)


def test_one_sweep_runs_both_stages_each_transfer_from_its_own_language_model(tmp_path):
    """nlpseq-train -m experiment=sst2_lm,sst2_transfer seed=1,2: the language models run
    first, then each classifier starts from the one of its seed."""
    sample = Path(__file__).resolve().parents[2] / "nlpseq" / "data" / "sample"
    data = tmp_path / "data" / "sst2"
    data.mkdir(parents=True)
    rows = (sample / "sentiment_train.tsv").read_text().splitlines()[:301]
    (data / "train.tsv").write_text("\n".join(rows) + "\n")
    (data / "dev.tsv").write_text((sample / "sentiment_test.tsv").read_text())
    sweep = tmp_path / "sweep"
    result = run_cli("train", "-m", "experiment=sst2_lm,sst2_transfer", "seed=1,2", *ONE_EPOCH,
                     "data.batch_size=8", f"hydra.sweep.dir={sweep}",
                     env={"NLPSEQ_DATA_DIR": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = {}
    for overrides in sweep.glob("*/.hydra/overrides.yaml"):
        given = dict(o.split("=", 1) for o in yaml.safe_load(overrides.read_text()))
        jobs[given["experiment"], given["seed"]] = overrides.parent.parent
    assert len(jobs) == 4
    for seed in ("1", "2"):
        metrics = json.loads((jobs["sst2_transfer", seed] / "metrics.json").read_text())
        assert metrics["init_from"] == str(jobs["sst2_lm", seed] / "checkpoints" / "best.ckpt")
