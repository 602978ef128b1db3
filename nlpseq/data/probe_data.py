"""A LightningDataModule over the synthetic probes of ``nlpseq.data.probes``.

``nlpseq-train task=probe data=adding data.length=200 encoder=gru`` trains any cell on
them with the normal CLI. The splits are generated, not read, so no tokenizer is trained:
inputs are (value, marker) pairs for the adding problem and symbol ids (one-hot in the
model) for the others. Each split has its own seed drawn from ``data_seed``, so the test
set is the same for every cell and every training seed.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor

from nlpseq.data.base import SPLITS, SplitDataModule
from nlpseq.data.probes import ProbeKind, generate
from nlpseq.errors import NlpseqError

log = logging.getLogger(__name__)
SPLIT_OFFSET = {"train": 0, "validation": 1, "test": 2}


class ProbeCollator:
    """Index lists -> a batch dict of one split's tensors (every sequence is ``length``
    long, so nothing is padded)."""

    def __init__(self, inputs: Tensor, targets: Tensor) -> None:
        self.inputs, self.targets = inputs, targets

    def __call__(self, indices: list[int]) -> dict[str, Tensor]:
        index = torch.tensor(indices)
        inputs = self.inputs[index]  # (B, T) or (B, T, 2)
        return {"inputs": inputs, "targets": self.targets[index], "index": index,
                "lengths": torch.full((len(indices),), inputs.shape[1])}


class ProbeDataModule(SplitDataModule):
    """Generated train, validation and test splits of one probe.

    Args:
        name: the config's name (``adding``, ``copy``, ``first_token``), for messages.
        kind: which probe: ``adding`` | ``copy`` | ``first_token``.
        length: time steps per sequence (T); every sequence of a split has this length.
        num_symbols: K, the alphabet of the copy and first-token tasks.
        copy_length: M, the symbols the copy task shows and asks back.
        train_size, validation_size, test_size: sequences per split.
        data_seed: seeds the generators (split s uses ``3 * data_seed + s``).
        batch_size, eval_batch_size: sequences per training and evaluation batch.
        seed: the batch order's seed.
    """

    task_name = "probe"
    uses_tokenizer = False

    def __init__(self, name: str, kind: ProbeKind, *, length: int, num_symbols: int = 8,
                 copy_length: int = 10, train_size: int = 10000, validation_size: int = 1000,
                 test_size: int = 1000, data_seed: int = 0, batch_size: int = 64,
                 eval_batch_size: int = 500, num_workers: int = 0, seed: int = 0) -> None:
        super().__init__(name=name, batch_size=batch_size, eval_batch_size=eval_batch_size,
                         num_workers=num_workers, seed=seed)
        for key, value in (("length", length), ("num_symbols", num_symbols),
                           ("copy_length", copy_length),
                           ("train_size", train_size), ("validation_size", validation_size),
                           ("test_size", test_size), ("batch_size", batch_size),
                           ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise NlpseqError(f"data.{key} must be >= 1; got {value}")
        self.kind, self.length = kind, length
        self.num_symbols, self.copy_length = num_symbols, copy_length
        self.sizes = {"train": train_size, "validation": validation_size, "test": test_size}
        self.data_seed = data_seed
        self.splits: dict[str, tuple[Tensor, Tensor]] = {}  # split -> (inputs, targets)

    def load(self, splits: tuple[str, ...] = SPLITS) -> None:
        for split in splits:
            seed = 3 * self.data_seed + SPLIT_OFFSET[split]
            self.splits[split] = generate(self.kind, self.sizes[split], self.length, seed,
                                          self.num_symbols, self.copy_length)
        log.info("Generated the %s probe, length %d: %s (data_seed %d)", self.kind,
                 self.length, ", ".join(f"{s} {self.sizes[s]}" for s in splits), self.data_seed)

    def load_for_evaluation(self, split: str) -> None:
        self.load((split,))

    def encode(self, tokenizer=None, splits=None) -> None:
        """Nothing to encode: the generators give tensors (kept for the CLI's sequence)."""

    def examples(self, split: str) -> range:
        """The sequences' positions: the collator takes them from the split's tensors."""
        return range(len(self.loaded(self.splits, split)[0]))

    def lengths(self, split: str) -> list[int]:
        return [self.length] * len(self.examples(split))

    def collate(self, split: str) -> ProbeCollator:
        return ProbeCollator(*self.splits[split])
