"""Synthetic long-range probes: tasks whose answer sits a known number of steps back.

- adding problem (Hochreiter & Schmidhuber 1997): a sequence of (value, marker) pairs,
  values uniform in [0, 1), two markers, one in each half; the target is the sum of the two
  marked values. Always answering 1 (the mean) scores MSE 1/6, the variance of the sum.
- copy (memory) task (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): M symbols, a
  long run of blanks, a delimiter, then M more steps in which the M symbols must be
  reproduced in order. Guessing scores accuracy 1/K.
- first-token classification: K-ary symbols; the label is the first symbol, so the whole
  sequence after it is noise the cell must carry its memory through. Guessing: 1/K.

Every generator is a pure function of ``(n, length, seed, ...)``: the same seed gives the
same tensors on every machine. Symbols are 1..K; 0 is the blank, K + 1 the delimiter.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from nlpseq.errors import NlpseqError

ProbeKind = Literal["adding", "copy", "first_token"]
PROBES = ("adding", "copy", "first_token")


def adding_problem(n: int, length: int, seed: int) -> tuple[Tensor, Tensor]:
    """``n`` sequences of ``length`` (value, marker) pairs and the sums of the marked values.

    Returns:
        inputs (n, T, 2) float: column 0 the values, column 1 the markers (exactly two 1s,
        one in [0, T/2) and one in [T/2, T)); targets (n,) float.
    """
    if length < 2:
        raise NlpseqError(f"the adding problem needs data.length >= 2; got {length}")
    generator = torch.Generator().manual_seed(seed)
    values = torch.rand(n, length, generator=generator)  # (n, T)
    half = length // 2
    first = torch.randint(0, half, (n,), generator=generator)  # (n,)
    second = torch.randint(half, length, (n,), generator=generator)  # (n,)
    markers = torch.zeros(n, length)
    rows = torch.arange(n)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]  # (n,)
    return torch.stack([values, markers], dim=-1), targets


def copy_task(n: int, length: int, seed: int, num_symbols: int = 8,
              copy_length: int = 10) -> tuple[Tensor, Tensor]:
    """``n`` copy-task sequences of total ``length``: ``copy_length`` symbols, blanks, a
    delimiter at step ``length - copy_length - 1``, then ``copy_length`` blank steps during
    which the symbols are to be recalled.

    Returns:
        inputs (n, T) int64 in 0..K+1; targets (n, M) int64 in 1..K, the symbols to recall
        at the last M steps.
    """
    if length < 2 * copy_length + 1:
        raise NlpseqError(f"the copy task needs data.length >= 2 * data.copy_length + 1 = "
                          f"{2 * copy_length + 1}; got {length}")
    generator = torch.Generator().manual_seed(seed)
    symbols = torch.randint(1, num_symbols + 1, (n, copy_length), generator=generator)
    inputs = torch.zeros(n, length, dtype=torch.long)
    inputs[:, :copy_length] = symbols
    inputs[:, length - copy_length - 1] = num_symbols + 1  # the delimiter
    return inputs, symbols


def first_token_task(n: int, length: int, seed: int,
                     num_symbols: int = 4) -> tuple[Tensor, Tensor]:
    """``n`` sequences of ``length`` random symbols; the label is the first one.

    Returns:
        inputs (n, T) int64 in 1..K; targets (n,) int64 in 1..K.
    """
    if length < 1:
        raise NlpseqError(f"first_token needs data.length >= 1; got {length}")
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randint(1, num_symbols + 1, (n, length), generator=generator)
    return inputs, inputs[:, 0].clone()


def generate(kind: ProbeKind, n: int, length: int, seed: int, num_symbols: int,
             copy_length: int) -> tuple[Tensor, Tensor]:
    """One split of the probe ``kind``."""
    if kind == "adding":
        return adding_problem(n, length, seed)
    if kind == "copy":
        return copy_task(n, length, seed, num_symbols, copy_length)
    if kind == "first_token":
        return first_token_task(n, length, seed, num_symbols)
    raise NlpseqError(f"Unknown probe {kind!r}; choose one of {', '.join(map(repr, PROBES))}")


def input_size(kind: ProbeKind, num_symbols: int) -> int:
    """Features per step the encoder reads: (value, marker), or a one-hot symbol (blank,
    K symbols and, for copy, the delimiter)."""
    return {"adding": 2, "copy": num_symbols + 2, "first_token": num_symbols + 1}[kind]


def chance_level(kind: ProbeKind, num_symbols: int) -> float:
    """What a model that learnt nothing from the sequence scores: the adding problem's MSE
    of always answering 1 (1/6), else the accuracy of guessing (1/K)."""
    return 1 / 6 if kind == "adding" else 1 / num_symbols
