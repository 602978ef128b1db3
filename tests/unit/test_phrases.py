"""Holding out whole sentences from data whose rows include each sentence's phrases."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq.data import SentimentDataModule
from nlpseq.data.phrases import spans, split_whole_sentences, whole_sentence_rows
from nlpseq.errors import NlpseqError

# Two sentences and their phrases, SST-style; "goods" is not "good" (whole tokens only).
TREEBANK = ["a good film", "good", "a good", "film", "a  bad day", "bad", "good",
            "bad day", "goods"]


def contains(sentence: str, row: str) -> bool:
    return f" {' '.join(row.split())} " in f" {' '.join(sentence.split())} "


def test_spans_are_every_contiguous_run():
    assert list(spans(["a", "b", "c"])) == ["a", "a b", "a b c", "b", "b c", "c"]


def test_whole_sentences_are_the_rows_no_other_row_contains():
    # "good" twice: contained anyway; "a  bad day" with two spaces still contains "bad day"
    assert whole_sentence_rows(TREEBANK) == [0, 4, 8]


def test_a_repeated_whole_sentence_counts_once():
    assert whole_sentence_rows(["a film", "a film", "film"]) == [0]


def test_held_out_sentences_take_every_row_they_contain_out_of_train():
    # seed 0 holds out "a good film": its phrases "good" (both rows), "a good" and "film"
    # leave train; "goods" stays (whole tokens)
    assert split_whole_sentences(TREEBANK, fraction=0.34, seed=0) == ([4, 5, 7, 8], [0], 3)
    # seed 1 holds out "a  bad day": "bad" and "bad day" leave, the good film stays whole
    assert split_whole_sentences(TREEBANK, fraction=0.34, seed=1) == (
        [0, 1, 2, 3, 6, 8], [4], 3)


def test_the_split_follows_the_seed():
    texts = [f"sentence number {i} here" for i in range(40)]
    first = split_whole_sentences(texts, 0.25, seed=3)
    assert first == split_whole_sentences(texts, 0.25, seed=3)
    assert first != split_whole_sentences(texts, 0.25, seed=4)
    assert len(first[1]) == 10 and sorted(first[0] + first[1]) == list(range(40))


def test_too_few_whole_sentences_are_refused():
    with pytest.raises(NlpseqError, match=r"data.holdout=sentences: the training data has 1 "
                                          r"whole sentence\(s\).*at least 2"):
        split_whole_sentences(["a good film", "good", "film"], 0.5, seed=0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from("abcd"), min_size=1, max_size=5).map(" ".join),
                min_size=2, max_size=25),
       st.integers(0, 5))
def test_split_invariants(texts, seed):
    whole = whole_sentence_rows(texts)
    for i, row in enumerate(texts):  # every row lies in a whole sentence; none in another
        assert any(contains(texts[w], row) for w in whole)
        if i in whole:
            assert not any(contains(other, row) and other != row for other in texts)
    if len(whole) < 2:
        return
    train, held_out, _ = split_whole_sentences(texts, 0.5, seed)
    assert held_out and not set(train) & set(held_out)
    for i in train:
        assert not any(contains(texts[h], texts[i]) for h in held_out)


def test_datamodule_holds_out_whole_sentences(write_tsv):
    rows = [(text, "pos" if "good" in text else "neg") for text in TREEBANK]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_fraction=0.34, holdout="sentences", seed=0)
    dm.load()
    held_out = dm.raw["validation"]["sentence"]
    assert len(held_out) == 1 and held_out[0] in ("a good film", "a  bad day", "goods")
    assert not any(contains(held_out[0], row) for row in dm.raw["train"]["sentence"])


def test_an_unknown_holdout_is_refused():
    with pytest.raises(NlpseqError, match="Unknown data.holdout 'phrases'; choose one of "
                                          "'rows', 'sentences'"):
        SentimentDataModule(train_file="t.tsv", holdout="phrases")
