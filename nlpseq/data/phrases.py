"""Holding out whole sentences from treebank-style data.

Some sentiment datasets list every phrase of every sentence as its own row: GLUE's SST-2
trains on 67,349 rows that are the phrases of 6,885 sentences. A random slice of such rows
is not unseen text: a held-out phrase has its sentence, and that sentence's other
phrases, in train. It reads far above a sentence-level test split and chooses checkpoints
poorly (mostly the last). ``split_whole_sentences`` holds out *whole sentences* (rows no
other row contains) and drops from train every row one of them contains, so the
validation slice is text the model never saw. On data without phrase rows every row is a
whole sentence and the split is a plain random one.

Containment is by whole tokens of the whitespace-split text ("good" is in "a good film",
not in "goods")."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

from nlpseq.errors import NlpseqError


def spans(tokens: Sequence[str]) -> Iterator[str]:
    """Every contiguous run of ``tokens``, the whole included, joined by single spaces."""
    for start in range(len(tokens)):
        for end in range(start + 1, len(tokens) + 1):
            yield " ".join(tokens[start:end])


def words(text: object) -> str:
    """The text's tokens joined by single spaces: what containment compares."""
    return " ".join(str(text).split())


def whole_sentence_rows(texts: Sequence[str]) -> list[int]:
    """Indices of the rows no other row contains (a repeated row: its first), in order."""
    return _whole_rows([words(text) for text in texts])


def _whole_rows(rows: list[str]) -> list[int]:
    """``whole_sentence_rows`` of rows already in ``words`` form.

    Longest rows first: a row's containers are longer, so by the time a row is reached,
    the runs of every whole sentence that could contain it are known. Only whole
    sentences are expanded into their runs (thousands, not the 67k phrase rows)."""
    present = set(rows)
    contained, seen, whole = set(), set(), []
    for i in sorted(range(len(rows)), key=lambda i: -rows[i].count(" ")):
        text = rows[i]
        if not text or text in contained or text in seen:
            continue
        seen.add(text)
        whole.append(i)
        contained.update(run for run in spans(text.split()) if run in present and run != text)
    return sorted(whole)


def split_whole_sentences(texts: Sequence[str], fraction: float,
                          seed: int) -> tuple[list[int], list[int], int]:
    """(train rows, validation rows, whole sentences): a seeded ``fraction`` of the whole
    sentences is the validation slice; train is every row none of them contains."""
    rows = [words(text) for text in texts]
    whole = _whole_rows(rows)
    if len(whole) < 2:
        raise NlpseqError(f"data.holdout=sentences: the training data has {len(whole)} whole "
                          "sentence(s) (rows no other row contains); it needs at least 2")
    random.Random(seed).shuffle(whole)
    held_out = sorted(whole[:max(1, round(fraction * len(whole)))])
    unseen = {run for i in held_out for run in spans(rows[i].split())}
    train = [i for i, row in enumerate(rows) if row not in unseen]
    return train, held_out, len(whole)
