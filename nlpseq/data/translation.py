"""Parallel text for translation: raw sentence pairs -> token ids -> bucketed batches.

A split is either two aligned plain-text files named by a prefix and the language codes
(``DIR/train`` + ``de``/``en`` -> ``DIR/train.de``, ``DIR/train.en``), or one table
(.tsv .csv .json .jsonl .parquet) with a column per language. As for the other tasks,
``load()`` reads the raw splits, the caller trains the tokenizers on ``train_texts()``,
then ``encode(tokenizers)`` tokenizes every split (cached by ``datasets``), dropping
training pairs with an empty side or over the length limits — counting both. Evaluation
splits keep every pair, so that their hypotheses answer them line for line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import datasets
import torch

from nlpseq.data.base import SPLITS, TextDataModule, check_columns
from nlpseq.data.sources import FORMATS, Rows, load_file, load_parallel_text, parallel_paths
from nlpseq.errors import NlpseqError

log = logging.getLogger(__name__)


class TranslationDataModule(TextDataModule):
    """Sentence pairs from local files or a named dataset, batched by length.

    Args:
        name: ``files`` (or None) for explicit paths, ``sample`` for the embedded sample, a
            dataset name whose local copy lives in ``$NLPSEQ_DATA_DIR/<name>/``, or with
            ``path`` the dataset's configuration.
        source_lang, target_lang: language codes; the direction of translation, the
            suffixes of plain-text files and the default column names of tables.
        train_file, validation_file, test_file: a prefix (``DIR/train``) or a table file.
            No validation file: a seeded ``validation_fraction`` of train. No test file:
            the test split is validation.
        source_column, target_column: table columns (default: the language codes).
        hub_id, hub_config: Hugging Face dataset loaded when no local copy exists;
            ``hub_splits`` maps a split to the hub split it reads (``{test: validation}``); its
            rows hold the languages as columns or as a ``translation`` dict.
        path, splits: ``data=hub``: any dataset, a hub id or a local folder, and the
            dataset's split each split reads (``TextDataModule``). Read as the hub datasets are.
        max_source_length, max_target_length: training pairs with more tokens are
            dropped (counted in the log); evaluation splits are kept whole.
        max_length: in every split, a side longer than this many tokens is cut to it,
            counted in the log (None: no limit).
        batch_size, eval_batch_size: sentence pairs per batch (the most, with max_tokens).
        max_tokens: cut training batches by a token budget (pairs x longest side) instead.
    """

    task_name = "translation"  # the task this data trains; train checks they match
    encoding_version = 2  # bump when _encode_pairs changes, so cached encodings are not reused
    sample_files = {"train": "translation_train", "validation": "translation_validation",
                    "test": "translation_test"}  # .de and .en

    def __init__(
        self,
        *,
        name: str | None = None,
        source_lang: str = "de",
        target_lang: str = "en",
        train_file: str | None = None,
        validation_file: str | None = None,
        test_file: str | None = None,
        source_column: str | None = None,
        target_column: str | None = None,
        hub_id: str | None = None,
        hub_config: str | None = None,
        hub_splits: dict[str, str] | None = None,
        path: str | None = None,
        splits: dict[str, str | None] | None = None,
        max_source_length: int | None = 100,
        max_target_length: int | None = 100,
        max_length: int | None = 512,
        batch_size: int = 64,
        eval_batch_size: int = 128,
        max_tokens: int | None = None,
        validation_fraction: float = 0.05,
        pool_batches: int = 100,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        for option, value in (("source_lang", source_lang), ("target_lang", target_lang)):
            if not value or not str(value).replace("_", "").replace("-", "").isalnum():
                raise NlpseqError(f"data.{option}={value!r} is not a language code "
                                  f"(a file suffix such as de, en, fr)")
        if source_lang == target_lang:
            raise NlpseqError(f"data.source_lang and data.target_lang are both {source_lang!r}")
        for option, value in (("max_source_length", max_source_length),
                              ("max_target_length", max_target_length)):
            if value is not None and value < 1:
                raise NlpseqError(f"data.{option} must be >= 1 or null, got {value}")
        files = {"train": train_file, "validation": validation_file, "test": test_file}
        super().__init__(name=name, files=files, hub_id=hub_id, hub_config=hub_config,
                         hub_splits=hub_splits, path=path, splits=splits,
                         validation_fraction=validation_fraction, max_length=max_length,
                         batch_size=batch_size, eval_batch_size=eval_batch_size,
                         pool_batches=pool_batches, num_workers=num_workers, seed=seed,
                         max_tokens=max_tokens)
        self.source_lang, self.target_lang = source_lang, target_lang
        self.languages = (source_lang, target_lang)  # plain-text files' suffixes, in order
        self.source_column = source_column or source_lang
        self.target_column = target_column or target_lang
        if self.source_column == self.target_column:
            raise NlpseqError(f"data.source_column and data.target_column are both "
                              f"{self.source_column!r}: a table needs a column per side")
        self.max_source_length, self.max_target_length = max_source_length, max_target_length

    # ----------------------------------------------------------------- raw splits
    def load(self, splits: tuple[str, ...] = SPLITS) -> None:
        """Read the raw splits as two columns and hold out validation if needed."""
        hint = (f"DIR/train (for DIR/train.{self.source_lang} and DIR/train."
                f"{self.target_lang}) or pick data=multi30k")
        wanted = self.files_to_read(splits, hint)
        files = {split: path for split, path in wanted.items() if path}
        base = self.base_dir()
        if self.path is not None or (self.hub_id is not None
                                     and not self._local_copy_present(base, files)):
            required = {self.source_column: "data.source_column",
                        self.target_column: "data.target_column"}
            raw = {split: self._columns_from_hub(split, rows)
                   for split, rows in self.read_splits(wanted, required=required).items()}
        else:
            raw = {split: self._read(base / path if base else Path(path), split)
                   for split, path in files.items()}
        self.raw = self.fill_missing_splits(raw, splits)

    def _local_copy_present(self, base: Path | None, files: dict[str, str]) -> bool:
        if base is None or not files:
            return False
        return all((base / path).is_file() or all(p.is_file() for p in parallel_paths(
            base / path, self.languages)) for path in files.values())

    def _read(self, path: Path, split: str) -> datasets.Dataset:
        """A prefix of two plain-text files, or a table with a column per language."""
        if path.suffix.lower() not in FORMATS or path.suffix.lower() == ".txt":
            dataset = load_parallel_text(path, self.languages, split)
            return dataset.rename_columns({self.source_lang: "source",
                                           self.target_lang: "target"})
        required = {self.source_column: "data.source_column",
                    self.target_column: "data.target_column"}
        return self._pick_columns(split, load_file(path, split, required=required).dataset,
                                  str(path))

    def _columns_from_hub(self, split: str, rows: Rows) -> datasets.Dataset:
        """A dataset's split (``data=hub`` or a named dataset's hub copy): a column per
        language, or the languages of a ``translation`` dict column."""
        dataset = rows.dataset
        if "translation" in dataset.column_names and self.source_column not in dataset.column_names:
            dataset = dataset.flatten().rename_columns(
                {f"translation.{lang}": lang for lang in self.languages
                 if f"translation.{lang}" in dataset.flatten().column_names})
        return self._pick_columns(split, dataset, rows.source)

    def _pick_columns(self, split: str, dataset: datasets.Dataset, where: str):
        check_columns(split, dataset, {"source_column": self.source_column,
                                       "target_column": self.target_column}, where)
        dataset = dataset.select_columns([self.source_column, self.target_column])
        return dataset.rename_columns({self.source_column: "source",
                                       self.target_column: "target"})

    def train_texts(self, side: str = "source") -> Iterator[str]:
        """One side's training sentences, for training a tokenizer on train only."""
        for batch in self.raw["train"].iter(batch_size=1000):
            yield from (text for text in map(_clean, batch[side]) if text)

    # ------------------------------------------------------------------- encoding
    def encode_split(self, split: str, tokenizer) -> None:
        """Tokenize one split with a ``TokenizerPair`` (cached); drop empty pairs
        everywhere and over-long pairs in training, saying how many."""
        examples = self.tokenize(
            split, _encode_pairs, what="pairs", max_length=self.max_length,
            key=(tokenizer.fingerprint(), self.max_length),
            source_tokenizer=tokenizer.source, target_tokenizer=tokenizer.target).to_list()
        if split == "train":
            kept = [e for e in examples if e["source_ids"] and e["target_ids"]]
            if len(kept) < len(examples):
                log.warning("Dropped %d of %d train pairs with an empty side",
                            len(examples) - len(kept), len(examples))
            kept = self._filter_long(kept)
        else:  # kept whole: hypotheses.<split>.txt answers the split line for line
            kept = examples
            empty = sum(not e["source_ids"] for e in examples)
            if empty:
                log.warning("%d of %d %s pairs have an empty source: each gets an empty "
                            "hypothesis (scored in BLEU) and adds nothing to the loss",
                            empty, len(examples), split)
        if not kept:
            raise NlpseqError(f"The {split} split has no sentence pairs left to use")
        self.encoded[split] = kept

    def _filter_long(self, examples: list[dict]) -> list[dict]:
        source_max = self.max_source_length or float("inf")
        target_max = self.max_target_length or float("inf")
        kept = [e for e in examples
                if len(e["source_ids"]) <= source_max and len(e["target_ids"]) <= target_max]
        if len(kept) < len(examples):
            log.info("Dropped %d of %d training pairs over the length limits "
                     "(data.max_source_length=%s, data.max_target_length=%s tokens)",
                     len(examples) - len(kept), len(examples), self.max_source_length,
                     self.max_target_length)
        return kept

    # ---------------------------------------------------------------- dataloaders
    def lengths(self, split: str) -> list[int]:
        """A pair's longer side: its source, or its target's len(y) + 1 decoder steps."""
        return [max(len(e["source_ids"]), len(e["target_ids"]) + 1)
                for e in self.examples(split)]

    def collate(self, split: str) -> ParallelCollator:
        return ParallelCollator(self.pad_id, self.bos_id, self.eos_id)


