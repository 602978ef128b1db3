"""Every config option composes, validates against the code, and builds its object."""

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from nlpseq.cli.common import CONFIG_DIR
from nlpseq.cli.evaluate import evaluation_data_config
from nlpseq.config import TrainConfig, validate_config
from nlpseq.errors import NlpseqError
from nlpseq.tasks import GenerationTask
from tests.integration.conftest import compose_config

TASK_OF_DATA = {"ptb": "generation", "tiny_shakespeare": "generation", "multi30k": "translation",
                "adding": "probe", "copy": "probe", "first_token": "probe"}


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (Path(CONFIG_DIR) / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["task", "encoder", "data", "tokenizer", "optimizer",
                                   "scheduler", "trainer", "logger", "callbacks",
                                   "experiment", "debug"])
def test_every_option_of_every_group_composes_and_validates(group, tmp_path):
    assert options(group), f"conf/{group}/ is empty"
    for option in options(group):
        overrides = [f"{group}={option}"]
        if group == "data" and option in TASK_OF_DATA:
            overrides.append(f"task={TASK_OF_DATA[option]}")
        if group == "data" and option == "hub":
            overrides.append("data.path=someone/dataset")  # required: data.path=???
        cfg = compose_config("train", overrides, tmp_path)
        validate_config(cfg, TrainConfig)


@pytest.mark.parametrize("experiment", options("experiment"))
def test_every_experiment_takes_every_tokenizer(experiment, tmp_path):
    """An experiment sets only tokenizer keys that all tokenizers have, so
    ``experiment=sst2 tokenizer=sp_unigram`` is not refused for a key it never wrote."""
    for tokenizer in options("tokenizer"):
        overrides = [f"experiment={experiment}", f"tokenizer={tokenizer}"]
        validate_config(compose_config("train", overrides, tmp_path), TrainConfig)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_encoder_choice_switches_the_cell_and_nothing_else(cell, tmp_path):
    lstm = compose_config("train", ["encoder=lstm"], tmp_path)
    other = compose_config("train", [f"encoder={cell}"], tmp_path)
    lstm_encoder = OmegaConf.to_container(lstm.encoder)
    other_encoder = OmegaConf.to_container(other.encoder)
    assert {k: v for k, v in lstm_encoder.items() if k != "cell"} == \
           {k: v for k, v in other_encoder.items() if k != "cell"}
    assert other_encoder["cell"] == cell
    for key in ("task", "data", "tokenizer", "optimizer", "trainer"):
        assert lstm[key] == other[key]
    encoder = instantiate(other.encoder)(input_size=4)
    assert encoder.cell == cell


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_translation_decoder_follows_the_encoder_cell_unless_set(cell, tmp_path):
    cfg = compose_config("train", ["experiment=multi30k", f"encoder={cell}"], tmp_path)
    validate_config(cfg, TrainConfig)
    assert cfg.task.decoder.cell == cell and cfg.tokenizer._target_.endswith("sentencepiece")
    other = compose_config("train", ["task=translation", f"encoder={cell}",
                                     "task.decoder.cell=lstm", "tokenizer=bpe"], tmp_path)
    assert other.task.decoder.cell == "lstm" and other.tokenizer.model == "bpe"


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_sst2_experiment_composes_for_each_cell(cell, tmp_path):
    cfg = compose_config("train", ["experiment=sst2", f"encoder={cell}"], tmp_path)
    validate_config(cfg, TrainConfig)
    assert cfg.data.name == "sst2" and cfg.encoder.cell == cell
    assert cfg.encoder.bidirectional is True


def test_the_pieces_of_the_default_config_build(tmp_path):
    cfg = compose_config("train", [], tmp_path)
    datamodule = instantiate(cfg.data)
    assert datamodule.name == "sample"
    optimizer = instantiate(cfg.optimizer)
    assert optimizer.func.__name__ == "AdamW"
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    assert any(type(c).__name__ == "AtomicModelCheckpoint" for c in callbacks)


