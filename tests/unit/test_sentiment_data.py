"""SentimentDataModule: splits, labels, fallbacks, encoding cache."""

from types import SimpleNamespace

import pytest
import torch

from nlpseq.data import SentimentDataModule
from nlpseq.data.sample import SPLIT_SIZES, write_sample
from nlpseq.errors import NlpseqError
from nlpseq.tokenization import train_tokenizers_tokenizer

TRAIN = [(f"good film number {i}", "pos") for i in range(10)] + \
        [(f"bad film number {i}", "neg") for i in range(10)]


def word_tokenizer(datamodule):
    return train_tokenizers_tokenizer(datamodule.train_texts(), model="word")


def test_sample_has_its_split_sizes_and_string_labels():
    dm = SentimentDataModule(name="sample", train_file="sentiment_train.tsv",
                             validation_file="sentiment_validation.tsv",
                             test_file="sentiment_test.tsv")
    dm.load()
    assert {split: len(ds) for split, ds in dm.raw.items()} == SPLIT_SIZES
    assert dm.label_names == ["negative", "positive"]


def test_shipped_sample_matches_its_generator(tmp_path):
    from nlpseq.data.sample import SAMPLE_DIR

    for split, path in write_sample(tmp_path).items():
        assert path.read_text() == (SAMPLE_DIR / path.name).read_text(), split


def test_labels_become_ids_in_label_name_order(write_tsv):
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", TRAIN)),
                             validation_file=str(write_tsv("v.tsv", TRAIN[:3] + TRAIN[-3:])))
    dm.load()
    assert dm.label_names == ["neg", "pos"]
    dm.encode(word_tokenizer(dm))
    first = dm.encoded["train"][0]
    assert first["label_id"] == 1 and first["index"] == 0
    assert dm.test_is_validation


def test_no_validation_file_holds_out_a_seeded_fraction(write_tsv):
    path = str(write_tsv("t.tsv", TRAIN))
    splits = []
    for _ in range(2):
        dm = SentimentDataModule(train_file=path, validation_fraction=0.25, seed=7)
        dm.load()
        splits.append(sorted(dm.raw["validation"]["sentence"]))
        assert len(dm.raw["train"]) == 15 and len(dm.raw["validation"]) == 5
    assert splits[0] == splits[1]


def test_unknown_column_lists_columns_found(write_tsv):
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", TRAIN)), text_column="review")
    with pytest.raises(NlpseqError, match=r"no column 'review' \(data.text_column\); "
                                          r"columns found: sentence, label"):
        dm.load()


def test_validation_label_unknown_to_training_is_refused(write_tsv):
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", TRAIN)),
                             validation_file=str(write_tsv("v.tsv", [("meh", "neutral")])))
    dm.load()
    with pytest.raises(NlpseqError,
                       match=r"validation split has label 'neutral'.*\['neg', 'pos'\]"):
        dm.encode(word_tokenizer(dm))


def test_integer_label_out_of_range_is_refused(write_tsv):
    rows = [("fine", 0), ("bad", 1), ("odd", 5)]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_file=str(write_tsv("v.tsv", rows[:2])),
                             label_names=["negative", "positive"])
    dm.load()
    with pytest.raises(NlpseqError, match=r"train split has label 5 \(example 3\)"):
        dm.encode(word_tokenizer(dm))


def test_empty_split_is_refused(write_tsv):
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", TRAIN)),
                             validation_file=str(write_tsv("v.tsv", [])))
    with pytest.raises(NlpseqError, match="validation split is empty"):
        dm.load()


def test_second_encoding_of_the_same_data_is_read_from_the_cache(write_tsv):
    path = str(write_tsv("t.tsv", TRAIN))
    calls = []

    class CountingTokenizer:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode_batch(self, texts):
            calls.append(len(texts))
            return self.inner.encode_batch(texts)

    encoded = []
    for _ in range(2):
        dm = SentimentDataModule(train_file=path, validation_file=path)
        dm.load()
        tokenizer = CountingTokenizer(word_tokenizer(dm))
        dm.encode(tokenizer)
        encoded.append(dm.encoded["train"])
    assert calls == [20, 20]  # train and validation once, in the first run only
    assert encoded[0] == encoded[1]


def test_loaders_batch_by_length_and_cover_every_example(write_tsv):
    rows = [(" ".join(["w"] * (i % 7 + 1)), "pos" if i % 2 else "neg") for i in range(50)]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_file=str(write_tsv("v.tsv", rows)), batch_size=8)
    dm.load()
    dm.encode(word_tokenizer(dm))
    seen = []
    for batch in dm.val_dataloader():
        assert (batch["lengths"] <= batch["tokens"].shape[1]).all()
        seen += batch["index"].tolist()
    assert sorted(seen) == list(range(50))


@pytest.mark.parametrize("device, pinned", [("cpu", False), ("cuda", True)])
def test_loaders_pin_batches_only_when_a_trainer_runs_on_a_cuda_gpu(write_tsv, device, pinned):
    rows = [(f"word {i}", "pos" if i % 2 else "neg") for i in range(10)]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)), batch_size=4)
    dm.load()
    dm.encode(word_tokenizer(dm))
    assert dm.train_dataloader().pin_memory is False  # no Trainer: evaluation, predict
    dm.trainer = SimpleNamespace(global_rank=0, world_size=1,
                                 strategy=SimpleNamespace(root_device=torch.device(device)))
    dm.setup("fit")
    assert dm.train_dataloader().pin_memory is pinned
    assert dm.val_dataloader().pin_memory is pinned
