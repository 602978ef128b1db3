"""What the task DataModules share: the four loaders Lightning asks for and each DDP
process's share (``SplitDataModule``: each module builds its own ``_loader(split,
shuffle)``), and for the text tasks where a named dataset lives and which splits
evaluating one split needs (``TextDataModule``)."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytorch_lightning as pl
from torch.utils.data import DataLoader

from nlpseq.data.batching import seeded_loader
from nlpseq.data.resumable import ResumableLoader, checked_position
from nlpseq.data.sample import SAMPLE_DIR
from nlpseq.data.sources import column_values, local_copy_dir
from nlpseq.errors import NlpseqError

log = logging.getLogger(__name__)
SPLITS = ("train", "validation", "test")


def cache_fingerprint(*parts) -> str:
    """A short stable hash of everything an encoding depends on (the ``datasets`` cache key)."""
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


def report_cut(encoded, split: str, what: str, max_length: int | None):
    """Say how many rows of an encoded split ``data.max_length`` shortened (their ``cut``
    flags; nothing if none) and return the split without the flags."""
    cut = sum(column_values(encoded, "cut"))
    if cut:
        log.info("Cut %d of %d %s %s to data.max_length=%d tokens (data.max_length=null keeps "
                 "them whole)", cut, len(encoded), split, what, max_length)
    return encoded.remove_columns("cut")


class SplitDataModule(pl.LightningDataModule):
    """Train, validation and test loaders over splits a subclass serves with
    ``_loader(split, shuffle)``, and this process's share of each training batch."""

    uses_tokenizer = True  # False: the data are tensors already (the generated probes)

    def __init__(self) -> None:
        super().__init__()
        self.test_is_validation = False
        self.rank, self.replicas = 0, 1  # DDP: this process's share of each training batch
        self.pin_memory = False  # set by setup: True when a Trainer runs on a CUDA GPU
        self.train_loader: ResumableLoader | None = None  # the last one built
        self._resumed_position: dict | None = None  # for the next training loader built

    def setup(self, stage: str | None = None) -> None:
        """Under DDP each process trains on its share of every batch (see
        ``BucketBatchSampler``); evaluation loaders give every process all the data."""
        if self.trainer is not None:
            self.rank, self.replicas = self.trainer.global_rank, self.trainer.world_size
            self.pin_memory = self.trainer.strategy.root_device.type == "cuda"

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        raise NotImplementedError

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
    ``_loader(split, shuffle)``."""

    def __init__(self, name: str, files: dict[str, str | None], hub_id: str | None,
                 hub_config: str | None, text_column: str, validation_fraction: float,
                 max_length: int | None, batch_size: int, eval_batch_size: int,
                 pool_batches: int, num_workers: int, seed: int) -> None:
        super().__init__()
        if not 0.0 < validation_fraction < 1.0:
            raise NlpseqError(
                f"data.validation_fraction must be in (0, 1), got {validation_fraction}")
        if max_length is not None and max_length < 1:
            raise NlpseqError(f"data.max_length must be >= 1 or null, got {max_length}")
        self.name, self.files = name, files
        self.hub_id, self.hub_config = hub_id, hub_config
        self.text_column = text_column
        self.validation_fraction, self.max_length = validation_fraction, max_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.pool_batches, self.num_workers, self.seed = pool_batches, num_workers, seed
        self.raw: dict = {}  # split -> datasets.Dataset of raw rows
        self.encoded: dict[str, list[dict]] = {}
        self.pad_id = 0

    def load(self, splits: tuple[str, ...] = SPLITS) -> None:
        raise NotImplementedError

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
        for a named dataset, or nowhere (``files``: paths as given)."""
        if self.name == "sample":
            return SAMPLE_DIR
        if self.name == "files":
            return None
        return local_copy_dir(self.name)

    def load_for_evaluation(self, split: str) -> None:
        """Load what evaluating ``split`` needs: the split's own file if it has one, else
        the splits it falls back to (test -> validation -> a held-out part of train)."""
        if self.files[split]:
            self.load((split,))
        elif split == "test" and self.files["validation"]:
            self.load(("validation", "test"))
        else:
            self.load(SPLITS)
        if split not in self.raw:
            raise NlpseqError(f"The data config has no {split} split (data.{split}_file)")
