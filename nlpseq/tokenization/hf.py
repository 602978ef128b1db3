"""Word, BPE, WordPiece and character vocabularies trained with the `tokenizers` package.

BPE: Sennrich et al. 2016; WordPiece: Schuster & Nakajima 2012 / Wu et al. 2016.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
from tokenizers import Tokenizer as HfTokenizer

from nlpseq.checks import is_int
from nlpseq.errors import NlpseqError
from nlpseq.tokenization.base import (
    SPECIAL_TOKENS,
    STATE_FORMAT,
    UNK,
    Tokenizer,
    check_choice,
    check_training_texts,
    check_vocab_size,
)

MODELS = ("word", "bpe", "wordpiece", "char")
NORMALIZATIONS = ("none", "nfkc", "nfc")
_END_OF_WORD = "</w>"  # BPE suffix; its decoder turns it back into the space between words
_SUBWORD_PREFIX = "##"  # WordPiece prefix of a piece that continues a word


class TokenizersTokenizer(Tokenizer):
    """A `tokenizers.Tokenizer` behind the nlpseq Tokenizer interface.

    Normalization, lowercasing, splitting and decoding all live inside the wrapped
    tokenizer's JSON, so the state is that JSON and nothing else.
    """

    backend = "tokenizers"
    file_name = "tokenizer.json"

    def __init__(self, tokenizer: HfTokenizer, kind: str) -> None:
        super().__init__(check_choice("tokenizer model", kind, MODELS))
        # Literal "<pad>" etc. in text are split like any other text instead of matching the
        # special tokens (this flag is not part of tokenizer.json, so it is set here).
        tokenizer.encode_special_tokens = True
        self._tok = tokenizer
        self._check_special_ids(f"a {kind!r} tokenizers model")

    @property
    def vocab_size(self) -> int:
        return self._tok.get_vocab_size(with_added_tokens=True)

    def _encode_plain(self, texts: list[str]) -> list[list[int]]:
        return [enc.ids for enc in self._tok.encode_batch_fast(texts, add_special_tokens=False)]

    def _decode_plain(self, ids: list[int]) -> str:
        return self._tok.decode(ids, skip_special_tokens=False)

    def id_to_token(self, i: int) -> str:
        token = self._tok.id_to_token(i) if 0 <= i else None
        if token is None:
            raise IndexError(f"Token id {i} is outside the vocabulary of size {self.vocab_size}")
        return token

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def to_state(self) -> dict[str, str]:
        return {
            "format": STATE_FORMAT,
            "backend": self.backend,
            "kind": self.kind,
            "payload": self._tok.to_str(),
        }

    @classmethod
    def from_state(cls, state: dict[str, str]) -> TokenizersTokenizer:
        try:
            tokenizer = HfTokenizer.from_str(state["payload"])
        except Exception as err:  # tokenizers raises a bare Exception on bad JSON
            raise NlpseqError(f"Tokenizer payload is not a valid tokenizer.json: {err}") from err
        return cls(tokenizer, state["kind"])

    @staticmethod
    def _write_payload(payload: str, path: Path) -> None:
        path.write_text(payload, encoding="utf-8")

    @staticmethod
    def _read_payload(path: Path) -> str:
        return path.read_text(encoding="utf-8")


def train_tokenizers_tokenizer(
    texts: Iterable[str],
    *,
    model: Literal["word", "bpe", "wordpiece", "char"],
    vocab_size: int = 30000,
    min_frequency: int = 1,
    lowercase: bool = False,
    normalization: Literal["none", "nfkc", "nfc"] = "nfkc",
    show_progress: bool = False,
) -> TokenizersTokenizer:
    """Learn a vocabulary of at most `vocab_size` ids (specials included) from `texts`.

    Word, BPE and WordPiece split on whitespace only (`WhitespaceSplit`), so punctuation
    stays attached to its word and `decode(encode(t))` gives `t` with runs of whitespace
    collapsed to one space. Char keeps every character, whitespace included, so its round
    trip is exact. Words (word) or characters (char) seen fewer than `min_frequency` times
    are left out and later encode as `<unk>`; for BPE and WordPiece it is the least count
    of a pair to be merged. BPE and WordPiece keep every character seen, so a `vocab_size`
    below the alphabet size is exceeded; they also read `texts` into memory, as training
    them reproducibly takes two passes (see `_affixed_characters`).

    Args:
        texts: training sentences, e.g. a generator over the training split.
        model: "word" (WordLevel), "bpe", "wordpiece" or "char".
        vocab_size: most ids in the vocabulary, the 4 special tokens included.
        min_frequency: least count for a token (or merge) to enter the vocabulary.
        lowercase: lowercase text before everything else, in training and encoding.
        normalization: Unicode normalization, "nfkc", "nfc" or "none".
        show_progress: show the `tokenizers` progress bar (word, BPE, WordPiece).
    """
    check_choice("tokenizer model", model, MODELS)
    check_vocab_size(vocab_size)
    check_choice("normalization", normalization, NORMALIZATIONS)
    if not is_int(min_frequency) or min_frequency < 1:
        raise NlpseqError(
            f"min_frequency must be an integer of at least 1 (1 keeps every token), "
            f"got {min_frequency!r}"
        )
    texts = check_training_texts(texts)
    normalizer = _normalizer(normalization, lowercase)
    if model == "char":
        return _learnt(TokenizersTokenizer(
            _char_tokenizer(texts, normalizer, vocab_size, min_frequency), model
        ), min_frequency)

    if model == "word":
        # A corpus may spell a special token ("<unk>" in Penn Treebank): it must not be
        # counted as a word, or the trainer gives that word a second id. Encoding still
        # maps the literal to the special token.
        texts = (_without_special_tokens(text) for text in texts)
    seeds: list[str] = []
    if model in ("bpe", "wordpiece"):
        texts = list(texts)  # read twice: once for the seeds, once to train
        seeds = _affixed_characters(texts, normalizer, model)
    tokenizer, trainer = _model_and_trainer(model, vocab_size, min_frequency, show_progress, seeds)
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    tokenizer.train_from_iterator(texts, trainer)
    if seeds:  # the seeds entered as special tokens; keep them in the vocabulary only
        data = json.loads(tokenizer.to_str())
        data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] in SPECIAL_TOKENS]
        tokenizer = HfTokenizer.from_str(json.dumps(data))
    return _learnt(TokenizersTokenizer(tokenizer, model), min_frequency)


def _learnt(tokenizer: TokenizersTokenizer, min_frequency: int) -> TokenizersTokenizer:
    """A tokenizer that learnt no token besides its special ones would encode every text
    as <unk>: refused, naming the option that left nothing."""
    if tokenizer.vocab_size <= len(SPECIAL_TOKENS):
        raise NlpseqError(f"The tokenizer learnt no tokens: none occurs min_frequency="
                          f"{min_frequency} times in the training texts; lower "
                          "tokenizer.min_frequency")
    return tokenizer


def _without_special_tokens(text: str) -> str:
    for token in SPECIAL_TOKENS:
        if token in text:
            text = text.replace(token, " ")
    return text


def _normalizer(normalization: str, lowercase: bool) -> normalizers.Normalizer | None:
    """Unicode normalization, then lowercasing; None when neither is asked for."""
    steps = {"none": [], "nfkc": [normalizers.NFKC()], "nfc": [normalizers.NFC()]}[normalization]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps) if steps else None


def _char_tokenizer(
    texts: Iterable[str],
    normalizer: normalizers.Normalizer | None,
    vocab_size: int,
    min_frequency: int,
) -> HfTokenizer:
    """One token per character (code point), whitespace included; Fuse joins them back.

    Characters are counted here and ranked by (count desc, character), which keeps the
    vocabulary reproducible. The model is a BPE with no merges: it maps each character to
    its id and encodes about twice as fast as a WordLevel fed by a per-character regex.
    """
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(normalizer.normalize_str(text) if normalizer is not None else text)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    kept = [c for c, n in ranked if n >= min_frequency][: vocab_size - len(SPECIAL_TOKENS)]
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *kept])}
    tokenizer = HfTokenizer(models.BPE(vocab=vocab, merges=[], unk_token=UNK))
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))  # already at ids 0..3
    if normalizer is not None:
        tokenizer.normalizer = normalizer
    # Whitespace becomes pieces of its own (a cheap split that keeps every character).
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"\s"), behavior="isolated")
    tokenizer.decoder = decoders.Fuse()
    return tokenizer


def _affixed_characters(
    texts: list[str], normalizer: normalizers.Normalizer | None, model: str
) -> list[str]:
    """Every character seen, with the BPE suffix or WordPiece prefix attached, sorted.

    Works around huggingface/tokenizers#1794: the trainer creates these tokens in hash-map
    order, so their ids, and with them the merges chosen among equal counts, change from
    run to run. Handing them to the trainer first, in sorted order, makes training
    reproducible, which the golden-output tests and the datasets cache key rely on.
    """
    words: set[str] = set()
    for text in texts:
        words.update(text.split())
    joined = "\n".join(words)
    if normalizer is not None:
        joined = normalizer.normalize_str(joined)
    chars = sorted(c for c in set(joined) if not c.isspace())
    if model == "bpe":
        return [c + _END_OF_WORD for c in chars]
    return [_SUBWORD_PREFIX + c for c in chars]


def _model_and_trainer(
    model: str, vocab_size: int, min_frequency: int, show_progress: bool, seeds: list[str]
) -> tuple[HfTokenizer, trainers.Trainer]:
    """An untrained word, BPE or WordPiece tokenizer and the trainer that fills it."""
    common = dict(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[*SPECIAL_TOKENS, *seeds],  # specials first, so they take ids 0..3
        show_progress=show_progress,
    )
    if model == "word":
        tokenizer = HfTokenizer(models.WordLevel(unk_token=UNK))
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        # No decoder: tokenizers joins word tokens with single spaces.
        return tokenizer, trainers.WordLevelTrainer(**common)
    if model == "bpe":
        tokenizer = HfTokenizer(models.BPE(unk_token=UNK, end_of_word_suffix=_END_OF_WORD))
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        tokenizer.decoder = decoders.BPEDecoder(suffix=_END_OF_WORD)
        return tokenizer, trainers.BpeTrainer(end_of_word_suffix=_END_OF_WORD, **common)
    # wordpiece
    tokenizer = HfTokenizer(
        models.WordPiece(unk_token=UNK, continuing_subword_prefix=_SUBWORD_PREFIX)
    )
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # cleanup=False: keep " ." and " n't" as written, so decoding inverts encoding.
    tokenizer.decoder = decoders.WordPiece(prefix=_SUBWORD_PREFIX, cleanup=False)
    return tokenizer, trainers.WordPieceTrainer(continuing_subword_prefix=_SUBWORD_PREFIX, **common)
