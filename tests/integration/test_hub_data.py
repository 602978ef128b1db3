"""``data=hub``: any dataset, a hub id or a local ``datasets`` folder, for all three tasks.

No network: the datasets are local folders written by ``save_to_disk`` and ``to_parquet``;
a hub id fails offline with one line, as it does for a user without a connection.
"""

import json

import datasets
import pytest

from nlpseq.data import LanguageModelDataModule, SentimentDataModule, TranslationDataModule
from tests.integration.conftest import TINY, error_line, run_cli, run_cli_cases

REVIEWS = [("a fine film", "pos"), ("a dull film", "neg"), ("great fun", "pos"),
           ("an awful mess", "neg")]


def reviews(copies: int) -> datasets.Dataset:
    return datasets.Dataset.from_dict({"review": [text for text, _ in REVIEWS] * copies,
                                       "stars": [label for _, label in REVIEWS] * copies})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A sentiment DatasetDict saved to disk, its validation split called ``dev``:
    train 40, dev 8, test 12 rows."""
    path = tmp_path_factory.mktemp("hub") / "reviews"
    datasets.DatasetDict({"train": reviews(10), "dev": reviews(2),
                          "test": reviews(3)}).save_to_disk(str(path))
    return path


def test_a_saved_dataset_trains_and_evaluates_through_the_cli(saved, tmp_path):
    data = ["data=hub", f"data.path={saved}", "data.text_column=review",
            "data.label_column=stars"]
    run_dir = tmp_path / "run"
    result = run_cli("train", *data, "data.splits.validation=dev", *TINY,
                     "trainer.max_epochs=1", f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert (metrics["val/examples"], metrics["test/examples"]) == (8, 12)
    assert 0.0 <= metrics["test/acc"] <= 1.0

    # nlpseq-eval on the dataset's dev split as test; then one-line refusals
    bad = [f"data.path={saved}", *TINY, f"hydra.run.dir={tmp_path}/bad"]
    cases = [
        ("evaluate", f"ckpt_path={run_dir}", "data=hub", f"data.path={saved}",
         "data.splits.test=dev", f"hydra.run.dir={tmp_path}/eval"),
        ("train", "data=hub", "data.path=someone/nothing", *TINY, f"hydra.run.dir={tmp_path}/b"),
        ("train", "data=hub", *data[2:], "data.splits.validation=valid", *bad),
        ("train", "data=hub", "data.label_column=stars", *bad),
        ("train", "data=hub", *TINY, f"hydra.run.dir={tmp_path}/b"),
        ("train", "data=files", "data.hub_id=someone/nothing", *TINY,
         f"hydra.run.dir={tmp_path}/b"),
    ]
    results = run_cli_cases(cases)
    assert results[0].returncode == 0, results[0].stderr[-3000:]
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["test/examples"] == 8
    offline = ("could not be loaded (ConnectionError: Couldn't reach 'someone/nothing' on the "
               "Hub (OfflineModeIsEnabled))")
    expected = [
        f"error: data.path='someone/nothing' is not a local folder, and the hub dataset "
        f"'someone/nothing' {offline}",
        f"error: the dataset '{saved}' has no split 'valid' (data.splits.validation=valid); "
        "its splits: train, dev, test",
        f"error: The train split (the dataset '{saved}', split 'train') has no column "
        "'sentence' (data.text_column); columns found: review, stars",
        "error: 'data.path' is required: add data.path=... to the command line",
        f"error: data.hub_id='someone/nothing' is not a local folder, and the hub dataset "
        f"'someone/nothing' {offline}",
    ]
    for case, line, result in zip(cases[1:], expected, results[1:], strict=True):
        assert result.returncode == 2, (case, result.stderr[-2000:])
        assert error_line(result) == line, case
        assert "Traceback" not in result.stderr, case


def write_parquet(folder, **splits):
    """``train.parquet``, ``validation.parquet``, ``test-00000-of-00001.parquet``: split
    names in file names, as hub repositories store them."""
    folder.mkdir()
    names = {"test": "test-00000-of-00001"}
    for split, columns in splits.items():
        datasets.Dataset.from_dict(columns).to_parquet(str(folder / f"{names.get(split, split)}"
                                                                    ".parquet"))
    return str(folder)


def test_a_parquet_folder_serves_a_language_model(tmp_path):
    lines = ["the cat sat", "a dog ran", "birds sing"]
    path = write_parquet(tmp_path / "lm", train={"line": lines * 4},
                         validation={"line": lines * 2}, test={"line": lines})
    data = LanguageModelDataModule(path=path, name=None, text_column="line", mode="lines")
    data.load()
    assert {split: len(rows) for split, rows in data.raw.items()} == {
        "train": 12, "validation": 6, "test": 3}
    assert data.raw["test"]["line"] == lines


def test_a_parquet_folder_serves_translation_and_validation_is_held_out(tmp_path):
    pairs = {"german": ["die katze", "der hund"] * 10, "english": ["the cat", "the dog"] * 10}
    path = write_parquet(tmp_path / "mt", train=pairs,
                         test={"german": ["ein vogel"], "english": ["a bird"]})
    data = TranslationDataModule(path=path, source_column="german", target_column="english",
                                 validation_fraction=0.1, seed=3)
    data.load()
    assert {split: len(rows) for split, rows in data.raw.items()} == {
        "train": 18, "validation": 2, "test": 1}
    assert data.raw["test"][0] == {"source": "ein vogel", "target": "a bird"}
    assert not data.test_is_validation


def test_a_dataset_without_validation_or_test_holds_validation_out_of_train(tmp_path):
    reviews(10).save_to_disk(str(tmp_path / "lone"))  # a lone Dataset: the train split
    data = SentimentDataModule(path=str(tmp_path / "lone"), text_column="review",
                               label_column="stars", validation_fraction=0.25, seed=1)
    data.load()
    assert {split: len(rows) for split, rows in data.raw.items()} == {
        "train": 30, "validation": 10, "test": 10}
    assert data.test_is_validation and data.label_names == ["neg", "pos"]


def test_a_class_label_column_names_the_classes(tmp_path):
    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["bad", "good"])})
    rows = {"text": ["no", "yes", "meh", "wow"] * 3, "label": [0, 1, 0, 1] * 3}
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "d"))
    data = SentimentDataModule(path=str(tmp_path / "d"), text_column="text")
    data.load(("train",))
    assert data.label_names == ["bad", "good"]