@pytest.mark.parametrize("override, message", [
    ("encoder.hidden_size=abc", "encoder.hidden_size='abc' is not valid: expected int"),
    ("encoder.cell=lsmt", "encoder.cell='lsmt' is not valid: expected one of 'rnn', 'lstm', 'gru'"),
    ("task.pooling=avg", "task.pooling='avg' is not valid: expected one of 'last', 'mean'"),
    ("+task.hiden=3", "Unknown key 'task.hiden' for nlpseq.tasks.SentimentTask; valid keys:"),
    ("+sed=3", "Unknown config key 'sed'; top-level keys are:"),
    ("seed=abc", "seed='abc' is not valid: expected int"),
    ("trainer.max_epochs=ten", "trainer.max_epochs='ten' is not valid: expected int or None"),
])
def test_bad_values_fail_validation_naming_the_key(override, message, tmp_path):
    cfg = compose_config("train", [override], tmp_path)
    key = override.lstrip("+").split("=")[0]
    with pytest.raises(NlpseqError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_config(cfg, TrainConfig)
    assert key.split(".")[-1] in message


@pytest.mark.parametrize("task", ["sentiment", "generation", "translation", "probe"])
def test_a_task_file_names_the_data_it_reads(task, tmp_path):
    """conf/task/<task>.yaml puts conf/data/base/<task>.yaml under data: with data=sample the
    data config is that file, whole (the sample only names itself)."""
    cfg = compose_config("train", [f"task={task}"], tmp_path)
    base = OmegaConf.load(Path(CONFIG_DIR) / "data" / "base" / f"{task}.yaml")
    data = OmegaConf.to_container(cfg.data)
    assert data == {**OmegaConf.to_container(base), "name": "sample"}


def test_evaluation_data_is_the_stored_config_with_the_chosen_files_over_it(tmp_path):
    """A character model trained on Tiny Shakespeare, evaluated on a file of the user's: the
    file replaces the dataset's files; how the model reads text (line ends kept, blocks of
    128) stays as it was trained."""
    stored = compose_config("train", ["experiment=tiny_shakespeare"], tmp_path).data
    eval_cfg = compose_config("eval", ["ckpt_path=x", "data=files", "data.test_file=my.txt"],
                              tmp_path)
    data = evaluation_data_config(eval_cfg, OmegaConf.create({"data": stored}),
                                  GenerationTask)
    assert (data.name, data.hub_id, data.train_file, data.test_file) == (
        "files", None, None, "my.txt")
    assert (data.line_end, data.block_size, data.mode) == ("newline", 128, "stream")
    assert data._target_ == "nlpseq.data.LanguageModelDataModule"


@pytest.mark.parametrize("tokenizer, line_end", [("char", "newline"), ("word", "eos"),
                                                 ("bpe", "eos"), ("sp_unigram", "eos")])
def test_a_language_models_line_end_follows_its_tokenizer(tokenizer, line_end, tmp_path):
    """A character model reads the text as written (blank lines and line breaks kept); a
    word or subword model one stripped line at a time, each ended by <eos>."""
    cfg = compose_config("train", ["task=generation", f"tokenizer={tokenizer}"], tmp_path)
    assert cfg.data.line_end == line_end
    chosen = compose_config("train", ["task=generation", f"tokenizer={tokenizer}",
                                      "data.line_end=eos"], tmp_path)
    assert chosen.data.line_end == "eos"


NOT_IN_CONFIG = {"self", "logger", "callbacks", "plugins",  # built by nlpseq, or objects
                 "limit_predict_batches",  # nlpseq-predict batches on its own
                 "enable_autolog_hparams", "model_registry"}  # newer than the oldest supported


def test_every_trainer_argument_can_be_set_without_a_plus(tmp_path):
    """conf/trainer/default.yaml lists every plain pytorch_lightning.Trainer argument, so
    trainer.<arg>=... works for any of them."""
    import inspect

    import pytorch_lightning as pl

    listed = set(compose_config("train", [], tmp_path).trainer) - {"_target_"}
    wanted = set(inspect.signature(pl.Trainer.__init__).parameters) - NOT_IN_CONFIG
    assert wanted <= listed, sorted(wanted - listed)
    cfg = compose_config("train", ["trainer.max_time=00:00:30:00", "trainer.max_steps=5"],
                         tmp_path)
    validate_config(cfg, TrainConfig)
    assert (cfg.trainer.max_time, cfg.trainer.max_steps) == ("00:00:30:00", 5)
