"""Parallel data: files and tables, the errors a user can cause, filters and their counts,
batches (padding, <bos>/<eos>, token budgets) and the tokenizer pair."""

import logging

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq.data import BucketBatchSampler, ParallelCollator, TranslationDataModule
from nlpseq.errors import NlpseqError
from nlpseq.tokenization import (
    TokenizerPair,
    tokenizer_from_state,
    train_tokenizer_pair,
    train_tokenizers_tokenizer,
)

DE = ["ein hund läuft", "eine katze schläft", "", "zwei hunde spielen im park heute"]
EN = ["a dog runs", "a cat sleeps", "an empty source", "two dogs play in the park today"]


def write_pair(directory, prefix, de=DE, en=EN):
    (directory / f"{prefix}.de").write_text("".join(line + "\n" for line in de), "utf-8")
    (directory / f"{prefix}.en").write_text("".join(line + "\n" for line in en), "utf-8")
    return str(directory / prefix)


def word_pair(datamodule, joint=False):
    factory = lambda texts: train_tokenizers_tokenizer(texts, model="word")  # noqa: E731
    return train_tokenizer_pair(factory, datamodule.train_texts("source"),
                                datamodule.train_texts("target"), joint=joint)


def loaded(tmp_path, **options):
    train = write_pair(tmp_path, "train")
    data = TranslationDataModule(train_file=train, validation_file=train, **options)
    data.load()
    return data


def test_parallel_files_load_as_pairs_and_test_falls_back_to_validation(tmp_path, caplog):
    data = loaded(tmp_path)
    assert data.raw["train"][1] == {"source": "eine katze schläft", "target": "a cat sleeps"}
    assert data.test_is_validation
    with caplog.at_level(logging.WARNING):
        data.encode(word_pair(data))
    assert len(data.encoded["train"]) == 3  # the pair with an empty German side is dropped
    assert "Dropped 1 of 4 train pairs with an empty side" in caplog.text
    assert len(data.encoded["validation"]) == 4  # evaluation answers every line
    assert "1 of 4 validation pairs have an empty source" in caplog.text


def test_training_pairs_over_the_length_limit_are_dropped_and_counted(tmp_path, caplog):
    data = loaded(tmp_path, max_source_length=4, max_target_length=5)
    with caplog.at_level(logging.INFO):
        data.encode(word_pair(data))
    assert len(data.encoded["train"]) == 2  # the 6-word pair is gone from training ...
    assert len(data.encoded["validation"]) == 4  # ... but evaluation keeps every pair
    assert "Dropped 1 of 3 training pairs over the length limits" in caplog.text


def test_files_of_different_lengths_name_both_counts(tmp_path):
    prefix = write_pair(tmp_path, "train", en=EN[:3])
    data = TranslationDataModule(train_file=prefix, validation_file=prefix)
    with pytest.raises(NlpseqError, match=r"train.de' has 4 lines, '.*train.en' has 3"):
        data.load()


def test_an_unknown_language_suffix_lists_the_suffixes_found(tmp_path):
    prefix = write_pair(tmp_path, "train")
    data = TranslationDataModule(train_file=prefix, source_lang="fr", target_lang="en")
    with pytest.raises(NlpseqError, match=r"language suffix 'fr'.*have the suffixes: de, en"):
        data.load()


@pytest.mark.parametrize("source_lang,target_lang,message", [
    ("de", "de", "are both 'de'"), ("d e", "en", "is not a language code")])
def test_bad_language_options_fail_at_once(source_lang, target_lang, message):
    with pytest.raises(NlpseqError, match=message):
        TranslationDataModule(source_lang=source_lang, target_lang=target_lang)


@pytest.mark.parametrize("columns, both", [
    ({"source_column": "de", "target_column": "de"}, "de"), ({"source_column": "en"}, "en")])
def test_one_column_for_both_sides_fails_at_once(columns, both):
    with pytest.raises(NlpseqError) as caught:
        TranslationDataModule(**columns)
    assert str(caught.value) == (f"data.source_column and data.target_column are both "
                                 f"'{both}': a table needs a column per side")


def test_a_table_with_a_column_per_language_and_a_missing_column(tmp_path, write_tsv):
    rows = [("ein hund", "a dog"), ("eine katze", "a cat"), ("ein vogel", "a bird")]
    table = write_tsv("train.tsv", rows, header=("de", "en"))
    data = TranslationDataModule(train_file=str(table), validation_file=str(table))
    data.load()
    assert data.raw["validation"]["target"] == ["a dog", "a cat", "a bird"]
    reversed_ = TranslationDataModule(train_file=str(table), validation_file=str(table),
                                      source_lang="en", target_lang="de")
    reversed_.load()
    assert reversed_.raw["train"][0] == {"source": "a dog", "target": "ein hund"}
    bad = TranslationDataModule(train_file=str(table), target_column="english")
    with pytest.raises(NlpseqError, match="no column 'english' .*columns found: de, en"):
        bad.load()


