"""SentimentDataModule: splits, labels, fallbacks, encoding cache."""

import json
import re
from types import SimpleNamespace

import datasets
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
    with pytest.raises(NlpseqError, match=r"validation split has label 'neutral' \(.*v.tsv, "
                                          r"line 2\).*\['neg', 'pos'\]"):
        dm.load()


def test_integer_label_out_of_range_is_refused(write_tsv):
    rows = [("fine", 0), ("bad", 1), ("odd", 5)]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_file=str(write_tsv("v.tsv", rows[:2])),
                             label_names=["negative", "positive"])
    with pytest.raises(NlpseqError, match=r"train split has label 5 \(.*t.tsv, line 4\)"):
        dm.load()


def test_empty_split_is_refused(write_tsv):
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", TRAIN)),
                             validation_file=str(write_tsv("v.tsv", [])))
    with pytest.raises(NlpseqError, match="validation split is empty"):
        dm.load()


def test_second_encoding_of_the_same_data_is_read_from_the_cache(write_tsv, tmp_path):
    # the cache is keyed by the files' text: a row of this test's own keeps others' out
    path = str(write_tsv("t.tsv", TRAIN + [(f"test {tmp_path.name}", "pos")]))
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
    assert calls == [21]  # once in the first run: validation holds the same text as train
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


def write_jsonl(tmp_path, name: str, rows: list[dict]) -> str:
    path = tmp_path / name
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


def test_labels_mixing_names_and_ids_are_refused_with_a_line_of_each(tmp_path):
    rows = [{"sentence": f"fine {i}", "label": "pos"} for i in range(3)] + \
           [{"sentence": f"dull {i}", "label": 1} for i in range(3)]
    dm = SentimentDataModule(train_file=write_jsonl(tmp_path, "t.jsonl", rows))
    with pytest.raises(NlpseqError, match=r"t.jsonl mixes label names and integer class ids: "
                                          r"line 1 has the name 'pos', line 4 has the id 1; "
                                          r"write every label as a name, or every label as a "
                                          r"class id"):
        dm.load()


def test_labels_mixing_names_and_ids_in_a_tsv_are_refused(write_tsv):
    rows = [("fine", "pos"), ("dull", "0"), ("good", "pos")]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)))
    with pytest.raises(NlpseqError, match=r"line 2 has the name 'pos', line 3 has the id 0"):
        dm.load()


@pytest.mark.parametrize("row, message", [
    ("a text without its label\n", r"t.tsv, line 4: 1 field\(s\) where the header has 2"),
    ("a text with an empty label\t\n", r"t.tsv, line 4: the label \('label', "
                                       r"data.label_column\) is empty"),
])
def test_a_row_with_a_missing_label_is_refused_with_file_and_line(tmp_path, write_tsv, row,
                                                                   message):
    path = write_tsv("t.tsv", TRAIN[:2])
    path.write_text(path.read_text() + row + "fine again\tpos\n")
    with pytest.raises(NlpseqError, match=message):
        SentimentDataModule(train_file=str(path)).load()


def test_a_json_line_without_the_text_key_is_refused_with_its_line(tmp_path):
    rows = [{"sentence": "fine", "label": "pos"}, {"text": "dull", "label": "neg"}]
    dm = SentimentDataModule(train_file=write_jsonl(tmp_path, "t.jsonl", rows))
    with pytest.raises(NlpseqError, match=r"t.jsonl, line 2: no value for 'sentence' "
                                          r"\(data.text_column\)"):
        dm.load()


@pytest.mark.parametrize("labels, only", [(["pos"] * 4, "'pos'"), (["1"] * 4, "'1'")])
def test_one_label_class_only_is_refused(write_tsv, labels, only):
    rows = [(f"text {i}", label) for i, label in enumerate(labels)]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)))
    with pytest.raises(NlpseqError, match=rf"t.tsv has one label class only \({only}\); a "
                                          r"classifier needs examples of at least two"):
        dm.load()


def test_integer_looking_label_names_are_names(write_tsv):
    rows = [("one star", "1"), ("two stars", "2"), ("one again", "1")]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_file=str(write_tsv("v.tsv", rows)),
                             label_names=["1", "2", "3"])
    dm.load()
    dm.encode(word_tokenizer(dm))
    assert [e["label_id"] for e in dm.encoded["train"]] == [0, 1, 0]


