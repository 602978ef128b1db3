"""What every nlpseq tokenizer offers, whichever library backs it.

Both backends (`hf.py` for the `tokenizers` package, `spm.py` for `sentencepiece`) share
the four special tokens at fixed ids, a string-only state that travels inside checkpoints,
and a save / load format of one model file plus a small `tokenizer_meta.json`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from nlpseq.checks import is_int
from nlpseq.errors import NlpseqError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # their ids are their positions: 0, 1, 2, 3
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3

STATE_FORMAT = "nlpseq.tokenizer/1"
META_FILE = "tokenizer_meta.json"
# Ids that only the model may place: text never encodes to them (see Tokenizer.encode_batch).
CONTROL_IDS = frozenset({PAD_ID, BOS_ID, EOS_ID})


class Tokenizer(ABC):
    """Text <-> ids with `<pad>`=0, `<unk>`=1, `<bos>`=2, `<eos>`=3 in every vocabulary.

    Subclasses wrap one library and supply the plain batch encoder, the decoder, the
    vocabulary look-ups and the state. Everything built on those (special tokens at the
    ends, fingerprints, saving) lives here so the two backends cannot drift apart.
    """

    pad_id: int = PAD_ID
    unk_id: int = UNK_ID
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    backend: str  # name stored in the state; picks the class in `tokenizer_from_state`
    file_name: str  # the main file `save` writes

    def __init__(self, kind: str) -> None:
        self.kind = kind

    # ---- what a backend provides ------------------------------------------------------
    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Number of ids, special tokens included; every id is below it."""

    @abstractmethod
    def _encode_plain(self, texts: list[str]) -> list[list[int]]:
        """Ids of each text with the backend's fast batch encoder, no special tokens added."""

    @abstractmethod
    def _decode_plain(self, ids: list[int]) -> str:
        """Text of `ids` as the backend decodes it, keeping every id it is given."""

    @abstractmethod
    def id_to_token(self, i: int) -> str:
        """The vocabulary entry for id `i`; IndexError when `i` is not below `vocab_size`."""

    @abstractmethod
    def token_to_id(self, token: str) -> int | None:
        """The id of vocabulary entry `token`, or None when the vocabulary lacks it."""

    @abstractmethod
    def to_state(self) -> dict[str, str]:
        """Everything needed to rebuild this tokenizer, as plain strings only.

        Strings only, because the state is stored in checkpoints read back with
        `torch.load(weights_only=True)`. Keys: `format`, `backend`, `kind`, `payload`
        (the serialized model) and any backend option such as `lowercase`.
        """

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, str]) -> Tokenizer:
        """Rebuild from `to_state()`; NlpseqError when the payload cannot be read."""

    @staticmethod
    @abstractmethod
    def _write_payload(payload: str, path: Path) -> None:
        """Write the state's payload as the library's own model file."""

    @staticmethod
    @abstractmethod
    def _read_payload(path: Path) -> str:
        """Read the library's model file back into a state payload."""

    # ---- shared behaviour -------------------------------------------------------------
    def encode(self, text: str, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        """Ids of one text; `<bos>` / `<eos>` at the ends on request. Never yields pad_id."""
        return self.encode_batch([text], add_bos=add_bos, add_eos=add_eos)[0]

    def encode_batch(
        self, texts: list[str], add_bos: bool = False, add_eos: bool = False
    ) -> list[list[int]]:
        """Ids of many texts at once, as `datasets.map(batched=True)` wants them.

        A text that literally contains "<pad>", "<bos>" or "<eos>" gets `<unk>` there, so
        padding and sequence ends are only ever placed by the model, never by data.
        """
        prefix = [self.bos_id] if add_bos else []
        suffix = [self.eos_id] if add_eos else []
        batch = self._encode_plain(list(texts))
        out = []
        for ids in batch:
            if not CONTROL_IDS.isdisjoint(ids):
                ids = [self.unk_id if i in CONTROL_IDS else i for i in ids]
            out.append(prefix + ids + suffix if prefix or suffix else ids)
        return out

    def decode(self, ids: Sequence[int], skip_special: bool = True) -> str:
        """Text of `ids`. `skip_special` drops `<pad>`, `<bos>`, `<eos>`; `<unk>` stays visible."""
        ids = [int(i) for i in ids]  # also accepts tensors and numpy arrays
        if skip_special:
            ids = [i for i in ids if i not in CONTROL_IDS]
        return self._decode_plain(ids)

    def fingerprint(self) -> str:
        """sha256 hex of the state: a cache key equal for equal tokenizers in any process."""
        blob = json.dumps(self.to_state(), sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def save(self, directory: str | Path) -> Path:
        """Write the model file and `tokenizer_meta.json` into `directory`; return the former."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = self.to_state()
        main = directory / self.file_name
        self._write_payload(state["payload"], main)
        meta = {key: value for key, value in state.items() if key != "payload"}
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return main

    def _check_special_ids(self, source: str) -> None:
        """Fail early on a vocabulary (e.g. a foreign file) whose special tokens moved."""
        for token, expected in zip(SPECIAL_TOKENS, (PAD_ID, UNK_ID, BOS_ID, EOS_ID), strict=True):
            got = self.token_to_id(token)
            if got != expected:
                raise NlpseqError(
                    f"Tokenizer from {source} has {token!r} at id {got}; nlpseq needs "
                    f"{PAD!r}=0, {UNK!r}=1, {BOS!r}=2, {EOS!r}=3"
                )

    def __reduce__(self) -> tuple:
        """Pickle through the state: small, stable bytes for datasets' hashing and workers."""
        return (tokenizer_from_state, (self.to_state(),))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kind={self.kind!r}, vocab_size={self.vocab_size})"


def _backend_class(name: object) -> type[Tokenizer]:
    """The Tokenizer subclass stored under `backend` in a state (imported lazily)."""
    if name == "tokenizers":
        from nlpseq.tokenization.hf import TokenizersTokenizer

        return TokenizersTokenizer
    if name == "sentencepiece":
        from nlpseq.tokenization.spm import SentencePieceTokenizer

        return SentencePieceTokenizer
    raise NlpseqError(
        f"Unknown tokenizer backend {name!r}; choose one of 'tokenizers', 'sentencepiece'"
    )


def tokenizer_from_state(state: dict[str, str]) -> Tokenizer:
    """Rebuild the tokenizer whose `to_state()` gave `state`: same ids for every text.
    A translation model's state rebuilds its `TokenizerPair`."""
    if not isinstance(state, dict):
        raise NlpseqError(f"Tokenizer state must be a dict of strings, got {type(state).__name__}")
    from nlpseq.tokenization.pair import PAIR_FORMAT, TokenizerPair

    if state.get("format") == PAIR_FORMAT:
        return TokenizerPair.from_state(state)  # type: ignore[return-value]
    missing = [key for key in ("format", "backend", "kind", "payload") if key not in state]
    if missing:
        raise NlpseqError(f"Tokenizer state lacks {', '.join(map(repr, missing))}")
    if state["format"] != STATE_FORMAT:
        raise NlpseqError(
            f"Tokenizer state has format {state['format']!r}; this nlpseq reads {STATE_FORMAT!r}"
        )
    return _backend_class(state["backend"]).from_state(state)


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load what `Tokenizer.save` wrote; `path` is that directory or its main file."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    meta_path = directory / META_FILE
    if not path.exists():
        raise NlpseqError(f"No tokenizer at '{path}': the path does not exist")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise NlpseqError(
            f"Cannot read tokenizer at '{path}': {META_FILE} is missing or not JSON ({err})"
        ) from err
    if not isinstance(meta, dict):
        raise NlpseqError(f"Cannot read tokenizer at '{path}': {META_FILE} is not a JSON object")
    cls = _backend_class(meta.get("backend"))
    main = path if path.is_file() and path != meta_path else directory / cls.file_name
    try:
        payload = cls._read_payload(main)
    except (OSError, ValueError) as err:
        raise NlpseqError(f"Cannot read tokenizer file '{main}': {err}") from err
    try:
        return tokenizer_from_state({**meta, "payload": payload})
    except NlpseqError as err:
        raise NlpseqError(f"Cannot load tokenizer at '{path}': {err}") from err


def check_training_texts(texts: Iterable[str]) -> Iterator[str]:
    """The training texts as an iterator, failing before training when there are none.

    Reads ahead only to the first non-blank text, so a generator over a large split is
    never held in memory. Non-string items fail with NlpseqError as they are reached.
    """
    if isinstance(texts, (str, bytes)):
        raise NlpseqError(
            "Training texts must be an iterable of strings (one per sentence), got a single "
            f"{type(texts).__name__}"
        )
    it = iter(texts)
    head: list[str] = []
    for text in it:
        head.append(_checked_str(text))
        if text.strip():
            return itertools.chain(head, map(_checked_str, it))
    raise NlpseqError(
        f"No training text: got {len(head)} texts, all empty or whitespace; "
        "check the training split and its text column"
    )


def _checked_str(text: object) -> str:
    if not isinstance(text, str):
        raise NlpseqError(
            f"Training texts must be strings, got {type(text).__name__}: {text!r:.60}"
        )
    return text


def check_vocab_size(vocab_size: object) -> int:
    """vocab_size as an int of at least 5: the 4 special tokens plus one real token."""
    if not is_int(vocab_size) or vocab_size < 5:
        raise NlpseqError(
            f"vocab_size must be an integer of at least 5 (4 special tokens + 1), "
            f"got {vocab_size!r}"
        )
    return vocab_size


def check_choice(option: str, value: object, choices: Sequence[str]) -> str:
    """`value` when it is one of `choices`, else NlpseqError naming the option."""
    if value not in choices:
        raise NlpseqError(
            f"Unknown {option} {value!r}; choose one of {', '.join(map(repr, choices))}"
        )
    return value  # type: ignore[return-value]
