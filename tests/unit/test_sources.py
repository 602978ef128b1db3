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
    assert splits["test"].source == "the hub dataset 'stanfordnlp/sst2', split 'validation'"


# ------------------------------------------------------------- data=hub: any dataset
def _splits(**sizes):
    return datasets.DatasetDict({
        name: datasets.Dataset.from_dict({"sentence": [f"{name} {i}" for i in range(n)],
                                          "label": [i % 2 for i in range(n)]})
        for name, n in sizes.items()})


def test_splits_map_to_the_dataset_split_names_and_default_to_their_own():
    loaded = _splits(train=4, dev=2, test=3)
    picked = sources.pick_splits(loaded, ("train", "validation", "test"), {"validation": "dev"},
                                 "the dataset 'd'", "data.splits")
    assert {split: len(rows.dataset) for split, rows in picked.items()} == {
        "train": 4, "validation": 2, "test": 3}
    assert picked["validation"].source == "the dataset 'd', split 'dev'"


def test_a_split_the_dataset_lacks_is_left_out_unless_it_is_named():
    loaded = _splits(train=4)
    picked = sources.pick_splits(loaded, ("train", "validation", "test"),
                                 {"validation": None}, "the dataset 'd'", "data.splits")
    assert sorted(picked) == ["train"]  # the DataModule holds validation out of train


def test_an_unknown_split_name_lists_the_dataset_splits():
    with pytest.raises(NlpseqError) as err:
        sources.pick_splits(_splits(train=4, dev=2), ("train", "validation"),
                            {"validation": "valid"}, "the dataset 'd'", "data.splits")
    assert str(err.value) == ("the dataset 'd' has no split 'valid' "
                              "(data.splits.validation=valid); its splits: train, dev")
    with pytest.raises(NlpseqError) as err:
        sources.pick_splits(_splits(fit=4), ("train",), {}, "the dataset 'd'", "data.splits")
    assert str(err.value) == ("the dataset 'd' has no split 'train'; its splits: fit: pick "
                              "one with data.splits.train=...")


def test_a_saved_dataset_dict_a_lone_dataset_and_a_parquet_folder_open(tmp_path):
    _splits(train=4, dev=2).save_to_disk(str(tmp_path / "dict"))
    _splits(train=3)["train"].save_to_disk(str(tmp_path / "lone"))
    (tmp_path / "pq").mkdir()
    for name, split in (("train", "train"), ("validation", "dev"),
                        ("test-00000-of-00001", "dev")):
        _splits(train=4, dev=2)[split].to_parquet(str(tmp_path / "pq" / f"{name}.parquet"))
    sizes = {folder: {split: len(rows) for split, rows in
                      sources.open_dataset(str(tmp_path / folder), None)[0].items()}
             for folder in ("dict", "lone", "pq")}
    assert sizes == {"dict": {"train": 4, "dev": 2}, "lone": {"train": 3},
                     "pq": {"train": 4, "validation": 2, "test": 2}}


def test_a_path_neither_local_nor_on_the_hub_is_one_line(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", _fail_on_hub(datasets.load_dataset))
    with pytest.raises(NlpseqError) as err:
        sources.load_dataset_splits("someone/nothing", None, ("train",), {})
    assert str(err.value) == ("data.path='someone/nothing' is not a local folder, and the hub "
                              "dataset 'someone/nothing' could not be loaded "
                              "(ConnectionError: offline)")


def test_a_hub_id_without_file_names_reads_every_split_as_data_hub(tmp_path):
    """``data=files data.hub_id=X``: no file names, so the splits are the dataset's own."""
    _splits(train=4, validation=2).save_to_disk(str(tmp_path / "d"))
    splits = load_splits({"train": None, "validation": None, "test": None}, name="files",
                         hub_id=str(tmp_path / "d"))
    assert {split: len(rows.dataset) for split, rows in splits.items()} == {
        "train": 4, "validation": 2}


def test_a_runs_own_paths_are_stored_absolute_and_a_named_datasets_stay_in_its_folder(
        tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    files = {"name": "files", "path": None, "train_file": "train.tsv",
             "validation_file": str(tmp_path / "dev.tsv"), "test_file": None}
    sources.pin_relative_paths(files)
    assert files == {"name": "files", "path": None, "train_file": str(tmp_path / "train.tsv"),
                     "validation_file": str(tmp_path / "dev.tsv"), "test_file": None}
    prefix = {"name": "files", "path": None, "train_file": "mt/train"}  # DIR/train.de + .en
    sources.pin_relative_paths(prefix)
    assert prefix["train_file"] == str(tmp_path / "mt" / "train")
    local = {"name": None, "path": "folder", "train_file": None}
    sources.pin_relative_paths(local)
    assert local["path"] == str(tmp_path / "folder")
    hub = {"name": "de-en", "path": "wmt16", "train_file": None}  # a hub id: no such folder
    sources.pin_relative_paths(hub)
    assert hub["path"] == "wmt16"
    named = {"name": "sst2", "path": None, "train_file": "train.tsv"}  # in $NLPSEQ_DATA_DIR/sst2
    sources.pin_relative_paths(named)
    assert named["train_file"] == "train.tsv"


def test_a_list_or_dict_in_a_column_the_task_reads_is_refused_with_its_row():
    rows = sources.Rows(datasets.Dataset.from_dict(
        {"sentence": [["good", "film"], ["bad"]], "label": ["pos", "neg"]}), "the dataset 'd'")
    with pytest.raises(NlpseqError) as caught:
        sources.check_values(rows, {"sentence": "data.text_column"})
    assert str(caught.value) == ("the dataset 'd', row 1: 'sentence' (data.text_column) is a "
                                 "list; expected a string or a number")
    numbers = sources.Rows(datasets.Dataset.from_dict({"label": [1, 2.5]}), "d")
    sources.check_values(numbers, {"label": "data.label_column"})  # numbers are values


def test_one_dataset_split_for_two_roles_is_refused():
    loaded = datasets.DatasetDict({"test": datasets.Dataset.from_dict({"t": ["a", "b"]})})
    with pytest.raises(NlpseqError) as caught:
        sources.pick_splits(loaded, ("train", "validation", "test"), {"train": "test"},
                            "the dataset 'd'", "data.splits")
    assert str(caught.value) == (
        "data.splits reads the split 'test' as both train and test: a model would be scored "
        "on rows it saw; map them to different splits")


def test_a_folder_of_csv_files_is_read_as_text_as_data_files_reads_it(tmp_path):
    (tmp_path / "train.csv").write_text("sentence,label\n007,pos\nNA,neg\nnull,pos\n1.0,neg\n")
    loaded, _ = sources.open_dataset(str(tmp_path), None)
    assert loaded["train"]["sentence"] == ["007", "NA", "null", "1.0"]
