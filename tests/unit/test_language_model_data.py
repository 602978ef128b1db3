"""LanguageModelDataModule: stream blocks, line ends, lines batches, splits, errors, cache."""

import json
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq.data import LanguageModelDataModule
from nlpseq.data.language_model import StreamBlocks
from nlpseq.data.sample import LM_SPLIT_SIZES
from nlpseq.errors import NlpseqError
from nlpseq.tokenization import BOS_ID, EOS_ID, PAD_ID, train_tokenizers_tokenizer

LINES = [f"the {animal} sat on mat number {i}." for i in range(12) for animal in ("cat", "dog")]


def char_tokenizer(datamodule):
    return train_tokenizers_tokenizer(datamodule.train_texts(), model="char", vocab_size=200,
                                      min_frequency=1, lowercase=False, normalization="nfkc")


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def encoded(tmp_path, text: str = "\n".join(LINES) + "\n", valid: str | None = None, **options):
    train = write(tmp_path, "train.txt", text)
    valid = write(tmp_path, "valid.txt", valid) if valid is not None else None
    dm = LanguageModelDataModule(train_file=train, validation_file=valid, **options)
    dm.load()
    dm.encode(char_tokenizer(dm))
    return dm


def test_stream_blocks_are_contiguous_shifted_and_in_the_same_order_every_epoch(tmp_path):
    dm = encoded(tmp_path, num_streams=3, block_size=7)
    epochs = [list(dm.train_dataloader()) for _ in range(2)]
    blocks = epochs[0]
    assert [int(b["block"]) for b in blocks] == list(range(len(blocks)))
    data = dm._blocks("train").data  # (B, S)
    rows = torch.cat([b["tokens"] for b in blocks], dim=1)
    assert torch.equal(torch.cat([rows, blocks[-1]["targets"][:, -1:]], dim=1), data)
    assert torch.equal(data.flatten(), dm.streams["train"][: data.numel()])
    for block, following in zip(blocks, blocks[1:], strict=False):
        assert torch.equal(block["targets"][:, :-1], block["tokens"][:, 1:])
        assert torch.equal(following["tokens"][:, 0], block["targets"][:, -1])
    for batch in blocks:
        assert batch["tokens"].shape == batch["targets"].shape == (3, int(batch["lengths"][0]))
        assert (batch["lengths"] == batch["tokens"].shape[1]).all() and "index" not in batch
    for first, second in zip(*epochs, strict=True):
        assert all(torch.equal(first[key], second[key]) for key in first)
    assert dm.num_tokens("train") == 3 * (data.shape[1] - 1)


def test_the_held_out_tail_starts_at_a_word_boundary_after_nanogpts_cut(tmp_path):
    text = "the cat sat on the mat\n" * 4 + "a dog ran away\n"
    assert text[int(len(text) * 0.9):] == "g ran away\n"  # nanoGPT's cut: inside "dog"
    dm = encoded(tmp_path, text, line_end="newline", num_streams=1, eval_num_streams=1)
    assert "".join(dm.train_texts()) == text[:-10]  # "... a dog" | " ran away\n"
    assert "".join(dm.raw["validation"]["text"]) == " ran away\n"


def test_newline_mode_keeps_the_text_and_cuts_validation_like_nanogpt(tmp_path):
    text = "First Citizen:\nBefore we proceed, hear me speak.\n\nAll:\nSpeak, speak.\n" * 3
    dm = encoded(tmp_path, text, line_end="newline", num_streams=1, eval_num_streams=1)
    cut = int(len(text) * 0.9)  # at a line end: where nanoGPT cuts
    assert "".join(dm.train_texts()) == text[:cut]
    tokenizer = char_tokenizer(dm)
    assert tokenizer.decode(dm.streams["train"]) == text[:cut]
    assert tokenizer.decode(dm.streams["validation"]) == text[cut:]
    assert dm.test_is_validation and EOS_ID not in dm.streams["train"].tolist()


def test_eos_mode_ends_every_non_empty_line_with_one_eos(tmp_path, caplog):
    caplog.set_level("INFO")
    valid = "the cat sat.\n\n   \nthe dog sat.\n"
    dm = encoded(tmp_path, valid=valid, eval_num_streams=1)
    ids = dm.streams["validation"].tolist()
    assert ids.count(EOS_ID) == 2 and ids[-1] == EOS_ID
    tokenizer = char_tokenizer(dm)
    assert tokenizer.decode(ids[: ids.index(EOS_ID)]) == "the cat sat."
    assert "Dropped 2 empty rows of the validation split" in caplog.text
    assert dm.streams["train"].tolist().count(EOS_ID) == len(LINES)


