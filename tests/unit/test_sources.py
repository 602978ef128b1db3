"""Reading local files and named datasets; each user mistake gives one clear error."""

import json

import datasets
import pytest

from nlpseq.data import sources
from nlpseq.data.sources import check_utf8, load_file, load_splits
from nlpseq.errors import NlpseqError

ROWS = [("a fine film", "positive"), ("a dull film", "negative")]


def test_tsv_csv_jsonl_and_parquet_load_the_same_rows(tmp_path, write_tsv):
    tsv = write_tsv("d.tsv", ROWS)
    csv_path = tmp_path / "d.csv"
    csv_path.write_text("sentence,label\na fine film,positive\na dull film,negative\n")
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("".join(json.dumps({"sentence": t, "label": y}) + "\n" for t, y in ROWS))
    parquet = tmp_path / "d.parquet"
    datasets.Dataset.from_dict({"sentence": [r[0] for r in ROWS],
                                "label": [r[1] for r in ROWS]}).to_parquet(str(parquet))
    for path in (tsv, csv_path, jsonl, parquet):
        dataset = load_file(path, "train").dataset
        assert dataset["sentence"] == [r[0] for r in ROWS], path
        assert dataset["label"] == [r[1] for r in ROWS], path


def test_tsv_keeps_quotes_and_null_words_as_text(write_tsv):
    path = write_tsv("q.tsv", [('he said "no', "negative"), ("null", "positive")])
    assert load_file(path, "train").dataset["sentence"] == ['he said "no', "null"]


def test_missing_file_names_the_split_and_path(tmp_path):
    with pytest.raises(NlpseqError, match=r"train file not found: '.*nope.tsv'"):
        load_file(tmp_path / "nope.tsv", "train")


def test_unknown_extension_lists_the_formats(tmp_path):
    path = tmp_path / "d.xlsx"
    path.write_text("x")
    with pytest.raises(NlpseqError, match=r"unknown extension '.xlsx'.*\.tsv.*\.parquet"):
        load_file(path, "train")


def test_non_utf8_names_file_line_and_column(tmp_path):
    path = tmp_path / "latin1.tsv"
    path.write_bytes("sentence\tlabel\nok\t1\ncaf\xe9 film\t0\n".encode("latin-1"))
    with pytest.raises(NlpseqError, match=r"latin1.tsv: line 3, column 4 is not valid UTF-8"):
        check_utf8(path)
    with pytest.raises(NlpseqError, match="line 3"):
        load_file(path, "train")


def test_header_only_file_is_an_empty_split(write_tsv):
    path = write_tsv("empty.tsv", [])
    with pytest.raises(NlpseqError, match="The validation split is empty"):
        load_file(path, "validation")


def test_named_dataset_prefers_the_local_copy(tmp_path, write_tsv, monkeypatch):
    (tmp_path / "mini").mkdir()
    write_tsv("mini/train.tsv", ROWS)
    monkeypatch.setenv("NLPSEQ_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(datasets, "load_dataset", _fail_on_hub(datasets.load_dataset))
    splits = load_splits({"train": "train.tsv"}, name="mini",
                         base_dir=sources.local_copy_dir("mini"), hub_id="someone/mini")
    assert splits["train"].dataset["sentence"] == [r[0] for r in ROWS]


def test_named_dataset_offline_without_local_copy_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("NLPSEQ_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(datasets, "load_dataset", _fail_on_hub(datasets.load_dataset))
    with pytest.raises(NlpseqError) as err:
        load_splits({"train": "train.tsv"}, name="sst2", base_dir=tmp_path / "sst2",
                    hub_id="stanfordnlp/sst2")
    message = str(err.value)
    assert str(tmp_path / "sst2") in message
    assert "stanfordnlp/sst2" in message and "data=files" in message
    assert "\n" not in message


def _fail_on_hub(real_load):
    def load(path, *args, **kwargs):
        if "/" in path and not path.startswith("/"):
            raise ConnectionError("offline")
        return real_load(path, *args, **kwargs)

    return load


def test_a_split_reads_the_hub_split_hub_splits_names(tmp_path, monkeypatch):
    """SST-2 on the hub: its labelled dev split ("validation") is the reported test split;
    the validation split is held out of train instead (conf/data/sst2.yaml)."""
    hub = datasets.DatasetDict({
        "train": datasets.Dataset.from_dict({"sentence": ["a", "b"], "label": [0, 1]}),
        "validation": datasets.Dataset.from_dict({"sentence": ["dev"], "label": [1]}),
        "test": datasets.Dataset.from_dict({"sentence": ["hidden"], "label": [-1]}),
    })
    monkeypatch.setenv("NLPSEQ_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: hub)
    splits = load_splits({"train": "train.tsv", "validation": None, "test": "dev.tsv"},
                         name="sst2", base_dir=tmp_path / "sst2", hub_id="stanfordnlp/sst2",
                         hub_splits={"test": "validation"})
    assert sorted(splits) == ["test", "train"]
    assert splits["test"].dataset["sentence"] == ["dev"]
    assert "(validation split)" in splits["test"].source
