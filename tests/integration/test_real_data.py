"""Real SST-2 from ../shared/data (or $NLPSEQ_DATA_DIR); skipped when it is absent."""

import os
from pathlib import Path

import pytest

from nlpseq.data import SentimentDataModule, padding_efficiency
from nlpseq.data.sources import column_values
from tests.conftest import SHARED_DATA

DATA_DIR = Path(os.environ.get("NLPSEQ_DATA_DIR", SHARED_DATA))
needs_sst2 = pytest.mark.skipif(not (DATA_DIR / "sst2" / "train.tsv").is_file(),
                                reason=f"SST-2 not found under {DATA_DIR}")


@pytest.fixture
def sst2(monkeypatch):
    monkeypatch.setenv("NLPSEQ_DATA_DIR", str(DATA_DIR))
    dm = SentimentDataModule(name="sst2", train_file="train.tsv", validation_file="dev.tsv",
                             hub_id="stanfordnlp/sst2", label_names=["negative", "positive"],
                             batch_size=64)
    dm.load()
    return dm


@needs_sst2
def test_sst2_local_copy_loads_with_glue_counts(sst2):
    assert len(sst2.raw["train"]) == 67349 and len(sst2.raw["validation"]) == 872
    assert sst2.test_is_validation
    labels = column_values(sst2.raw["train"], "label")  # the text of the file: "0" and "1"
    assert labels.count("0") == 29780 and labels.count("1") == 37569
    assert next(sst2.train_texts()) == "hide new secretions from the parental units"


@needs_sst2
def test_bucketed_batches_pad_little_on_sst2(sst2):
    from nlpseq.tokenization import train_tokenizers_tokenizer

    sst2.encode(train_tokenizers_tokenizer(sst2.train_texts(), model="word", lowercase=True))
    ids = [example["label_id"] for example in sst2.encoded["train"]]
    assert ids.count(0) == 29780 and ids.count(1) == 37569  # "0" is negative, "1" positive
    sampler = sst2.train_dataloader().batch_sampler
    assert padding_efficiency(sampler.lengths, sampler.batches()) >= 0.9


@needs_sst2
def test_data_sst2_chooses_on_a_slice_of_train_and_reports_dev(monkeypatch, tmp_path):
    """The shipped data=sst2: validation (checkpoint choice, early stopping) is 5 % of the
    6,885 whole training sentences, held out with every phrase row they contain; test is
    the 872 dev sentences, never seen before the end."""
    from hydra.utils import instantiate

    from nlpseq.data.phrases import spans, words
    from tests.integration.conftest import compose_config

    monkeypatch.setenv("NLPSEQ_DATA_DIR", str(DATA_DIR))
    cfg = compose_config("train", ["data=sst2"], tmp_path)
    dm = instantiate(cfg.data)
    dm.load()
    sizes = {split: len(dm.raw[split]) for split in ("train", "validation", "test")}
    assert sizes["validation"] == 344 and sizes["test"] == 872
    assert 67349 - 344 - 6000 < sizes["train"] < 67349 - 344 - 2000  # their phrases left
    unseen = {run for text in column_values(dm.raw["validation"], "sentence")
              for run in spans(text.split())}
    assert not unseen & {words(text) for text in column_values(dm.raw["train"], "sentence")}
    assert not dm.test_is_validation
    assert column_values(dm.raw["test"], "sentence")[0].startswith("it 's a charming")