def test_lines_mode_batches_bos_ids_and_ids_eos_padded(tmp_path):
    text = "a\n\nbb b\nccc cc c\n" * 4
    dm = encoded(tmp_path, text, valid=text, mode="lines", batch_size=4, max_length=5)
    seen = []
    for batch in dm.val_dataloader():
        tokens, targets, lengths = batch["tokens"], batch["targets"], batch["lengths"]
        assert "block" not in batch and (tokens[:, 0] == BOS_ID).all()
        for row, n in enumerate(lengths.tolist()):
            assert n <= 6  # max_length + 1
            assert torch.equal(targets[row, : n - 1], tokens[row, 1:n])
            assert targets[row, n - 1] == EOS_ID
            assert (tokens[row, n:] == PAD_ID).all() and (targets[row, n:] == PAD_ID).all()
        seen += batch["index"].tolist()
    assert sorted(seen) == [i for i in range(16) if i % 4 != 1]  # empty rows dropped
    assert sorted(len(e["ids"]) for e in dm.encoded["train"]) == [1] * 4 + [4] * 4 + [5] * 4
    assert dm.num_tokens("validation") == 4 * (2 + 5 + 6)


def test_lines_mode_holds_out_a_seeded_fraction_of_the_rows(tmp_path):
    held_out = []
    for _ in range(2):
        dm = LanguageModelDataModule(train_file=write(tmp_path, "t.txt", "\n".join(LINES)),
                                     mode="lines", validation_fraction=0.25, seed=3)
        dm.load()
        held_out.append(sorted(dm.raw["validation"]["text"]))
        assert len(dm.raw["train"]) == 18 and len(dm.raw["validation"]) == 6
    assert held_out[0] == held_out[1]


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 200), num_streams=st.integers(1, 12), block_size=st.integers(1, 20))
def test_stream_batching_visits_every_token_once_in_order(n, num_streams, block_size):
    ids = torch.arange(n)
    if n // num_streams < 2:
        with pytest.raises(NlpseqError, match="too few"):
            StreamBlocks(ids, num_streams, block_size)
        return
    blocks = StreamBlocks(ids, num_streams, block_size)
    steps = n // num_streams
    assert len(blocks) == math.ceil((steps - 1) / block_size)
    items = [blocks[i] for i in range(len(blocks))]
    rows = torch.cat([b["tokens"] for b in items] + [items[-1]["targets"][:, -1:]], dim=1)
    assert torch.equal(rows.flatten(), ids[: num_streams * steps])
    assert torch.equal(torch.cat([b["targets"] for b in items], dim=1), rows[:, 1:])


def test_missing_text_column_lists_the_columns_found(tmp_path):
    rows = "".join(json.dumps({"sentence": line, "id": i}) + "\n" for i, line in enumerate(LINES))
    dm = LanguageModelDataModule(train_file=write(tmp_path, "t.jsonl", rows))
    with pytest.raises(NlpseqError, match=r"train split \(.*t.jsonl\) has no column 'text' "
                                          r"\(data.text_column\); columns found: sentence, id"):
        dm.load()


def test_a_text_file_reads_the_same_whatever_the_text_column_is_called(tmp_path):
    # data=ptb names the hub's column "sentence"; the local ptb.*.txt copy must load too.
    dm = encoded(tmp_path, text_column="sentence", num_streams=2, block_size=5)
    assert dm.raw["train"].column_names == ["sentence"]
    assert dm.num_tokens("train") > 0


def test_split_too_small_for_the_streams_says_which_and_what_to_change(tmp_path):
    with pytest.raises(NlpseqError, match=r"The validation split has 6 tokens, too few for 8 "
                                          r"streams.*use a smaller data.eval_num_streams"):
        encoded(tmp_path, valid="hello\n", eval_num_streams=8)


def test_empty_train_file_is_refused(tmp_path):
    dm = LanguageModelDataModule(train_file=write(tmp_path, "t.txt", ""))
    with pytest.raises(NlpseqError, match="train split is empty"):
        dm.load()


