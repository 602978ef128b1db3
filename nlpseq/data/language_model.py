"""Language-model (text generation) data: raw text -> token ids -> next-token batches.

Two ways to batch the same text (``mode``):

- ``stream`` (truncated backpropagation through time; Zaremba et al. 2014, "batchify"):
  a split becomes one stream of N token ids, cut into B contiguous parallel streams
  (B, N // B), then into consecutive blocks of ``block_size`` time steps. The blocks come
  in the same order every epoch, so a model can carry its recurrent state from block i
  to block i+1 of the same stream; ``block == 0`` marks where to reset it.
- ``lines``: every row (line or document) is one example ``<bos> ids`` -> ``ids <eos>``,
  batched by length and padded like the sentiment data.

``line_end`` says what a line break is: ``eos`` (each row is a sentence ending in
``<eos>``, the Penn Treebank convention) or ``newline`` (the ``"\\n"`` is a character of
the text, as for character-level Tiny Shakespeare; the stream spells the file exactly).
As for sentiment, ``load()`` reads the raw splits, the caller trains a tokenizer on
``train_texts()``, then ``encode(tokenizer)`` tokenizes them (cached by ``datasets``).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterator
from typing import Literal

import datasets
import numpy as np
import pyarrow.compute as pc
import torch
from torch.utils.data import DataLoader, Dataset

from nlpseq.checks import check_choice
from nlpseq.data.base import SPLITS, TextDataModule, check_columns
from nlpseq.data.resumable import InOrder
from nlpseq.errors import NlpseqError

log = logging.getLogger(__name__)
MODES, LINE_ENDS = ("stream", "lines"), ("eos", "newline")


class LanguageModelDataModule(TextDataModule):
    """Plain text from local files or a named dataset, as next-token prediction batches.

    Args:
        name: ``files`` (or None) for explicit paths, ``sample`` for the embedded sample, a
            dataset name whose local copy lives in ``$NLPSEQ_DATA_DIR/<name>/``, or with
            ``path`` the dataset's configuration.
        train_file, validation_file, test_file: paths (``.txt``: one row per line). No
            validation file: in ``stream`` mode the last ``validation_fraction`` of the
            training text (nanoGPT's 90/10 cut, moved to a word's end), in ``lines`` mode a
            seeded random fraction of the rows. No test file: the test split is validation.
        hub_id, hub_config: Hugging Face dataset loaded when no local copy exists;
            ``hub_splits`` maps a split to the hub split it reads (``{test: validation}``).
        path, splits: ``data=hub``: any dataset, a hub id or a local folder, and the
            dataset's split each split reads (``TextDataModule``).
        text_column: the text column of non-``.txt`` files and hub datasets.
        mode: ``stream`` (contiguous blocks, state carried over) or ``lines``.
        line_end: ``eos`` (rows stripped, ``<eos>`` after each, empty rows dropped) or
            ``newline`` (rows kept as written, line breaks included).
        block_size: time steps per block in ``stream`` mode.
        num_streams, eval_num_streams: ``stream`` mode: the parallel streams the text is
            cut into, the rows of every batch (training; validation and test).
        batch_size, eval_batch_size: ``lines`` mode: rows per batch.
        max_length: ``lines`` mode: rows longer than this many tokens are cut to it,
            counted in the log (None: no limit). A ``stream`` is never cut.
        reverse: read the text right to left: each row's tokens (``lines``) or the whole
            stream (``stream``) reversed. A backward language model, whose encoder then
            starts the reverse direction of a bidirectional one
            (``encoder.init_from_backward``; ULMFiT and ELMo pretrain both directions).
    """

    task_name = "generation"  # the task this data trains; train checks they match
    encoding_version = 2  # bump when _encode_rows changes, so cached encodings are not reused
    sample_files = {"train": "lm_train.txt", "validation": "lm_validation.txt",
                    "test": "lm_test.txt"}

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
        text_column: str = "text",
        mode: Literal["stream", "lines"] = "stream",
        line_end: Literal["eos", "newline"] = "eos",
        block_size: int = 128,
        num_streams: int = 32,
        eval_num_streams: int = 32,
        batch_size: int = 32,
        eval_batch_size: int = 32,
        validation_fraction: float = 0.1,
        max_length: int | None = 512,
        reverse: bool = False,
        pool_batches: int = 100,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        check_choice("data.mode", mode, MODES)
        check_choice("data.line_end", line_end, LINE_ENDS)
        for option, value in (("block_size", block_size), ("num_streams", num_streams),
                              ("eval_num_streams", eval_num_streams),
                              ("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise NlpseqError(f"data.{option} must be >= 1, got {value}")
        files = {"train": train_file, "validation": validation_file, "test": test_file}
        super().__init__(name=name, files=files, hub_id=hub_id, hub_config=hub_config,
                         hub_splits=hub_splits, path=path, splits=splits,
                         validation_fraction=validation_fraction, max_length=max_length,
                         batch_size=batch_size, eval_batch_size=eval_batch_size,
                         pool_batches=pool_batches, num_workers=num_workers, seed=seed)
        self.text_column = text_column
        self.mode, self.line_end, self.block_size = mode, line_end, block_size
        self.num_streams, self.eval_num_streams = num_streams, eval_num_streams
        self.reverse = reverse
        # stream mode: split -> (N,) token ids; lines mode: encoded[split] = [{"ids", "index"}]
        self.streams: dict[str, torch.Tensor] = {}
        self.strip = line_end == "eos"  # rows lose their surrounding whitespace
        self.drop_empty = mode == "lines" or line_end == "eos"

    @classmethod
    def eval_batch_key(cls, data_cfg) -> str:
        return "eval_num_streams" if data_cfg.get("mode", "stream") == "stream" else \
            "eval_batch_size"

    # ----------------------------------------------------------------- raw splits
    def load(self, splits: tuple[str, ...] = SPLITS) -> None:
        """Read the raw splits, check the text column and hold out validation if needed."""
        files = self.files_to_read(splits, train_hint="PATH (or pick data=tiny_shakespeare)")
        parts = self.read_splits(files, keep_linebreaks=not self.strip,
                                 required={self.text_column: "data.text_column"})
        raw = {split: rows.dataset for split, rows in parts.items()}
        for split, dataset in raw.items():
            if _is_text_file(files.get(split)) and self.text_column != "text":
                # A .txt file's rows are its lines, in column "text": whatever the hub calls
                # the column (data.text_column), a local copy reads the same.
                dataset = raw[split] = dataset.rename_column("text", self.text_column)
            check_columns(split, dataset, {"text_column": self.text_column}, parts[split].source)
        self.raw = self.fill_missing_splits(raw, splits)

    def hold_out(self, train: datasets.Dataset) -> tuple[datasets.Dataset, datasets.Dataset]:
        """Lines mode: random rows. Stream mode: the end of the text (nanoGPT's cut)."""
        if self.mode == "lines":
            return super().hold_out(train)
        log.info("No validation split: the last %.0f%% of the training text is validation",
                 100 * self.validation_fraction)
        return _cut_tail(train, self.text_column, self.validation_fraction)

    def train_texts(self) -> Iterator[str]:
        """The training rows, for training a tokenizer on the training split only."""
        for batch in self.raw["train"].iter(batch_size=1000):
            for text in batch[self.text_column]:
                text = _row_text(text, self.strip)
                if text.strip() or not self.drop_empty:
                    yield text

    # ------------------------------------------------------------------- encoding
    def encode_split(self, split: str, tokenizer) -> None:
        """Tokenize one split (cached): a list of rows (``lines``) or one stream."""
        max_length = self.max_length if self.mode == "lines" else None  # a stream is never cut
        encoded = self.tokenize(
            split, _encode_rows, what="rows", max_length=max_length,
            key=(tokenizer.fingerprint(), self.mode, self.line_end, max_length,
                 self.text_column),
            tokenizer=tokenizer, column=self.text_column, strip=self.strip,
            drop_empty=self.drop_empty, add_eos=self.mode == "stream" and self.line_end == "eos")
        if len(encoded) < len(self.raw[split]):
            log.info("Dropped %d empty rows of the %s split", len(self.raw[split]) - len(encoded),
                     split)
        if self.mode == "lines":
            rows = encoded.to_list()
            if self.reverse:  # <bos> and <eos> still open and close each row
                for row in rows:
                    row["ids"].reverse()
            self.encoded[split] = rows
            return
        ids = np.zeros(0, dtype=np.int64)
        if len(encoded):
            flat = pc.list_flatten(encoded.with_format("arrow")[:]["ids"])
            ids = flat.to_numpy(zero_copy_only=False).astype(np.int64)
        if self.reverse:  # "a b <eos> c <eos>" -> "<eos> c <eos> b a"
            ids = ids[::-1].copy()
        self.streams[split] = torch.from_numpy(ids)  # (N,)
        self._blocks(split)  # a split too small fails now, not at its first batch

    def num_tokens(self, split: str) -> int:
        """The real target tokens of ``split`` as its loader yields them (for reporting)."""
        if self.mode == "stream":
            return self._blocks(split).num_targets
        return sum(self.lengths(split))

    # ---------------------------------------------------------------- dataloaders
    def _blocks(self, split: str) -> StreamBlocks:
        """Stream mode: ``num_streams`` streams for train (each DDP process takes its share
        of them), ``eval_num_streams`` for the other splits."""
        size = self.num_streams if split == "train" else self.eval_num_streams
        blocks = StreamBlocks(self.loaded(self.streams, split), size, self.block_size, split)
        if split == "train" and self.replicas > 1:  # DDP: this process's streams (rows)
            blocks.data = blocks.data[self.rank::self.replicas]
        return blocks

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if self.mode == "lines":  # bucketed like the other tasks' examples
            return super()._loader(split, shuffle)
        blocks = self._blocks(split)  # each item is already a batch, in corpus order
        return self.loader(blocks, batch_size=None, sampler=InOrder(blocks))

    def lengths(self, split: str) -> list[int]:
        """Lines mode: ``<bos> ids`` (as ``ids <eos>``) is len(ids) + 1 steps long."""
        return [len(e["ids"]) + 1 for e in self.examples(split)]

    def collate(self, split: str) -> LinesCollator:
        return LinesCollator(self.pad_id, self.bos_id, self.eos_id)


class StreamBlocks(Dataset):
    """One split's token stream as B parallel streams cut into blocks (Zaremba et al. 2014).

    The N ids become ``data`` (B, S) with S = N // B (the last N mod B ids are dropped),
    so row b is a contiguous slice of the corpus. Block i (of ceil((S - 1) / L)) is the
    batch ``tokens = data[:, iL : iL + l]``, ``targets = data[:, iL + 1 : iL + l + 1]``
    with l = min(L, S - 1 - iL), ``lengths`` (B,) all l and ``block`` = i (0-dim).
    """

    def __init__(self, ids: torch.Tensor, num_streams: int, block_size: int,
                 split: str = "train") -> None:
        steps = len(ids) // num_streams
        if steps < 2:
            option = "num_streams" if split == "train" else "eval_num_streams"
            raise NlpseqError(
                f"The {split} split has {len(ids)} tokens, too few for {num_streams} streams of "
                f"at least 2 tokens (data.{option}={num_streams}); use a smaller data.{option}"
            )
        self.data = ids[: num_streams * steps].view(num_streams, steps)  # (B, S)
        self.block_size = block_size

    @property
    def num_targets(self) -> int:
        return self.data.shape[0] * (self.data.shape[1] - 1)

    def __len__(self) -> int:
        return math.ceil((self.data.shape[1] - 1) / self.block_size)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < len(self):
            raise IndexError(f"block {i} out of range ({len(self)} blocks)")
        start = i * self.block_size
        length = min(self.block_size, self.data.shape[1] - 1 - start)
        return {
            "tokens": self.data[:, start:start + length].contiguous(),  # (B, l)
            "targets": self.data[:, start + 1:start + 1 + length].contiguous(),  # (B, l)
            "lengths": torch.full((self.data.shape[0],), length, dtype=torch.long),  # (B,)
            "block": torch.tensor(i, dtype=torch.long),  # ()
        }


class LinesCollator:
    """Examples ``{"ids": [...], "index": int}`` -> one padded batch.

    Returns ``tokens`` (B, T) = ``<bos> ids`` and ``targets`` (B, T) = ``ids <eos>``, both
    padded with ``pad_id`` (the loss ignores it), ``lengths`` (B,) = len(ids) + 1 and
    ``index`` (B,) the rows' positions in their split.
    """

    def __init__(self, pad_id: int, bos_id: int, eos_id: int) -> None:
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(e["ids"]) + 1 for e in examples], dtype=torch.long)
        shape = (len(examples), int(lengths.max()))
        tokens = torch.full(shape, self.pad_id, dtype=torch.long)  # (B, T)
        targets = torch.full(shape, self.pad_id, dtype=torch.long)  # (B, T)
        for row, example in enumerate(examples):
            ids = torch.as_tensor(example["ids"], dtype=torch.long)
            tokens[row, 0] = self.bos_id
            tokens[row, 1:len(ids) + 1] = ids
            targets[row, :len(ids)] = ids
            targets[row, len(ids)] = self.eos_id
        index = torch.tensor([e["index"] for e in examples], dtype=torch.long)
        return {"tokens": tokens, "targets": targets, "lengths": lengths, "index": index}


