"""What the task DataModules share. ``SplitDataModule`` builds every loader: length-bucketed
batches of the examples a subclass serves (hooks ``examples``, ``lengths``, ``collate``),
each DDP process's share of a training batch and a training position that survives a
checkpoint. ``TextDataModule`` adds where the raw splits come from (files, a named
dataset, or any dataset with ``data=hub``), which splits evaluating one split needs, and
tokenizing a split once (cached by ``datasets``)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import datasets
import pytorch_lightning as pl
from torch.utils.data import DataLoader

from nlpseq.data.batching import BucketBatchSampler, seeded_loader
from nlpseq.data.resumable import ResumableLoader, checked_position
from nlpseq.data.sample import SAMPLE_DIR
from nlpseq.data.sources import (
    Rows,
    column_values,
    load_dataset_splits,
    load_splits,
    local_copy_dir,
)
from nlpseq.errors import NlpseqError

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def check_columns(split: str, dataset, columns: dict[str, str], where: str = "") -> None:
    """Refuse a split that lacks a column an option names (``columns``: option -> column),
    listing the columns it has; ``where`` says where the split comes from."""
    for option, column in columns.items():
        if column not in dataset.column_names:
            raise NlpseqError(
                f"The {split} split{f' ({where})' if where else ''} has no column '{column}' "
                f"(data.{option}); columns found: {', '.join(dataset.column_names)}")


class SplitDataModule(pl.LightningDataModule):
    """Train, validation and test loaders over the splits a subclass serves with the hooks
    ``examples``, ``lengths`` and ``collate``, and this process's share of each training
    batch: ``batch_size`` examples (the most, with a ``max_tokens`` budget) to train,
    ``eval_batch_size`` to evaluate."""

    uses_tokenizer = True  # False: the data are tensors already (the generated probes)
    label_names: list[str] | None = None  # the classes, for the tasks that have them

    def __init__(self, *, name: str, batch_size: int, eval_batch_size: int,
                 num_workers: int, seed: int, pool_batches: int = 100,
                 max_tokens: int | None = None) -> None:
        super().__init__()
        self.name, self.num_workers, self.seed = name, num_workers, seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.pool_batches, self.max_tokens = pool_batches, max_tokens
        self.test_is_validation = False
        self.rank, self.replicas = 0, 1  # DDP: this process's share of each training batch
        self.pin_memory = False  # set by setup: True when a Trainer runs on a CUDA GPU
        self.train_loader: ResumableLoader | None = None  # the last one built
        self._resumed_position: dict | None = None  # for the next training loader built

    @classmethod
    def eval_batch_key(cls, data_cfg) -> str:
        """The data key that sizes an evaluation batch (``nlpseq-eval batch_size=N``)."""
        return "eval_batch_size"

    def setup(self, stage: str | None = None) -> None:
        """Under DDP each process trains on its share of every batch (see
        ``BucketBatchSampler``); evaluation loaders give every process all the data."""
        if self.trainer is not None:
            self.rank, self.replicas = self.trainer.global_rank, self.trainer.world_size
            self.pin_memory = self.trainer.strategy.root_device.type == "cuda"

    # ----------------------------------------------------------- subclass hooks
    def examples(self, split: str) -> Sequence:
        """The items a loader of ``split`` indexes (its sampler gives their positions)."""
        raise NotImplementedError

    def lengths(self, split: str) -> list[int]:
        """The length of each of ``examples(split)``: batches hold similar lengths."""
        raise NotImplementedError

    def collate(self, split: str) -> Callable[[list], dict]:
        """Turns a list of ``split``'s examples into one batch dict."""
        raise NotImplementedError

    @staticmethod
    def loaded(splits: dict, split: str):
        """``splits[split]``, or an error saying the split was never loaded."""
        if split not in splits:
            raise NlpseqError(f"No {split} split is loaded")
        return splits[split]

    # ---------------------------------------------------------------- dataloaders
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        """Bucketed batches of ``split``: shuffled and shared out under DDP in training,
        sorted by length and whole in every process for evaluation."""
        sampler = BucketBatchSampler(
            self.lengths(split), self.batch_size if shuffle else self.eval_batch_size,
            shuffle=shuffle, pool_batches=self.pool_batches, seed=self.seed,
            max_tokens=self.max_tokens if shuffle else None,
            rank=self.rank if shuffle else 0, replicas=self.replicas if shuffle else 1,
        )
        return self.loader(self.examples(split), batch_sampler=sampler,
                           collate_fn=self.collate(split))

    def loader(self, dataset, **options) -> DataLoader:
        """A ``seeded_loader`` with this module's seed and workers. On a CUDA GPU its
        batches come in page-locked memory: copying them to the GPU then joins the GPU's
        queue instead of holding the CPU until the previous step's work is done."""
        return seeded_loader(dataset, self.seed, num_workers=self.num_workers,
                             pin_memory=self.pin_memory, **options)

    def train_dataloader(self) -> DataLoader:
        """The training loader, going on from a position restored from a checkpoint."""
        self.train_loader = self._loader("train", shuffle=True)
        if self._resumed_position is not None:
            self.train_loader.load_state_dict(self._resumed_position)
            self._resumed_position = None
        return self.train_loader

    def state_dict(self) -> dict:
        """What Lightning saves of this module in a checkpoint: where the training loader
        stands in its epoch (see ``nlpseq.data.resumable``)."""
        if self.train_loader is None:
            return {}
        return {"train_loader": self.train_loader.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Resume the training loader's epoch: the one built already, or the next one."""
        if isinstance(state, dict) and "train_loader" not in state:  # no loader was built
            return
        position = checked_position(state.get("train_loader") if isinstance(state, dict)
                                    else state)
        if self.train_loader is not None:
            self.train_loader.load_state_dict(position)
        else:
            self._resumed_position = position

    def val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def split_loader(self, split: str) -> DataLoader:
        """An evaluation loader (no shuffling) over any loaded split."""
        return self._loader(split, shuffle=False)


class TextDataModule(SplitDataModule):
    """Base of the sentiment, language-model and translation DataModules: keeps the options
    they share (documented there). Subclasses implement ``load(splits)`` and
    ``encode_split(split, tokenizer)``; ``encoded[split]`` holds the examples loaders
    batch.

    With ``path`` set (``data=hub``) the raw splits come from that dataset, a hub id or a
    local folder, and ``name`` is its configuration (``datasets.load_dataset(path,
    name)``); ``splits`` maps a split to the dataset's split it reads (``{validation:
    dev}``; a split left out reads the split of its own name, if there is one)."""

    encoding_version = 0  # each subclass's own, part of its cache key: bump on a change
    sample_files: dict[str, str] = {}  # split -> this task's file of the embedded sample

    def __init__(self, *, name: str | None, files: dict[str, str | None], hub_id: str | None,
                 hub_config: str | None, hub_splits: dict[str, str] | None,
                 path: str | None, splits: dict[str, str | None] | None,
                 validation_fraction: float, max_length: int | None,
                 batch_size: int, eval_batch_size: int, pool_batches: int, num_workers: int,
                 seed: int, max_tokens: int | None = None) -> None:
        super().__init__(name=name, batch_size=batch_size, eval_batch_size=eval_batch_size,
                         num_workers=num_workers, seed=seed, pool_batches=pool_batches,
                         max_tokens=max_tokens)
        if not 0.0 < validation_fraction < 1.0:
            raise NlpseqError(
                f"data.validation_fraction must be in (0, 1), got {validation_fraction}")
        if max_length is not None and max_length < 1:
            raise NlpseqError(f"data.max_length must be >= 1 or null, got {max_length}")
        if path is None and name == "sample":  # the embedded sample: this task's files of it
            files, hub_id = {split: self.sample_files.get(split) for split in files}, None
        self.files, self.hub_id, self.hub_config = files, hub_id, hub_config
        self.hub_splits = dict(hub_splits or {})  # split -> the hub split it reads
        self.path, self.splits = path, dict(splits or {})  # data=hub: the dataset, its splits
        unknown = sorted(set(self.splits) - set(SPLITS))
        if unknown:
            raise NlpseqError(f"data.splits maps '{unknown[0]}', which is not a split; map "
                              f"{', '.join(SPLITS)} to the dataset's split names")
        self.validation_fraction, self.max_length = validation_fraction, max_length
        self.raw: dict = {}  # split -> datasets.Dataset of raw rows
        self.encoded: dict[str, list[dict]] = {}
        self.pad_id, self.bos_id, self.eos_id = 0, 2, 3  # set by encode from the tokenizer

    # ----------------------------------------------------------------- raw splits
    def load(self, splits: tuple[str, ...] = SPLITS) -> None:
        raise NotImplementedError

    def files_to_read(self, splits: tuple[str, ...], train_hint: str) -> dict:
        """The file of each split in ``splits``; with no training file and no hub dataset
        to fall back on, an error that says what to set (``train_hint``)."""
        if ("train" in splits and not self.files["train"] and self.hub_id is None
                and self.path is None):
            raise NlpseqError(f"No training data: set data.train_file={train_hint}")
        return {split: self.files[split] for split in splits}

    def read_splits(self, files: dict, keep_linebreaks: bool = False,
                    required: dict[str, str] | None = None) -> dict[str, Rows]:
        """The raw splits of ``files``: from ``data.path`` (every split in ``files``, as
        ``data.splits`` maps them), or from this dataset's folder, or from the hub when it
        has no local copy (``nlpseq.data.sources``). ``keep_linebreaks`` and ``required``:
        see ``sources.load_file``."""
        if self.path is not None:
            return load_dataset_splits(self.path, self.name, tuple(files), self.splits,
                                       required=required)
        return load_splits(files, name=self.name, base_dir=self.base_dir(), hub_id=self.hub_id,
                           hub_config=self.hub_config, hub_splits=self.hub_splits,
                           keep_linebreaks=keep_linebreaks, required=required)

    def fill_missing_splits(self, raw: dict, splits: tuple[str, ...]) -> dict:
        """No validation split: hold part of train out (``hold_out``). No test split: test
        on validation, and say so."""
        if "train" in splits and "validation" in splits and "validation" not in raw:
            raw["train"], raw["validation"] = self.hold_out(raw["train"])
        if "test" in splits and "test" not in raw and "validation" in raw:
            log.info("No test split: test metrics are computed on the validation split")
            raw["test"] = raw["validation"]
            self.test_is_validation = True
        return raw

    def hold_out(self, train):
        """(train, validation): a seeded random ``validation_fraction`` of the rows."""
        log.info("No validation split: holding out %.0f%% of the training rows (seed %d)",
                 100 * self.validation_fraction, self.seed)
        parts = train.train_test_split(test_size=self.validation_fraction, seed=self.seed)
        return parts["train"], parts["test"]

    def base_dir(self) -> Path | None:
        """Where relative file names point: the embedded sample, ``$NLPSEQ_DATA_DIR/<name>``
        for a named dataset, or nowhere (``files`` and ``data=hub``: paths as given)."""
        if self.path is not None or self.name in (None, "files"):
            return None
        if self.name == "sample":
            return SAMPLE_DIR
        return local_copy_dir(self.name)

    def load_for_evaluation(self, split: str) -> None:
        """Load what evaluating ``split`` needs: the split's own file if it has one, else
        the splits it falls back to (test -> validation -> a held-out part of train).
        With ``data.path``: the dataset's split if it has one, else the same fallbacks."""
        from_dataset = self.path is not None  # which splits it has is known once read
        attempts = [(split,)] if self.files[split] or from_dataset else []
        if split == "test" and (self.files["validation"] or from_dataset):
            attempts.append(("validation", "test"))
        for needed in [*attempts, SPLITS]:
            self.load(needed)
            if split in self.raw:
                break
        if split not in self.raw:
            raise NlpseqError(f"The data config has no {split} split (data.{split}_file)")

    # ------------------------------------------------------------------- encoding
    def encode(self, tokenizer, splits: tuple[str, ...] | None = None) -> None:
        """Tokenize the loaded splits (all, or ``splits``) once the tokenizer is trained;
        the collators pad and frame with its special ids."""
        self.pad_id, self.bos_id, self.eos_id = (tokenizer.pad_id, tokenizer.bos_id,
                                                 tokenizer.eos_id)
        for split in splits or tuple(self.raw):
            self.encode_split(split, tokenizer)

    def encode_split(self, split: str, tokenizer) -> None:
        """Tokenize one raw split into what its loaders batch (``encoded[split]``)."""
        raise NotImplementedError

    def tokenize(self, split: str, function, *, key: tuple, what: str,
                 max_length: int | None, **options) -> datasets.Dataset:
        """The raw ``split`` mapped in batches by ``function(batch, indices, max_length,
        **options)``, cached on disk by ``datasets`` under a hash of the split,
        ``encoding_version`` and ``key`` (what else the result depends on: tokenizer,
        options). Rows it flags ``cut`` (shortened to ``max_length``) are counted in the log."""
        dataset = self.raw[split]
        parts = (self.encoding_version, dataset._fingerprint, *key)
        encoded = dataset.map(
            function, batched=True, with_indices=True, remove_columns=dataset.column_names,
            fn_kwargs={**options, "max_length": max_length}, desc=f"Tokenizing {split}",
            new_fingerprint=hashlib.sha256(repr(parts).encode()).hexdigest()[:32],
        )
        cut = sum(column_values(encoded, "cut"))
        if cut:
            log.info("Cut %d of %d %s %s to data.max_length=%d tokens (data.max_length=null "
                     "keeps them whole)", cut, len(encoded), split, what, max_length)
        return encoded.remove_columns("cut")

    # ---------------------------------------------------------------- dataloaders
    def examples(self, split: str) -> list[dict]:
        return self.loaded(self.encoded, split)
