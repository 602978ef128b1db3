"""Tokenizers of every kind: fixed special ids, round trips, state / save / load, errors."""

import json
import os
import pickle
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq import tokenization
from nlpseq.errors import NlpseqError
from nlpseq.tokenization import (
    BOS,
    EOS,
    PAD,
    UNK,
    UNK_ID,
    load_tokenizer,
    tokenizer_from_state,
    train_sentencepiece,
    train_tokenizers_tokenizer,
)

REPO = Path(__file__).resolve().parents[2]
WORDS = (
    "the The cat sat on mat dog ran far away quickly slowly under over big small bird "
    "sings song hello, world. don't Über café naïve ? !"
).split()
_rng = random.Random(0)
CORPUS = [" ".join(_rng.choices(WORDS, k=_rng.randint(3, 12))) for _ in range(300)]
CORPUS += ["tab\tseparated words\nand a second line", "  leading and trailing spaces  "]
SEEN_WORDS = sorted({word for text in CORPUS for word in text.split()})
SEEN_CHARS = "".join(sorted(set("".join(CORPUS))))
ODD_TEXTS = ["", "   ", "zebra unseen QQQ €", "<pad> <bos> <eos> <unk>", "a<pad>b", "\t\n"]

# kind -> (training function in nlpseq.tokenization, options); small sizes keep it fast.
CONFIGS = {
    "word": (
        "train_tokenizers_tokenizer",
        {"model": "word", "vocab_size": 1000, "lowercase": True},
    ),
    "bpe": ("train_tokenizers_tokenizer", {"model": "bpe", "vocab_size": 120}),
    "wordpiece": ("train_tokenizers_tokenizer", {"model": "wordpiece", "vocab_size": 120}),
    "char": ("train_tokenizers_tokenizer", {"model": "char", "vocab_size": 100}),
    "sp_unigram": ("train_sentencepiece", {"model_type": "unigram", "vocab_size": 80}),
    "sp_bpe": ("train_sentencepiece", {"model_type": "bpe", "vocab_size": 80, "lowercase": True}),
}


def train(kind, **overrides):
    name, options = CONFIGS[kind]
    return getattr(tokenization, name)(iter(CORPUS), **{**options, **overrides})


@pytest.fixture(scope="module", params=list(CONFIGS))
def tok(request):
    return train(request.param)


def normalized(tokenizer, text):
    """What decode(encode(text)) should give: lowercased if trained so, whitespace runs
    collapsed to one space except at char level, which keeps every character."""
    lowercase = CONFIGS[tokenizer.kind][1].get("lowercase", False)
    if tokenizer.kind != "char":
        text = " ".join(text.split())
    return text.lower() if lowercase else text


def test_special_tokens_have_fixed_ids(tok):
    assert (tok.pad_id, tok.unk_id, tok.bos_id, tok.eos_id) == (0, 1, 2, 3)
    assert [tok.token_to_id(t) for t in (PAD, UNK, BOS, EOS)] == [0, 1, 2, 3]
    assert [tok.id_to_token(i) for i in range(4)] == [PAD, UNK, BOS, EOS]
    assert tok.token_to_id("never-seen-token") is None
    with pytest.raises(IndexError):
        tok.id_to_token(tok.vocab_size)


def test_ids_are_in_range_and_never_control_tokens(tok):
    texts = CORPUS[:50] + ODD_TEXTS
    batch = tok.encode_batch(texts)
    assert batch == [tok.encode(text) for text in texts]
    for ids in batch:
        assert all(0 < i < tok.vocab_size for i in ids)
        assert not {tok.pad_id, tok.bos_id, tok.eos_id} & set(ids)  # text cannot inject them


def test_add_bos_and_eos_wrap_the_ids(tok):
    text = CORPUS[0]
    plain = tok.encode(text)
    assert tok.encode(text, add_bos=True) == [2] + plain
    assert tok.encode(text, add_eos=True) == plain + [3]
    assert tok.encode_batch([text, ""], add_bos=True, add_eos=True) == [[2] + plain + [3], [2, 3]]


def test_decode_skips_pad_bos_eos_only_when_asked(tok):
    ids = tok.encode(CORPUS[1])
    assert tok.decode([2] + ids + [3, 0, 0]) == tok.decode(ids)
    full = tok.decode([2] + ids + [3], skip_special=False)
    assert full.startswith(BOS) and full.endswith(EOS)


@settings(max_examples=25, deadline=None, derandomize=True, database=None)
@given(
    words=st.lists(st.sampled_from(SEEN_WORDS), min_size=1, max_size=10),
    gaps=st.lists(st.sampled_from([" ", "  ", " \t "]), min_size=10, max_size=10),
)
def test_round_trip_of_seen_words(tok, words, gaps):
    text = " " + "".join(word + gap for word, gap in zip(words, gaps, strict=False))
    assert tok.decode(tok.encode(text)) == normalized(tok, text)


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(text=st.text(alphabet=SEEN_CHARS, max_size=40))
def test_char_round_trip_is_exact_for_seen_characters(text):
    char = _char_tokenizer()
    assert char.decode(char.encode(text)) == text