class ParallelCollator:
    """Sentence pairs -> one padded batch.

    Returns ``source`` (B, S) and ``source_lengths`` (B,); ``target_inputs`` (B, T) =
    ``<bos> y`` and ``targets`` (B, T) = ``y <eos>`` padded with ``pad_id`` (the loss
    ignores it); ``lengths`` (B,) = len(y) + 1, the target tokens the loss counts;
    ``index`` (B,) the pairs' positions in their split; ``references`` the raw target
    sentences (for BLEU). Pairs with an empty source (kept in evaluation splits) are left
    out of the tensors: ``unread_index`` and ``unread_references`` name them.
    """

    def __init__(self, pad_id: int, bos_id: int, eos_id: int) -> None:
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def __call__(self, examples: list[dict]) -> dict:
        unread = [e for e in examples if not e["source_ids"]]  # evaluation pairs only
        examples = [e for e in examples if e["source_ids"]]
        source_lengths = torch.tensor([len(e["source_ids"]) for e in examples], dtype=torch.long)
        lengths = torch.tensor([len(e["target_ids"]) + 1 for e in examples], dtype=torch.long)
        longest = (int(source_lengths.max()), int(lengths.max())) if examples else (0, 0)
        source = torch.full((len(examples), longest[0]), self.pad_id)  # (B, S)
        target_inputs = torch.full((len(examples), longest[1]), self.pad_id)  # (B, T)
        targets = target_inputs.clone()  # (B, T)
        for row, example in enumerate(examples):
            ids = torch.as_tensor(example["target_ids"])
            source[row, :source_lengths[row]] = torch.as_tensor(example["source_ids"])
            target_inputs[row, 0] = self.bos_id
            target_inputs[row, 1:len(ids) + 1] = ids
            targets[row, :len(ids)] = ids
            targets[row, len(ids)] = self.eos_id
        return {"source": source, "source_lengths": source_lengths,
                "target_inputs": target_inputs, "targets": targets, "lengths": lengths,
                "index": torch.tensor([e["index"] for e in examples], dtype=torch.long),
                "references": [e["reference"] for e in examples],
                "unread_index": [e["index"] for e in unread],
                "unread_references": [e["reference"] for e in unread]}


def _clean(text) -> str:
    return " ".join(str(text or "").split())


def _encode_pairs(batch, indices, source_tokenizer, target_tokenizer, max_length):
    sources = [_clean(text) for text in batch["source"]]
    targets = [_clean(text) for text in batch["target"]]
    source_ids = source_tokenizer.encode_batch(sources)
    target_ids = target_tokenizer.encode_batch(targets)
    limit = max_length or None  # None: slices keep everything
    return {"source_ids": [ids[:limit] for ids in source_ids],
            "target_ids": [ids[:limit] for ids in target_ids],
            "reference": targets, "index": indices,
            "cut": [bool(max_length) and max(len(s), len(t)) > max_length
                    for s, t in zip(source_ids, target_ids, strict=True)]}
