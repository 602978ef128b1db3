"""Length-bucketed batches and padding to the batch maximum.

Sorting examples of similar length into the same batch keeps padding small (see
``padding_efficiency``); shuffling the order of the batches every epoch, and the
examples inside each pool of buckets, keeps training stochastic.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from nlpseq.data.resumable import ResumableLoader, ResumableOrder
from nlpseq.errors import NlpseqError


class BucketBatchSampler(ResumableOrder, Sampler[list[int]]):
    """Yield lists of example indices whose lengths are close.

    With ``shuffle`` the examples are shuffled, cut into pools of
    ``batch_size * pool_batches`` examples, each pool sorted by length and cut into
    batches, and the batches shuffled; the permutation depends on ``seed`` and the
    epoch (Lightning calls ``set_epoch``). Without ``shuffle`` (evaluation) the whole
    set is sorted by length, deterministically.

    With ``max_tokens`` a batch is cut by a token budget instead: as many examples as fit
    ``examples * longest length <= max_tokens`` (at least one, at most ``batch_size``),
    so batches of short sentences hold more of them.

    Under DDP (``replicas`` processes), process ``rank`` takes every ``replicas``-th example
    of each batch: all processes step through the same batches, each with its share, so
    averaged gradients equal those of the whole batch in one process.

    A resumed epoch leaves out the batches trained on before it stopped (``skip``, see
    ``ResumableOrder``).
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        pool_batches: int = 100,
        seed: int = 0,
        drop_last: bool = False,
        max_tokens: int | None = None,
        rank: int = 0,
        replicas: int = 1,
    ) -> None:
        if batch_size < 1:
            raise NlpseqError(f"batch_size must be >= 1, got {batch_size}")
        if max_tokens is not None and max_tokens < 1:
            raise NlpseqError(f"max_tokens must be >= 1 or null, got {max_tokens}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.pool_size = batch_size * max(1, pool_batches)
        self.seed = seed
        self.drop_last = drop_last
        self.max_tokens = max_tokens
        self.pool_size = max(self.pool_size, 100 * (max_tokens or 0) // max(1, _median(lengths)))
        self.epoch = 0
        self.rank, self.replicas = rank, replicas

    @property
    def sampler(self) -> BucketBatchSampler:
        """Itself. At the start of every training epoch (a resumed one too) Lightning calls
        ``set_epoch`` on ``loader.sampler`` and on ``loader.batch_sampler.sampler`` (where
        torch's ``BatchSampler`` keeps the sampler it groups), never on the batch sampler
        itself; this one cuts its own batches, so it is found there."""
        return self

    def batches(self) -> list[list[int]]:
        """The batches of the current epoch, as lists of indices."""
        if not self.shuffle:
            order = np.argsort(self.lengths, kind="stable")
            return self._cut(order)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(len(self.lengths))
        batches = []
        for start in range(0, len(order), self.pool_size):
            pool = order[start:start + self.pool_size]
            pool = pool[np.argsort(self.lengths[pool], kind="stable")]
            batches.extend(self._cut(pool))
        rng.shuffle(batches)
        return batches

    def _cut(self, order: np.ndarray) -> list[list[int]]:
        if self.max_tokens is not None:
            return self._cut_by_tokens(order)
        batches = [order[i:i + self.batch_size].tolist()
                   for i in range(0, len(order), self.batch_size)]
        if self.drop_last and batches and len(batches[-1]) < self.batch_size:
            batches.pop()
        return batches

    def _cut_by_tokens(self, order: np.ndarray) -> list[list[int]]:
        batches, current, longest = [], [], 0
        for index in order.tolist():
            length = int(self.lengths[index])
            grown = max(longest, length)
            if current and (grown * (len(current) + 1) > self.max_tokens
                            or len(current) == self.batch_size):
                batches.append(current)
                current, grown = [], length
            current.append(index)
            longest = grown
        if current:
            batches.append(current)
        return batches

    def items(self) -> Iterator[list[int]]:
        for batch in self.batches():
            # a batch smaller than the process count gives the short ranks its last example
            yield batch[self.rank::self.replicas] or batch[-1:]

    def __len__(self) -> int:
        if self.max_tokens is not None:
            return len(self.batches())
        full, rest = divmod(len(self.lengths), self.batch_size)
        return full + (1 if rest and not self.drop_last else 0)


def _median(lengths: Sequence[int]) -> int:
    return int(np.median(lengths)) if len(lengths) else 1


def padding_efficiency(lengths: Sequence[int], batches: list[list[int]]) -> float:
    """Real tokens divided by all tokens (real + padding) over ``batches``."""
    lengths = np.asarray(lengths)
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches)
    return real / padded if padded else 1.0


class PadCollator:
    """Turn examples ``{"input_ids": [...], "label_id": int, "index": int}`` into tensors.

    Returns a dict with ``tokens`` (B, T) padded with ``pad_id`` to the batch maximum,
    ``lengths`` (B,), ``index`` (B,) the examples' positions in their split, and
    ``labels`` (B,) when the examples carry labels.
    """

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        lengths = torch.tensor([len(e["input_ids"]) for e in examples], dtype=torch.long)
        tokens = torch.full((len(examples), int(lengths.max())), self.pad_id, dtype=torch.long)
        for row, example in enumerate(examples):  # (B, T)
            tokens[row, : lengths[row]] = torch.as_tensor(example["input_ids"], dtype=torch.long)
        batch = {
            "tokens": tokens,
            "lengths": lengths,
            "index": torch.tensor([e["index"] for e in examples], dtype=torch.long),
        }
        if "label_id" in examples[0]:
            batch["labels"] = torch.tensor([e["label_id"] for e in examples], dtype=torch.long)
        return batch


def seeded_loader(dataset, seed: int, **options) -> DataLoader:
    """A ``ResumableLoader`` with a random generator of its own. Each new iterator (every
    epoch, every validation) draws a worker seed; drawn from the global generator, that draw
    would shift the model's dropout masks by when loaders happen to be created — and a
    resumed run creates them at other times than one that never stopped."""
    return ResumableLoader(dataset, generator=torch.Generator().manual_seed(seed), **options)
