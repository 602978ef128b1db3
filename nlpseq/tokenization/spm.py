"""Unigram and BPE subword vocabularies trained with `sentencepiece` (Kudo & Richardson 2018).

Unigram language-model segmentation: Kudo 2018. Training runs in memory: sentences come
from a Python iterator and the model proto goes to a BytesIO, so no temporary files.
"""

from __future__ import annotations

import base64
import binascii
import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import sentencepiece

from nlpseq.checks import is_number
from nlpseq.errors import NlpseqError
from nlpseq.tokenization.base import (
    BOS,
    BOS_ID,
    CONTROL_IDS,
    EOS,
    EOS_ID,
    PAD,
    PAD_ID,
    STATE_FORMAT,
    UNK,
    UNK_ID,
    Tokenizer,
    check_choice,
    check_training_texts,
    check_vocab_size,
)

MODEL_TYPES = ("unigram", "bpe")
NORMALIZATIONS = ("none", "nfkc")
# sentencepiece's NFKC variant also turns tabs, newlines and other spaces into " ", which
# its default whitespace handling then collapses, like the `tokenizers` word models do.
_RULES = {"none": "identity", "nfkc": "nmt_nfkc"}


class SentencePieceTokenizer(Tokenizer):
    """A `sentencepiece` model behind the nlpseq Tokenizer interface.

    Lowercasing is done in Python before encoding (sentencepiece has no plain lowercase
    rule), so the flag travels in the state next to the base64 model proto.
    """

    backend = "sentencepiece"
    file_name = "tokenizer.model"

    def __init__(self, model_proto: bytes, kind: str, lowercase: bool) -> None:
        super().__init__(check_choice("tokenizer kind", kind, ("sp_unigram", "sp_bpe")))
        self.lowercase = lowercase
        self._proto = model_proto
        try:
            self._sp = sentencepiece.SentencePieceProcessor(model_proto=model_proto)
        except RuntimeError as err:
            raise NlpseqError(f"Tokenizer payload is not a sentencepiece model: {err}") from err
        self._check_special_ids(f"a {kind!r} sentencepiece model")

    @property
    def vocab_size(self) -> int:
        return self._sp.get_piece_size()

    def _encode_plain(self, texts: list[str]) -> list[list[int]]:
        if self.lowercase:
            texts = [text.lower() for text in texts]
        return self._sp.encode(texts, out_type=int)

    def _decode_plain(self, ids: list[int]) -> str:
        # sentencepiece decodes <pad>/<bos>/<eos> to nothing; show them like tokenizers does.
        if CONTROL_IDS.isdisjoint(ids):
            return self._sp.decode(ids)
        parts, run = [], []
        for i in ids:
            if i in CONTROL_IDS:
                parts += [self._sp.decode(run), self._sp.id_to_piece(i)]
                run = []
            else:
                run.append(i)
        return "".join(parts + [self._sp.decode(run)])

    def id_to_token(self, i: int) -> str:
        if not 0 <= i < self.vocab_size:
            raise IndexError(f"Token id {i} is outside the vocabulary of size {self.vocab_size}")
        return self._sp.id_to_piece(i)

    def token_to_id(self, token: str) -> int | None:
        i = self._sp.piece_to_id(token)
        return None if i == UNK_ID and token != UNK else i

    def to_state(self) -> dict[str, str]:
        return {
            "format": STATE_FORMAT,
            "backend": self.backend,
            "kind": self.kind,
            "lowercase": "true" if self.lowercase else "false",
            "payload": base64.b64encode(self._proto).decode("ascii"),
        }

    @classmethod
    def from_state(cls, state: dict[str, str]) -> SentencePieceTokenizer:
        lowercase = state.get("lowercase")
        if lowercase not in ("true", "false"):
            raise NlpseqError(
                f"Tokenizer state has lowercase {lowercase!r}; expected 'true' or 'false'"
            )
        try:
            proto = base64.b64decode(state["payload"], validate=True)
        except (binascii.Error, ValueError) as err:
            raise NlpseqError(f"Tokenizer payload is not base64: {err}") from err
        return cls(proto, state["kind"], lowercase == "true")

    @staticmethod
    def _write_payload(payload: str, path: Path) -> None:
        path.write_bytes(base64.b64decode(payload))

    @staticmethod
    def _read_payload(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode("ascii")


def train_sentencepiece(
    texts: Iterable[str],
    *,
    model_type: Literal["unigram", "bpe"] = "unigram",
    vocab_size: int = 8000,
    character_coverage: float = 1.0,
    lowercase: bool = False,
    normalization: Literal["none", "nfkc"] = "nfkc",
) -> SentencePieceTokenizer:
    """Learn a sentencepiece model of about `vocab_size` pieces (specials included).

    `hard_vocab_limit=False` lets a small corpus end with fewer pieces instead of failing.
    Whitespace runs are collapsed, so `decode(encode(t))` gives `t` with single spaces.

    Args:
        texts: training sentences, e.g. a generator over the training split.
        model_type: "unigram" or "bpe".
        vocab_size: target number of pieces, the 4 special tokens included.
        character_coverage: share of characters (by count) that get their own piece; the
            rarest rest encode as `<unk>`. 1.0 keeps every character seen.
        lowercase: lowercase text before training and before every encode.
        normalization: "nfkc" (sentencepiece's nmt_nfkc) or "none".
    """
    check_choice("sentencepiece model_type", model_type, MODEL_TYPES)
    check_vocab_size(vocab_size)
    check_choice("normalization", normalization, NORMALIZATIONS)
    if not (is_number(character_coverage) and 0.0 < character_coverage <= 1.0):
        raise NlpseqError(
            f"character_coverage must be a number in (0, 1], got {character_coverage!r}"
        )
    texts = check_training_texts(texts)
    if lowercase:
        texts = (text.lower() for text in texts)
    # sentencepiece turns an exception raised by the iterator into an opaque RuntimeError,
    # so a bad text ends the iteration here and its NlpseqError is raised after training.
    bad_text: list[NlpseqError] = []

    def sentences() -> Iterator[str]:
        try:
            yield from texts
        except NlpseqError as err:
            bad_text.append(err)

    proto = io.BytesIO()
    try:
        sentencepiece.SentencePieceTrainer.train(
            sentence_iterator=sentences(),
            model_writer=proto,
            model_type=model_type,
            vocab_size=vocab_size,
            character_coverage=float(character_coverage),
            normalization_rule_name=_RULES[normalization],
            hard_vocab_limit=False,
            pad_id=PAD_ID,
            unk_id=UNK_ID,
            bos_id=BOS_ID,
            eos_id=EOS_ID,
            pad_piece=PAD,
            unk_piece=UNK,
            bos_piece=BOS,
            eos_piece=EOS,
            unk_surface=UNK,  # decode shows "<unk>" like the tokenizers backend
            minloglevel=2,  # errors only; training chatter would flood every run's log
        )
    except RuntimeError as err:  # e.g. vocab_size smaller than the characters to cover
        if bad_text:
            raise bad_text[0] from None
        message = str(err).split("] ")[-1]  # drop sentencepiece's source-location prefix
        raise NlpseqError(
            f"sentencepiece training failed (model_type={model_type!r}, "
            f"vocab_size={vocab_size}): {message}"
        ) from err
    if bad_text:
        raise bad_text[0]
    return SentencePieceTokenizer(proto.getvalue(), f"sp_{model_type}", lowercase)