_CACHE = {}


def _char_tokenizer():
    if "char" not in _CACHE:
        _CACHE["char"] = train("char")
    return _CACHE["char"]


def test_state_is_strings_and_rebuilds_identically(tok):
    state = tok.to_state()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in state.items())
    again = tokenizer_from_state(state)
    texts = CORPUS[:30] + ODD_TEXTS
    assert again.encode_batch(texts, add_bos=True) == tok.encode_batch(texts, add_bos=True)
    assert (again.kind, again.vocab_size, again.fingerprint()) == (
        tok.kind,
        tok.vocab_size,
        tok.fingerprint(),
    )


def test_pickle_round_trip_keeps_the_ids(tok):
    again = pickle.loads(pickle.dumps(tok))
    assert again.encode_batch(CORPUS[:30]) == tok.encode_batch(CORPUS[:30])
    assert pickle.dumps(again) == pickle.dumps(tok)


def test_state_survives_torch_load_weights_only(tok, tmp_path):
    path = tmp_path / "ckpt.pt"
    torch.save({"tokenizer": tok.to_state(), "epoch": 3}, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded["tokenizer"] == tok.to_state()
    assert tokenizer_from_state(loaded["tokenizer"]).encode(CORPUS[2]) == tok.encode(CORPUS[2])


def test_save_then_load_gives_the_same_tokenizer(tok, tmp_path):
    main = tok.save(tmp_path / "tok")
    assert main.is_file() and main.parent == tmp_path / "tok"
    for path in (tmp_path / "tok", main, str(main)):
        loaded = load_tokenizer(path)
        assert loaded.fingerprint() == tok.fingerprint()
        texts = CORPUS[:30] + ODD_TEXTS
        assert loaded.encode_batch(texts) == tok.encode_batch(texts)


def test_fingerprint_is_stable_and_tracks_the_vocabulary(tok):
    assert train(tok.kind).fingerprint() == tok.fingerprint()
    smaller = train(tok.kind, vocab_size=tok.vocab_size - 3)
    assert smaller.vocab_size < tok.vocab_size
    assert smaller.fingerprint() != tok.fingerprint()


def test_fingerprints_are_equal_in_another_process(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"corpus": CORPUS, "configs": CONFIGS}))
    script = (
        "import json, sys\n"
        "from nlpseq import tokenization\n"
        "spec = json.load(open(sys.argv[1]))\n"
        "print(json.dumps({k: getattr(tokenization, f)(spec['corpus'], **o).fingerprint()"
        " for k, (f, o) in spec['configs'].items()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", script, str(spec)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == {kind: train(kind).fingerprint() for kind in CONFIGS}


# ---- counts by hand ---------------------------------------------------------------------
TINY = ["a a a b b c", "a b d"]  # a: 4, b: 3, c: 1, d: 1


def test_word_level_unknown_words_map_to_unk():
    word = train_tokenizers_tokenizer(TINY, model="word")
    assert word.vocab_size == 8
    assert word.encode("a zebra d") == [word.token_to_id("a"), 1, word.token_to_id("d")]
    assert word.decode(word.encode("a zebra d")) == "a <unk> d"


def test_word_level_min_frequency_and_vocab_size_are_honoured():
    frequent = train_tokenizers_tokenizer(TINY, model="word", min_frequency=2)
    assert frequent.vocab_size == 6  # 4 specials + a, b
    assert frequent.token_to_id("c") is None and frequent.encode("c b") == [1, 5]
    capped = train_tokenizers_tokenizer(TINY, model="word", vocab_size=5)
    assert capped.vocab_size == 5 and capped.id_to_token(4) == "a"


def test_char_level_keeps_the_most_frequent_characters():
    char = train_tokenizers_tokenizer(["aaab  "], model="char", vocab_size=6)
    assert {char.id_to_token(4), char.id_to_token(5)} == {"a", " "}  # a: 3, space: 2, b: 1
    a, space = char.token_to_id("a"), char.token_to_id(" ")
    assert char.encode("ba a") == [1, a, space, a]
    assert train_tokenizers_tokenizer(["aab"], model="char", min_frequency=2).vocab_size == 5


def test_configs_build_every_kind():
    hydra_utils = pytest.importorskip("hydra.utils")
    omegaconf = pytest.importorskip("omegaconf")
    for kind in CONFIGS:
        cfg = omegaconf.OmegaConf.load(REPO / "conf" / "tokenizer" / f"{kind}.yaml")
        tokenizer = hydra_utils.instantiate(cfg)(iter(CORPUS))
        assert tokenizer.kind == kind and tokenizer.encode("the cat")


# ---- errors name the option, the value and the choices ---------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: train_tokenizers_tokenizer(CORPUS, model="wrod"),
            "Unknown tokenizer model 'wrod'; choose one of 'word', 'bpe', 'wordpiece', 'char'",
        ),
        (
            lambda: train_tokenizers_tokenizer(CORPUS, model="bpe", vocab_size=3),
            "vocab_size .* got 3",
        ),
        (
            lambda: train_tokenizers_tokenizer(CORPUS, model="bpe", normalization="nfd"),
            "Unknown normalization 'nfd'; choose one of 'none', 'nfkc', 'nfc'",
        ),
        (
            lambda: train_tokenizers_tokenizer(CORPUS, model="word", min_frequency=0),
            "min_frequency",
        ),
        (lambda: train_tokenizers_tokenizer([], model="word"), "No training text"),
        (lambda: train_tokenizers_tokenizer(["", "  "], model="char"), "No training text"),
        (lambda: train_tokenizers_tokenizer(iter(()), model="bpe"), "No training text"),
        (lambda: train_tokenizers_tokenizer("one string", model="word"), "single str"),
        (lambda: train_tokenizers_tokenizer(["ok", None], model="word"), "got NoneType"),
        (
            lambda: train_sentencepiece(CORPUS, model_type="wordpiece"),
            "Unknown sentencepiece model_type 'wordpiece'; choose one of 'unigram', 'bpe'",
        ),
        (lambda: train_sentencepiece(CORPUS, normalization="nfc"), "Unknown normalization 'nfc'"),
        (lambda: train_sentencepiece(CORPUS, character_coverage=0.0), "character_coverage"),
        (lambda: train_sentencepiece(CORPUS, vocab_size=10), "sentencepiece training failed"),
        (lambda: train_sentencepiece(t for t in ["", " "]), "No training text"),
        (lambda: train_sentencepiece(CORPUS + [None]), "got NoneType"),
    ],
)
def test_bad_training_options_raise_clear_errors(call, message):
    with pytest.raises(NlpseqError, match=message):
        call()