def test_integer_ids_index_the_given_label_names(write_tsv):
    rows = [("bad", "0"), ("good", "1"), ("great", "1")]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_file=str(write_tsv("v.tsv", rows)),
                             label_names=["negative", "positive"])
    dm.load()
    dm.encode(word_tokenizer(dm))
    assert [e["label_id"] for e in dm.encoded["train"]] == [0, 1, 1]


def test_empty_texts_are_counted_once_in_a_warning(write_tsv, caplog):
    rows = TRAIN[:4] + [("   ", "pos"), ("", "neg")] + TRAIN[-4:]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_file=str(write_tsv("v.tsv", TRAIN)))
    with caplog.at_level("WARNING", logger="nlpseq"):
        dm.load()
    warnings = [r.getMessage() for r in caplog.records if "empty" in r.getMessage()]
    assert len(warnings) == 1
    assert re.search(r"The train split has 2 empty or whitespace-only text\(s\) \(the first at "
                     r".*t.tsv, line 6\)", warnings[0])


def test_texts_longer_than_max_length_are_cut_and_counted(write_tsv, caplog):
    long = " ".join(f"w{i}" for i in range(600))
    rows = TRAIN[:3] + [(long, "pos")] + TRAIN[-3:]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_file=str(write_tsv("v.tsv", rows)))
    assert dm.max_length == 512
    dm.load()
    with caplog.at_level("INFO", logger="nlpseq"):
        dm.encode(word_tokenizer(dm))
    assert max(len(e["input_ids"]) for e in dm.encoded["train"]) == 512
    assert "Cut 1 of 7 train texts to data.max_length=512 tokens" in caplog.text
    whole = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                                validation_file=str(write_tsv("v.tsv", rows)), max_length=None)
    whole.load()
    whole.encode(word_tokenizer(whole))
    assert max(len(e["input_ids"]) for e in whole.encoded["train"]) == 600


def test_a_negative_integer_label_is_refused_with_its_line(write_tsv):
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", [("a", "0"), ("b", "-1")])))
    with pytest.raises(NlpseqError, match=r"t.tsv, line 3: integer labels are class ids and "
                                          r"must be >= 0; got -1"):
        dm.load()


def test_label_names_given_twice_and_a_zero_max_length_are_refused(write_tsv):
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", TRAIN)), label_names=["a", "a"])
    with pytest.raises(NlpseqError, match=r"data.label_names lists 'a' more than once"):
        dm.load()
    with pytest.raises(NlpseqError, match=r"data.max_length must be >= 1 or null, got 0"):
        SentimentDataModule(train_file="t.tsv", max_length=0)


def test_a_row_repeating_the_header_is_refused_with_its_line(write_tsv):
    rows = TRAIN[:5] + [("sentence", "label")] + TRAIN[5:]  # two files joined, headers kept
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                             validation_file=str(write_tsv("v.tsv", TRAIN)))
    with pytest.raises(NlpseqError, match=r"t.tsv, line 7 repeats the header \(sentence, label\)"):
        dm.load()


def test_classes_without_examples_or_with_a_stray_one_are_warned_of(write_tsv, caplog):
    stars = [(f"film {i}", 1 + i % 2) for i in range(20)]  # ids 1 and 2: class 0 is empty
    typo = [(f"good film {i}", "pos") for i in range(50)] + [("fine", "Pos")] + \
           [(f"bad film {i}", "neg") for i in range(50)]
    warned = []
    for rows in (stars, typo):
        dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)),
                                 validation_file=str(write_tsv("v.tsv", rows)))
        caplog.clear()
        with caplog.at_level("WARNING", logger="nlpseq"):
            dm.load()
        warned.append([r.getMessage() for r in caplog.records])
    assert dm.label_names == ["Pos", "neg", "pos"]
    assert any(m.startswith("Class(es) ['0'] have no training examples") for m in warned[0])
    assert any(re.match(r"Class 'Pos' has 1 training example\(s\) \(the first at .*t.tsv, "
                        r"line 52\) against 50 in the largest class", m) for m in warned[1])
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", TRAIN)),
                             validation_file=str(write_tsv("v.tsv", TRAIN)))
    caplog.clear()
    with caplog.at_level("WARNING", logger="nlpseq"):
        dm.load()
    assert not [r for r in caplog.records if "Class" in r.getMessage()]


# ------------------------------------------- labels read the same in every format
def write_parquet(tmp_path, name: str, labels: list) -> str:
    path = tmp_path / name
    texts = [f"film number {i}" for i in range(len(labels))]
    datasets.Dataset.from_dict({"sentence": texts, "label": labels}).to_parquet(str(path))
    return str(path)