def test_json_lines_with_named_columns(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"german": "ein hund", "english": "a dog"}\n'
                    '{"german": "eine katze", "english": "a cat"}\n', encoding="utf-8")
    data = TranslationDataModule(train_file=str(path), validation_file=str(path),
                                 source_column="german", target_column="english")
    data.load()
    assert data.raw["train"][1] == {"source": "eine katze", "target": "a cat"}


def test_collated_batches_read_bos_y_and_predict_y_eos():
    collate = ParallelCollator(pad_id=0, bos_id=2, eos_id=3)
    batch = collate([
        {"source_ids": [5, 6, 7], "target_ids": [8, 9], "reference": "a b", "index": 4},
        {"source_ids": [5], "target_ids": [10, 11, 12], "reference": "c d e", "index": 0},
    ])
    assert batch["source"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["target_inputs"].tolist() == [[2, 8, 9, 0], [2, 10, 11, 12]]
    assert batch["targets"].tolist() == [[8, 9, 3, 0], [10, 11, 12, 3]]
    assert batch["lengths"].tolist() == [3, 4] and batch["source_lengths"].tolist() == [3, 1]
    assert batch["references"] == ["a b", "c d e"] and batch["index"].tolist() == [4, 0]
    assert batch["unread_index"] == [] and batch["unread_references"] == []


def test_evaluation_pairs_with_an_empty_source_stay_out_of_the_tensors_but_are_named():
    collate = ParallelCollator(pad_id=0, bos_id=2, eos_id=3)
    empty = {"source_ids": [], "target_ids": [8], "reference": "lost", "index": 1}
    batch = collate([{"source_ids": [5, 6], "target_ids": [9], "reference": "b", "index": 0},
                     empty])
    assert batch["source"].tolist() == [[5, 6]] and batch["index"].tolist() == [0]
    assert batch["unread_index"] == [1] and batch["unread_references"] == ["lost"]
    only_empty = collate([empty])
    assert only_empty["source"].shape == (0, 0) and only_empty["references"] == []
    assert only_empty["unread_index"] == [1]


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(1, 40), min_size=1, max_size=200),
       max_tokens=st.integers(1, 300), shuffle=st.booleans(), seed=st.integers(0, 5))
def test_token_budget_batches_hold_every_example_once_within_the_budget(lengths, max_tokens,
                                                                         shuffle, seed):
    sampler = BucketBatchSampler(lengths, batch_size=64, shuffle=shuffle, seed=seed,
                                 max_tokens=max_tokens)
    batches = sampler.batches()
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= 64
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= max_tokens
    assert len(sampler) == len(batches)


def test_a_tokenizer_pair_round_trips_through_its_state_and_saves_both(tmp_path):
    data = loaded(tmp_path)
    pair = word_pair(data)
    assert not pair.joint and pair.source.token_to_id("hund") and pair.target.token_to_id("dog")
    assert pair.target.token_to_id("hund") is None  # a vocabulary per language
    again = tokenizer_from_state(pair.to_state())
    assert isinstance(again, TokenizerPair)
    assert again.target.encode("a dog runs") == pair.target.encode("a dog runs")
    assert again.fingerprint() == pair.fingerprint()
    pair.save(tmp_path / "run")
    assert (tmp_path / "run" / "source_tokenizer" / "tokenizer.json").is_file()
    assert (tmp_path / "run" / "target_tokenizer" / "tokenizer.json").is_file()


def test_a_joint_pair_is_one_tokenizer_for_both_languages(tmp_path):
    data = loaded(tmp_path)
    pair = word_pair(data, joint=True)
    assert pair.joint and pair.source.token_to_id("hund") and pair.source.token_to_id("dog")
    again = tokenizer_from_state(pair.to_state())
    assert again.joint and "target" not in pair.to_state()
    ids = again.source.encode_batch(["ein hund", "a dog"])
    assert all(torch.tensor(i).min() > 3 for i in ids)


def test_every_split_cuts_sides_over_max_length_and_says_how_many(tmp_path, caplog):
    long = " ".join(["hund"] * 20)
    train = write_pair(tmp_path, "train", de=DE + [long], en=EN + ["a dog"])
    data = TranslationDataModule(train_file=train, validation_file=train, max_length=8,
                                 max_source_length=None, max_target_length=None)
    data.load()
    with caplog.at_level(logging.INFO):
        data.encode(word_pair(data))
    for split in ("train", "validation"):
        assert max(len(e["source_ids"]) for e in data.encoded[split]) == 8
    assert "Cut 1 of 5 validation pairs to data.max_length=8 tokens" in caplog.text


def test_a_table_row_without_its_target_is_refused_with_file_and_line(tmp_path):
    table = tmp_path / "train.jsonl"
    table.write_text('{"de": "ein hund", "en": "a dog"}\n{"de": "eine katze"}\n', "utf-8")
    data = TranslationDataModule(train_file=str(table), validation_file=str(table))
    with pytest.raises(NlpseqError, match=r"train.jsonl, line 2: no value for 'en' "
                                          r"\(data.target_column\)"):
        data.load()