def test_second_encoding_of_the_same_data_is_read_from_the_cache(tmp_path):
    # the cache is keyed by the file's text: a line of this test's own keeps others' out
    path = write(tmp_path, "t.txt", "\n".join([*LINES, tmp_path.name]) + "\n")
    calls = []

    class CountingTokenizer:
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def encode_batch(self, texts, **options):
            calls.append(len(texts))
            return self.inner.encode_batch(texts, **options)

    streams = []
    for _ in range(2):
        dm = LanguageModelDataModule(train_file=path, num_streams=2, eval_num_streams=2)
        dm.load()
        dm.encode(CountingTokenizer(char_tokenizer(dm)))
        streams.append(dm.streams)
    assert len(calls) == 2  # train and the held-out tail once, in the first run only
    for split in ("train", "validation"):
        assert torch.equal(streams[0][split], streams[1][split])


def test_embedded_sample_loads_and_batches():
    dm = LanguageModelDataModule(name="sample", train_file="lm_train.txt",
                                 validation_file="lm_validation.txt", test_file="lm_test.txt",
                                 block_size=32, num_streams=8, eval_num_streams=4)
    dm.load()
    assert {split: len(ds) for split, ds in dm.raw.items()} == LM_SPLIT_SIZES
    assert not dm.test_is_validation and dm.label_names is None
    dm.encode(char_tokenizer(dm))
    batch = next(iter(dm.test_dataloader()))
    assert batch["tokens"].shape == (4, 32) and int(batch["block"]) == 0
    assert dm.streams["test"].tolist().count(EOS_ID) == LM_SPLIT_SIZES["test"]


def test_lines_mode_cuts_rows_over_max_length_by_default_and_says_how_many(tmp_path, caplog):
    long = "x" * 700 + "\n"
    with caplog.at_level("INFO", logger="nlpseq"):
        dm = encoded(tmp_path, long + "\n".join(LINES) + "\n", mode="lines")
    assert max(len(e["ids"]) for e in dm.encoded["train"]) == 512
    assert "Cut 1 of" in caplog.text and "to data.max_length=512 tokens" in caplog.text


def test_a_stream_is_never_cut(tmp_path, caplog):
    long = "x" * 700 + "\n"
    with caplog.at_level("INFO", logger="nlpseq"):
        dm = encoded(tmp_path, long + "\n".join(LINES) + "\n", valid=long * 2, num_streams=2,
                     eval_num_streams=2)
    assert len(dm.streams["validation"]) == 2 * 701  # 700 x's and <eos>, twice
    assert "data.max_length" not in caplog.text


def test_a_json_line_without_the_text_is_refused_with_its_line(tmp_path):
    rows = [{"text": "a line"}, {"body": "no text"}]
    path = write(tmp_path, "t.jsonl", "".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(NlpseqError, match=r"t.jsonl, line 2: no value for 'text' "
                                          r"\(data.text_column\)"):
        LanguageModelDataModule(train_file=path).load()


@pytest.mark.parametrize("mode", ["stream", "lines"])
def test_reverse_reads_each_text_right_to_left(tmp_path, mode):
    """data.reverse=true: a backward language model sees the stream, or each row, reversed;
    rows still start with <bos> and end with <eos>."""
    (tmp_path / "f").mkdir()
    (tmp_path / "b").mkdir()
    forward = encoded(tmp_path / "f", mode=mode)
    backward = encoded(tmp_path / "b", mode=mode, reverse=True)
    if mode == "stream":
        assert torch.equal(backward.streams["train"], forward.streams["train"].flip(0))
        return
    rows = [row["ids"] for row in forward.examples("train")]
    assert [row["ids"] for row in backward.examples("train")] == [r[::-1] for r in rows]
    batch = next(iter(backward.val_dataloader()))
    assert int(batch["tokens"][0, 0]) == BOS_ID
    assert EOS_ID in batch["targets"][0].tolist()


@pytest.mark.parametrize(("option", "value", "choices"), [
    ("mode", "blocks", "'stream', 'lines'"), ("line_end", "crlf", "'eos', 'newline'")])
def test_an_unknown_mode_or_line_end_is_named_with_the_choices(option, value, choices):
    with pytest.raises(NlpseqError, match=f"Unknown data.{option} '{value}'; choose one of "
                                          f"{choices}$"):
        LanguageModelDataModule(train_file="t.txt", **{option: value})