def encoded_label_ids(path: str, label_names: list[str]) -> list[int]:
    dm = SentimentDataModule(train_file=path, validation_file=path, label_names=label_names)
    dm.load()
    dm.encode(word_tokenizer(dm))
    return [e["label_id"] for e in dm.encoded["train"]]


@pytest.mark.parametrize("labels, label_names, ids", [
    ([0, 1, 1, 0, 1], ["1", "0"], [1, 0, 0, 1, 0]),  # integer names: labels are the names
    ([1, 2, 2, 1, 2], ["1", "2"], [0, 1, 1, 0, 1]),
    ([0, 1, 1, 0, 1], ["negative", "positive"], [0, 1, 1, 0, 1]),  # otherwise class ids
])
def test_integer_labels_in_parquet_read_as_the_same_labels_in_a_tsv(tmp_path, write_tsv, labels,
                                                                    label_names, ids):
    tsv = str(write_tsv("t.tsv", [(f"film number {i}", y) for i, y in enumerate(labels)]))
    parquet = write_parquet(tmp_path, "t.parquet", labels)
    assert encoded_label_ids(tsv, label_names) == ids
    assert encoded_label_ids(parquet, label_names) == ids


def test_float_labels_in_parquet_are_integers_and_nan_is_an_empty_label(tmp_path):
    # pandas stores an integer column with a missing value as floats, the missing one NaN
    path = write_parquet(tmp_path, "f.parquet", [1.0, 2.0, 2.0, 1.0])
    assert encoded_label_ids(path, ["1", "2"]) == [0, 1, 1, 0]
    path = write_parquet(tmp_path, "nan.parquet", [1.0, float("nan"), 2.0])
    with pytest.raises(NlpseqError, match=r"nan.parquet, row 2: the label \('label', "
                                          r"data.label_column\) is empty; every row needs a label"):
        SentimentDataModule(train_file=path).load()


def test_a_nan_label_in_json_lines_is_refused_with_its_line(tmp_path):
    text = json.dumps({"sentence": "fine", "label": "pos"}) + "\n" + \
        json.dumps({"sentence": "what", "label": float("nan")}) + "\n"  # json.dumps writes NaN
    (tmp_path / "nan.jsonl").write_text(text)
    with pytest.raises(NlpseqError, match=r"nan.jsonl, line 2: 'label' is NaN, which is not a "
                                          r"JSON number"):
        SentimentDataModule(train_file=str(tmp_path / "nan.jsonl")).load()


@pytest.mark.parametrize("suffix, header, row", [
    (".tsv", "sentence\tlabel", "{}\t{}"),
    (".csv", "label,sentence", "{1},{0}"),  # the mark on the label this time
])
def test_a_header_repeated_after_a_byte_order_mark_is_refused_with_its_line(tmp_path, suffix,
                                                                             header, row):
    """Files joined with their byte-order marks: the second mark starts line 7."""
    part = "\ufeff" + "\n".join([header] + [row.format(t, y) for t, y in TRAIN[8:13]]) + "\n"
    path = tmp_path / f"joined{suffix}"
    path.write_text(part + part, encoding="utf-8")
    with pytest.raises(NlpseqError, match=rf"joined{suffix}, line 7 repeats the header "
                                          r"\(sentence, label\); remove it"):
        SentimentDataModule(train_file=str(path)).load()


def test_a_mistyped_huge_class_id_is_refused_before_a_head_is_built(write_tsv):
    rows = [(f"film {i}", i % 2) for i in range(6)] + [("typo", 100000)]
    dm = SentimentDataModule(train_file=str(write_tsv("t.tsv", rows)))
    with pytest.raises(NlpseqError, match=r"t.tsv, line 8: the label 100000 makes 100001 classes "
                                          r"\(integer labels are class ids 0..max\), 99998 of "
                                          r"them without a training row; fix the label, or set "
                                          r"data.label_names to name every class$"):
        dm.load()


def test_a_class_label_column_whose_names_are_other_integers_is_refused(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["1", "2", "3"])})
    rows = {"text": ["no", "meh", "yes"] * 2, "label": [0, 1, 2] * 2}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "d"))
    with pytest.raises(NlpseqError, match=r"the label column 'label' is a ClassLabel whose name "
                                          r"'1' is an integer other than its class id 0"):
        SentimentDataModule(path=str(tmp_path / "d"), text_column="text").load(("train",))
