"""Sentiment (text classification) data: raw splits -> labels -> token ids -> batches.

The flow is split in two because the tokenizer is trained between the steps:
``load()`` reads the raw splits and fixes the label names, the caller trains a tokenizer
on ``train_texts()``, then ``encode(tokenizer)`` tokenizes every split with
``datasets.map(batched=True)`` (cached on disk under a fingerprint of data + tokenizer).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Literal, get_args

import datasets

from nlpseq.checks import check_choice
from nlpseq.data.base import SPLITS, TextDataModule, check_columns
from nlpseq.data.batching import PadCollator
from nlpseq.data.labels import (
    check_known,
    check_names,
    check_no_header_rows,
    class_names,
    label_id,
    label_value,
    names_from,
    read_labels,
    warn_thin_classes,
)
from nlpseq.data.phrases import split_whole_sentences
from nlpseq.data.sources import Rows, column_values
from nlpseq.errors import NlpseqError

log = logging.getLogger(__name__)
Holdout = Literal["rows", "sentences"]  # data.holdout: what validation_fraction holds out


class SentimentDataModule(TextDataModule):
    """Labelled sentences from local files or a named dataset, batched by length.

    Args:
        name: ``files`` (or None) for explicit paths, ``sample`` for the embedded sample, a
            dataset name whose local copy lives in ``$NLPSEQ_DATA_DIR/<name>/``, or with
            ``path`` the dataset's configuration.
        train_file, validation_file, test_file: paths (relative to the named dataset's
            folder for named datasets). No validation file: a seeded
            ``validation_fraction`` of train. No test file: the test split is validation.
        hub_id, hub_config: Hugging Face dataset loaded when no local copy exists;
            ``hub_splits`` maps a split to the hub split it reads (``{test: validation}``).
        path, splits: ``data=hub``: any dataset, a hub id or a local folder, and the
            dataset's split each split reads (``TextDataModule``).
        text_column, label_column: column names in the files.
        label_names: names of label ids 0..C-1; labels in the files may be these names
            or integer ids (one or the other in each file; ``nlpseq.data.labels``).
            Default: the names a dataset's ``ClassLabel`` column holds, else the sorted
            distinct training labels (ids 0..max: "0".."max").
        max_length: texts longer than this many tokens are cut to it, counted in the log
            (None: no limit).
        holdout: what ``validation_fraction`` holds out of train when there is no
            validation file: ``rows`` (a random slice) or ``sentences`` (whole sentences,
            and every training row they contain, for data whose rows include each
            sentence's phrases, as SST-2's do; ``nlpseq.data.phrases``).
    """

    task_name = "sentiment"  # the task this data trains; train checks they match
    encoding_version = 3  # bump when _encode_batch changes, so cached encodings are not reused
    sample_files = {"train": "sentiment_train.tsv", "validation": "sentiment_validation.tsv",
                    "test": "sentiment_test.tsv"}

    def __init__(
        self,
        *,
        name: str | None = None,
        train_file: str | None = None,
        validation_file: str | None = None,
        test_file: str | None = None,
        hub_id: str | None = None,
        hub_config: str | None = None,
        hub_splits: dict[str, str] | None = None,
        path: str | None = None,
        splits: dict[str, str | None] | None = None,
        text_column: str = "sentence",
        label_column: str = "label",
        label_names: list[str] | None = None,
        validation_fraction: float = 0.1,
        holdout: Holdout = "rows",
        max_length: int | None = 512,
        batch_size: int = 64,
        eval_batch_size: int = 256,
        pool_batches: int = 100,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        files = {"train": train_file, "validation": validation_file, "test": test_file}
        super().__init__(name=name, files=files, hub_id=hub_id, hub_config=hub_config,
                         hub_splits=hub_splits, path=path, splits=splits,
                         validation_fraction=validation_fraction, max_length=max_length,
                         batch_size=batch_size, eval_batch_size=eval_batch_size,
                         pool_batches=pool_batches, num_workers=num_workers, seed=seed)
        self.text_column, self.label_column = text_column, label_column
        self.label_names = list(label_names) if label_names else None
        check_choice("data.holdout", holdout, get_args(Holdout))
        self.holdout = holdout

    # ----------------------------------------------------------------- raw splits
    def load(self, splits: tuple[str, ...] = SPLITS) -> None:
        """Read the raw splits, check columns and labels, and fix ``label_names``."""
        files = self.files_to_read(splits, train_hint="PATH (or pick data=sst2)")
        required = {self.text_column: "data.text_column", self.label_column: "data.label_column"}
        parts = self.read_splits(files, required=required)
        for split, rows in parts.items():
            check_columns(split, rows.dataset, {"text_column": self.text_column,
                                                "label_column": self.label_column}, rows.source)
        parts = {split: rows for split, rows in parts.items()
                 if not self._unlabelled(split, rows)}
        self._check_labels(parts)
        for split, rows in parts.items():
            _report_empty_texts(split, rows, self.text_column)
        self.raw = self.fill_missing_splits({split: rows.dataset for split, rows in parts.items()},
                                            splits)

    def hold_out(self, train: datasets.Dataset) -> tuple[datasets.Dataset, datasets.Dataset]:
        """(train, validation), ``holdout`` deciding what a held-out unit is."""
        if self.holdout == "rows":
            return super().hold_out(train)
        texts = column_values(train, self.text_column)
        kept, held_out, sentences = split_whole_sentences(texts, self.validation_fraction,
                                                          self.seed)
        log.info("No validation split: holding out %d of the %d whole training sentences "
                 "(%.0f%%, seed %d) and the %d other training rows they contain",
                 len(held_out), sentences, 100 * self.validation_fraction, self.seed,
                 len(texts) - len(kept) - len(held_out))
        return train.select(kept), train.select(held_out)

    def _check_labels(self, parts: dict[str, Rows]) -> None:
        """Read each split's labels one way (names or ids, ``labels``), fix
        ``label_names`` from train when none are given, and refuse labels a classifier
        cannot train on, naming the file and line."""
        for rows in parts.values():
            check_no_header_rows(rows, self.text_column, self.label_column)
        values = {split: read_labels(rows, self.label_column, self.label_names)
                  for split, rows in parts.items()}
        if self.label_names is None:
            if "train" not in parts:
                raise NlpseqError("label_names are unknown: give data.label_names or a train file")
            self.label_names = (class_names(parts["train"].dataset, self.label_column)
                                or names_from(values["train"], parts["train"]))
        check_names(self.label_names, values.get("train"),
                    parts["train"].source if "train" in parts else "")
        for split, rows in parts.items():
            check_known(rows, values[split], self.label_names, split)
        if "train" in parts:
            warn_thin_classes(parts["train"], values["train"], self.label_names)

    def _unlabelled(self, split: str, rows: Rows) -> bool:
        """Hub test splits often carry label -1 everywhere: treat them as absent. A file
        of the user's own (``data=files``) is refused instead: it was named to be read."""
        labels = column_values(rows.dataset, self.label_column)
        if split == "train" or not all(label_value(label, set()) == -1 for label in labels):
            return False
        if self.files.get(split) and self.path is None and self.name in (None, "files"):
            raise NlpseqError(f"{rows.source}: every label is -1 (unlabelled), so the {split} "
                              f"split has nothing to score against; give a labelled file")
        log.warning("The %s split has no labels (all -1); it is not used", split)
        return True

    def train_texts(self) -> Iterator[str]:
        """The training sentences, for training a tokenizer on the training split only."""
        for batch in self.raw["train"].iter(batch_size=1000):
            yield from (str(text).strip() for text in batch[self.text_column])

    # ------------------------------------------------------------------- encoding
    def encode_split(self, split: str, tokenizer) -> None:
        """Tokenize one split (cached) and map its labels to ids; texts longer than
        ``max_length`` tokens are cut to it, and counted in the log."""
        encoded = self.tokenize(
            split, _encode_batch, what="texts", max_length=self.max_length,
            key=(tokenizer.fingerprint(), self.max_length, self.text_column,
                 self.label_column, self.label_names),
            tokenizer=tokenizer, text_column=self.text_column, label_column=self.label_column,
            label_ids={name: i for i, name in enumerate(self.label_names)})
        self.encoded[split] = encoded.to_list()

    # ---------------------------------------------------------------- dataloaders
    def lengths(self, split: str) -> list[int]:
        return [len(e["input_ids"]) for e in self.examples(split)]

    def collate(self, split: str) -> PadCollator:
        return PadCollator(self.pad_id)

    def texts(self, split: str) -> list[str]:
        return [str(t).strip() for t in column_values(self.raw[split], self.text_column)]


def _report_empty_texts(split: str, rows: Rows, column: str) -> None:
    """Empty and whitespace-only texts are kept (each reads as one unknown token), and
    counted once per split."""
    empty = [i for i, text in enumerate(column_values(rows.dataset, column))
             if not str(text).strip()]
    if empty:
        log.warning("The %s split has %d empty or whitespace-only text(s) (the first at %s); "
                    "each is read as one unknown token", split, len(empty), rows.where(empty[0]))


def _encode_batch(batch, indices, tokenizer, text_column, label_column, label_ids, max_length):
    texts = [str(text).strip() for text in batch[text_column]]
    ids = tokenizer.encode_batch(texts)
    return {
        "input_ids": [(seq[:max_length] if max_length else seq) or [tokenizer.unk_id]
                      for seq in ids],
        "label_id": [label_id(label, label_ids) for label in batch[label_column]],
        "index": indices,
        "cut": [bool(max_length) and len(seq) > max_length for seq in ids],
    }
