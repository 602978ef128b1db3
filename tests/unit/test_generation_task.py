"""GenerationTask: learns and reproduces a sentence, carries state across blocks, samples
repeatably, and reads a prompt once whatever its length."""

import functools
import logging

import pytest
import torch

from nlpseq.encoders import RecurrentEncoder
from nlpseq.tasks import GenerationTask
from nlpseq.tokenization import BOS_ID, EOS_ID, train_tokenizers_tokenizer

SENTENCE = "the quick brown fox jumps over the lazy dog."


def make_task(cell="gru", hidden=48, text=SENTENCE, model="char"):
    torch.manual_seed(0)
    tokenizer = train_tokenizers_tokenizer([text], model=model, vocab_size=100)
    encoder = functools.partial(RecurrentEncoder, cell=cell, hidden_size=hidden, num_layers=1)
    optimizer = functools.partial(torch.optim.Adam, lr=0.02)
    return GenerationTask(encoder, optimizer, vocab_size=tokenizer.vocab_size,
                          embedding_dim=hidden, embedding_dropout=0.0, output_dropout=0.0,
                          char_level=model == "char", tokenizer=tokenizer, start_id=BOS_ID)


def overfit(task, batch, steps):
    """Train ``task`` on one batch for ``steps`` Adam steps; return the last loss and count."""
    optimizer = task.optimizer_factory(task.parameters())
    task.train()
    for _ in range(steps):
        loss, count = task._loss(batch, "train")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss, count


def line_batch(task, text=SENTENCE):
    ids = task.tokenizer.encode(text)
    return {"tokens": torch.tensor([[BOS_ID, *ids]]), "targets": torch.tensor([[*ids, EOS_ID]]),
            "lengths": torch.tensor([len(ids) + 1])}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_a_tiny_model_overfits_a_sentence_then_reproduces_it_greedily(cell):
    task = make_task(cell)
    loss, count = overfit(task, line_batch(task), steps=150)
    assert count == len(SENTENCE) + 1 and loss.item() < 0.05
    assert task.complete("", max_new_tokens=80, greedy=True) == SENTENCE
    assert task.complete("the quick", max_new_tokens=80, greedy=True) == SENTENCE[9:]


def test_a_word_level_continuation_starts_with_the_space_after_the_prompt():
    words = "the quick brown fox jumps over the lazy dog"
    task = make_task(text=words, model="word")
    overfit(task, line_batch(task, words), steps=100)
    pieces: list[str] = []
    text = task.complete("the quick", max_new_tokens=20, greedy=True, on_text=pieces.append)
    assert text == " brown fox jumps over the lazy dog"
    assert "".join(pieces) == text


def test_sampling_with_a_seed_repeats_and_top_k_1_is_greedy():
    task = make_task()
    first = task.complete("the", 40, seed=7, stop_at_eos=False)
    assert task.complete("the", 40, seed=7, stop_at_eos=False) == first
    assert task.complete("the", 40, seed=8, stop_at_eos=False) != first
    greedy = task.complete("the", 40, greedy=True, stop_at_eos=False)
    assert task.complete("the", 40, top_k=1, seed=3, stop_at_eos=False) == greedy


def test_stream_blocks_get_the_state_the_previous_block_ended_with():
    task = make_task("lstm").train()
    seen = []
    forward = task.model.forward

    def spy(tokens, lengths=None, state=None):
        seen.append(state)
        logits, new_state = forward(tokens, lengths, state)
        seen.append(new_state)
        return logits, new_state

    task.model.forward = spy
    ids = torch.randint(4, task.tokenizer.vocab_size, (3, 9))
    for block in range(3):
        task._loss({"tokens": ids, "targets": ids, "lengths": torch.full((3,), 9),
                    "block": torch.tensor(block)}, "train")
    (start0, end0), (start1, end1), (start2, _) = zip(seen[::2], seen[1::2], strict=True)
    assert start0 is None  # block 0 starts from zeros
    for given, ended in ((start1, end0), (start2, end1)):
        for g, e in zip(given, ended, strict=True):
            assert torch.equal(g, e) and not g.requires_grad  # same values, graph cut


def test_the_prompt_is_read_once_and_each_new_token_costs_one_step():
    task = make_task()
    calls = {"forward": [], "step": 0}
    forward, step = task.model.forward, task.model.step

    def count_forward(tokens, lengths=None, state=None):
        calls["forward"].append(tokens.shape[1])
        return forward(tokens, lengths, state)

    def count_step(tokens, state):
        calls["step"] += 1
        return step(tokens, state)

    task.model.forward, task.model.step = count_forward, count_step
    for prompt_length in (10, 1000):
        calls["forward"].clear()
        calls["step"] = 0
        task.generate([BOS_ID] + [5] * prompt_length, 30, stop_at_eos=False, greedy=True)
        # one pass over the prompt (all but its last token), then one step per new token
        assert calls["step"] == 30
        assert calls["forward"] == [prompt_length] + [1] * 30


def test_one_token_steps_run_without_onednn_and_the_setting_comes_back():
    task = make_task(cell="lstm")
    seen, step = [], task.model.step

    def record_backend(tokens, state):
        seen.append(torch.backends.mkldnn.enabled)
        return step(tokens, state)

    task.model.step = record_backend
    before = torch.backends.mkldnn.enabled
    task.generate([BOS_ID, 5, 6], 4, stop_at_eos=False, greedy=True)
    assert seen == [False] * 4
    assert torch.backends.mkldnn.enabled == before


def test_unknown_characters_in_a_prompt_become_unk_with_a_warning(caplog):
    task = make_task()
    with caplog.at_level(logging.WARNING):
        ids = task.prompt_ids("the Xylophone")
    assert ids[0] == BOS_ID and task.tokenizer.unk_id in ids
    assert "unknown to the tokenizer" in caplog.text and "'X'" in caplog.text
