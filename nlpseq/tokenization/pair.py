"""The two tokenizers of a translation model: one for the source language, one for the
target, or a single joint one that both sides share (``joint=True``).

A pair behaves like one tokenizer where the CLI and checkpoints handle tokenizers: it
saves, fingerprints and travels inside a checkpoint as one state.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path

from nlpseq.errors import NlpseqError
from nlpseq.tokenization.base import Tokenizer

PAIR_FORMAT = "nlpseq.tokenizer-pair/1"


class TokenizerPair:
    """Source and target tokenizers; ``source is target`` when the vocabulary is joint.

    Both have the nlpseq special ids (<pad>=0, <unk>=1, <bos>=2, <eos>=3), so ``pad_id``
    and friends are the same on either side.
    """

    kind = "pair"

    def __init__(self, source: Tokenizer, target: Tokenizer) -> None:
        self.source, self.target = source, target
        self.pad_id, self.unk_id = target.pad_id, target.unk_id
        self.bos_id, self.eos_id = target.bos_id, target.eos_id

    @property
    def joint(self) -> bool:
        return self.source is self.target

    @property
    def vocab_size(self) -> int:
        """The source vocabulary's size (the target's is ``target.vocab_size``)."""
        return self.source.vocab_size

    def to_state(self) -> dict:
        """Both tokenizer states (plain strings inside), safe for weights-only checkpoints."""
        state = {"format": PAIR_FORMAT, "source": self.source.to_state()}
        if not self.joint:
            state["target"] = self.target.to_state()
        return state

    @classmethod
    def from_state(cls, state: dict) -> TokenizerPair:
        from nlpseq.tokenization.base import tokenizer_from_state

        if "source" not in state:
            raise NlpseqError("Tokenizer pair state lacks its 'source' tokenizer")
        source = tokenizer_from_state(state["source"])
        target = tokenizer_from_state(state["target"]) if "target" in state else source
        return cls(source, target)

    def fingerprint(self) -> str:
        blob = json.dumps(self.to_state(), sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def save(self, directory: str | Path) -> Path:
        """A joint tokenizer goes into ``directory`` itself; a separate pair into
        ``directory/source_tokenizer`` and ``directory/target_tokenizer``."""
        directory = Path(directory)
        if self.joint:
            self.source.save(directory)
            return directory
        self.source.save(directory / "source_tokenizer")
        self.target.save(directory / "target_tokenizer")
        return directory

    def __repr__(self) -> str:
        if self.joint:
            return f"TokenizerPair(joint={self.source!r})"
        return f"TokenizerPair(source={self.source!r}, target={self.target!r})"


def train_tokenizer_pair(factory: Callable[[Iterable[str]], Tokenizer],
                         source_texts: Iterable[str], target_texts: Iterable[str],
                         joint: bool = False) -> TokenizerPair:
    """Train a tokenizer per language with ``factory`` (a ``conf/tokenizer`` partial), or
    one on both languages' training text when ``joint``."""
    if joint:
        shared = factory(itertools.chain(source_texts, target_texts))
        return TokenizerPair(shared, shared)
    return TokenizerPair(factory(source_texts), factory(target_texts))