def _is_text_file(path) -> bool:
    return path is not None and str(path).lower().endswith(".txt")


def _row_text(text, strip: bool) -> str:
    text = "" if text is None else str(text)
    return text.strip() if strip else text


def _cut_tail(dataset: datasets.Dataset, column: str, fraction: float):
    """(train, validation): the text cut at character int(n * (1 - fraction)) of the
    concatenated rows (nanoGPT's cut), moved on to the word's end when it falls inside a
    word (a word tokenizer would learn its halves); the row at the cut is split."""
    lengths = np.array([len(_row_text(text, strip=False))
                        for batch in dataset.iter(batch_size=10_000) for text in batch[column]])
    ends = np.cumsum(lengths)
    if not len(ends) or ends[-1] == 0:
        raise NlpseqError("The train split holds no text: every row is empty")
    cut = int(int(ends[-1]) * (1 - fraction))
    row = int(np.searchsorted(ends, cut, side="right"))  # the row holding character `cut`
    offset = cut - int(ends[row] - lengths[row])
    text = _row_text(dataset[row][column], strip=False)
    if 0 < offset < len(text) and text[offset - 1].isalnum() and text[offset].isalnum():
        word_end = re.compile(r"\W").search(text, offset)  # the cut splits a word: after it
        if word_end is not None or row + 1 < len(ends):  # (unless the tail would be empty)
            offset = len(text) if word_end is None else word_end.start()
    parts = dataset.map(_cut_row, batched=True, with_indices=True,
                        remove_columns=dataset.column_names,
                        fn_kwargs={"column": column, "row": row, "offset": offset})
    return parts.select(range(row + 1)), parts.select(range(row + 1, len(parts)))


def _cut_row(batch, indices, column, row, offset):
    texts = []
    for i, text in zip(indices, batch[column], strict=True):
        text = _row_text(text, strip=False)
        texts += [text[:offset], text[offset:]] if i == row else [text]
    return {column: texts}


def _encode_rows(batch, indices, tokenizer, column, strip, drop_empty, add_eos, max_length):
    kept = [(i, _row_text(text, strip)) for i, text in zip(indices, batch[column], strict=True)]
    if drop_empty:
        kept = [(i, text) for i, text in kept if text.strip()]
    ids = tokenizer.encode_batch([text for _, text in kept], add_eos=add_eos)
    cut = [bool(max_length) and len(seq) > max_length for seq in ids]
    if max_length:
        ids = [seq[:max_length] for seq in ids]
    return {"ids": ids, "index": [i for i, _ in kept], "cut": cut}