def test_loading_missing_or_corrupt_files_names_the_path(tmp_path):
    with pytest.raises(NlpseqError, match="nowhere"):
        load_tokenizer(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(NlpseqError, match="empty"):
        load_tokenizer(tmp_path / "empty")
    for kind in ("word", "sp_unigram"):
        main = train(kind).save(tmp_path / kind)
        main.write_bytes(b"not a model")
        with pytest.raises(NlpseqError, match=re.escape(str(main.parent))):
            load_tokenizer(main.parent)


def test_bad_state_raises_clear_errors():
    state = train("word").to_state()
    with pytest.raises(NlpseqError, match="Unknown tokenizer backend 'nope'"):
        tokenizer_from_state({**state, "backend": "nope"})
    with pytest.raises(NlpseqError, match="lacks 'payload'"):
        tokenizer_from_state({k: v for k, v in state.items() if k != "payload"})
    with pytest.raises(NlpseqError, match="not a valid tokenizer.json"):
        tokenizer_from_state({**state, "payload": "{"})
    sp_state = train("sp_bpe").to_state()
    with pytest.raises(NlpseqError, match="not base64"):
        tokenizer_from_state({**sp_state, "payload": "***"})
    with pytest.raises(NlpseqError, match="not a sentencepiece model"):
        tokenizer_from_state({**sp_state, "payload": "bm90IGEgbW9kZWw="})


def test_a_corpus_that_spells_unk_keeps_unk_at_its_fixed_id():
    """Penn Treebank writes rare words as the literal "<unk>"."""
    tokenizer = train_tokenizers_tokenizer([" the <unk> cat", "a <unk> dog <unk>"] * 3,
                                           model="word", vocab_size=50)
    assert tokenizer.token_to_id(UNK) == UNK_ID
    assert tokenizer.encode("the <unk> cat")[1] == UNK_ID


@pytest.mark.parametrize("model", ["word", "char"])
def test_a_min_frequency_no_token_reaches_is_refused_not_an_all_unk_vocabulary(model):
    with pytest.raises(NlpseqError) as caught:
        train_tokenizers_tokenizer(["a good film", "a bad film"], model=model, min_frequency=9)
    assert str(caught.value) == ("The tokenizer learnt no tokens: none occurs min_frequency=9 "
                                 "times in the training texts; lower tokenizer.min_frequency")
    kept = train_tokenizers_tokenizer(["a good film", "a bad film"], model=model,
                                      min_frequency=2)  # "a", "film" (or their letters) stay
    assert kept.vocab_size > 4
