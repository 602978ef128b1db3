"""Beam search on hand-built step functions: greedy, exactness, early ends, batching, n_best."""

import itertools
import math
import re

import pytest
import torch

from nlpseq.decoding import BeamResult, beam_search, greedy, length_penalty
from nlpseq.errors import NlpseqError


def markov(table):
    """A first-order Markov "model": logits of the next token = table[current token]."""
    return lambda tokens, state: (table[tokens], state)  # (M, V)


def keep_state(state, index):
    return state  # a stateless toy: nothing to reorder


def pick_rows(state, index):
    return state[index.flatten()]


class ToyRnn:
    """A tiny Elman RNN whose state (M, H) depends on every token read so far."""

    def __init__(self, vocab, hidden=8, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.randn(vocab, hidden, generator=g)  # (V, H)
        self.w = torch.randn(hidden, hidden, generator=g) / hidden**0.5  # (H, H)
        self.out = 2 * torch.randn(hidden, vocab, generator=g)  # (H, V)

    def __call__(self, tokens, state):
        h = torch.tanh(state @ self.w + self.emb[tokens])  # (M, H)
        return h @ self.out, h  # (M, V)


class Recorder:
    """Wrap a step function; record the tokens of every call."""

    def __init__(self, step_fn):
        self.step_fn, self.inputs = step_fn, []

    def __call__(self, tokens, state):
        self.inputs.append(tokens.clone())
        return self.step_fn(tokens, state)


def rescore(step_fn, start, state, seq, max_len, eos, alpha):
    """The length-penalised score of `seq` from `start`, recomputed one row at a time."""
    full = seq + ([eos] if len(seq) < max_len else [])  # eos unless cut at max length
    tokens, total = torch.tensor([start]), 0.0
    for token in full:
        logits, state = step_fn(tokens, state)  # (1, V)
        total += logits.float().log_softmax(-1)[0, token].item()
        tokens = torch.tensor([token])
    return total / length_penalty(len(full), alpha).item()


def hypotheses(result, row):
    """[(tokens, score)] of one row, best first, tokens cut at their length."""
    lengths, scores = result.lengths[row].tolist(), result.scores[row].tolist()
    return [
        (result.tokens[row, n, :length].tolist(), score)
        for n, (length, score) in enumerate(zip(lengths, scores, strict=True))
    ]


def random_table(vocab, seed, scale=2.0):
    return scale * torch.randn(vocab, vocab, generator=torch.Generator().manual_seed(seed))


# --- length penalty -----------------------------------------------------------------------


def test_length_penalty_is_gnmt():
    lengths = torch.tensor([1, 2, 7])
    assert torch.equal(length_penalty(lengths, 0.0), torch.ones(3))
    assert torch.allclose(length_penalty(lengths, 1.0), torch.tensor([1.0, 7 / 6, 2.0]))
    assert torch.allclose(length_penalty(lengths, 0.6), (torch.tensor([6, 7, 12]) / 6) ** 0.6)


# --- beam_size 1 is greedy ----------------------------------------------------------------


@pytest.mark.parametrize("toy", ["markov", "rnn"])
def test_beam_size_1_matches_greedy(toy):
    vocab, eos, max_len, batch = 8, 0, 8, 12
    if toy == "markov":
        table = random_table(vocab, seed=5)
        table[:, eos] -= 2.0  # some rows end early, others reach max_len
        step, state, reorder = markov(table), None, keep_state
    else:
        step, reorder = ToyRnn(vocab, seed=1), pick_rows
        state = torch.randn(batch, 8, generator=torch.Generator().manual_seed(2))  # (B, H)
    start = torch.arange(batch) % (vocab - 1) + 1
    expected = greedy(step, start, state, max_len, eos_id=eos)  # (B, N) with eos
    result = beam_search(
        step, start, state, beam_size=1, max_lengths=max_len, eos_id=eos, reorder_state=reorder
    )
    assert isinstance(result, BeamResult)
    assert result.tokens.shape[:2] == (batch, 1)
    ended = 0
    for row in range(batch):
        seq = expected[row].tolist()
        seq = seq[: seq.index(eos)] if eos in seq else seq
        ended += len(seq) < max_len
        assert hypotheses(result, row)[0][0] == seq
    assert 0 < ended < batch  # both stopping rules were exercised


# --- exactness against brute force --------------------------------------------------------


def brute_force(step_fn, start, state, eos, max_len, alpha):
    """Every hypothesis (ends with eos, or reaches max_len) with its score, best first."""
    words = [t for t in range(4) if t != eos]
    found = []
    for n in range(max_len + 1):
        for seq in itertools.product(words, repeat=n):
            score = rescore(step_fn, start, state, list(seq), max_len, eos, alpha)
            found.append((list(seq), score))
    return sorted(found, key=lambda h: -h[1])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_large_beam_is_exact(alpha, seed):
    # an RNN, not a Markov table: permuted transitions would give exact ties in score
    vocab, eos, max_len = 4, 3, 4
    rnn = ToyRnn(vocab, seed=seed)
    h0 = torch.zeros(1, 8)  # (B, H)
    result = beam_search(
        rnn,
        torch.tensor([0]),
        h0,
        beam_size=vocab**max_len,  # never prunes: 4 ** 4 exceeds the hypotheses of any step
        max_lengths=max_len,
        eos_id=eos,
        alpha=alpha,
        n_best=5,
        reorder_state=pick_rows,
    )
    expected = brute_force(rnn, 0, h0, eos, max_len, alpha)[:5]
    got = hypotheses(result, 0)
    assert [seq for seq, _ in got] == [seq for seq, _ in expected]
    assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)


# --- the best hypothesis ends early -------------------------------------------------------

A, B, C, EOS = 1, 2, 3, 4  # token 0 is <bos>


def table_from(probs):
    """Markov logits from next-token probabilities {current: {next: p}}; the rest share 1e-3."""
    table = torch.full((5, 5), 1e-3)
    for current, row in probs.items():
        for token, p in row.items():
            table[current, token] = p
    return (table / table.sum(-1, keepdim=True)).log()


def test_early_eos_wins_although_greedy_goes_on():
    # eos at once has p = 0.4; every longer path starts with a (0.6) but then spreads out
    table = table_from({0: {A: 0.6, EOS: 0.4}, A: {B: 0.35, C: 0.33, EOS: 0.3}})
    step = Recorder(markov(table))
    start = torch.tensor([0])
    assert greedy(markov(table), start, None, 6, eos_id=EOS)[0, :2].tolist() == [A, B]
    result = beam_search(
        step, start, None, beam_size=2, max_lengths=6, eos_id=EOS, reorder_state=keep_state
    )
    assert result.lengths.tolist() == [[0]]
    assert result.tokens.shape == (1, 1, 0)
    assert result.scores[0, 0].item() == pytest.approx(table[0, EOS].item())
    # after step 2 no alive hypothesis (p <= 0.6 * 0.35) can beat 0.4: stop there
    assert len(step.inputs) == 2


def test_stops_only_when_no_alive_hypothesis_can_win():
    # eos first ranks best at step 1 (0.5 vs 0.48), but with alpha = 1 "a eos" scores higher
    table = table_from({0: {A: 0.48, EOS: 0.5}, A: {EOS: 0.98}})
    start = torch.tensor([0])

    def run(alpha, n_best):
        return beam_search(
            markov(table), start, None, beam_size=2, max_lengths=6, eos_id=EOS, alpha=alpha,
            n_best=n_best, reorder_state=keep_state,
        )  # fmt: skip

    long_wins = hypotheses(run(1.0, n_best=2), 0)
    assert [seq for seq, _ in long_wins] == [[A], []]
    expected = (table[0, A] + table[A, EOS]).item() / (7 / 6)
    assert long_wins[0][1] == pytest.approx(expected)
    # with n_best = 1 the finished "eos" alone must not stop the search after step 1
    assert [seq for seq, _ in hypotheses(run(1.0, n_best=1), 0)] == [[A]]
    assert [seq for seq, _ in hypotheses(run(0.0, n_best=2), 0)] == [[], [A]]


def test_finished_hypothesis_leaves_the_beam_and_its_slot_is_refilled():
    # eos ranks first at step 1; both beams must then follow a and b, and "b eos" is second
    table = table_from(
        {0: {EOS: 0.5, A: 0.3, B: 0.2}, A: {A: 0.33, B: 0.33, C: 0.33}, B: {EOS: 0.99}}
    )
    result = beam_search(
        markov(table), torch.tensor([0]), None, beam_size=2, max_lengths=3, eos_id=EOS,
        n_best=2, reorder_state=keep_state,
    )  # fmt: skip
    assert [seq for seq, _ in hypotheses(result, 0)] == [[], [B]]


# --- batching, n_best, max lengths --------------------------------------------------------


def test_batched_rows_equal_rows_alone():
    rnn, eos = ToyRnn(7, seed=3), 0
    start = torch.tensor([1, 2, 3])
    h0 = torch.randn(3, 8, generator=torch.Generator().manual_seed(4))  # (B, H)
    max_lengths = torch.tensor([2, 6, 4])
    options = dict(beam_size=3, eos_id=eos, alpha=0.7, n_best=2, reorder_state=pick_rows)
    step = Recorder(rnn)
    batched = beam_search(step, start, h0, max_lengths=max_lengths, **options)
    for row in range(3):
        alone = beam_search(
            rnn, start[row : row + 1], h0[row : row + 1], max_lengths=int(max_lengths[row]),
            **options,
        )  # fmt: skip
        got, expected = hypotheses(batched, row), hypotheses(alone, 0)
        assert [seq for seq, _ in got] == [seq for seq, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=1e-5)
    assert step.inputs[0].shape == (3,)  # the first step reads each row once
    assert step.inputs[1].shape == (9,)  # then K = 3 hypotheses a row
    assert all(len(t) <= 6 for t in step.inputs[2:])  # row 0 (max length 2) left the batch


def test_n_best_sorted_distinct_and_scores_match_the_model():
    vocab, eos, n_best = 9, 0, 4
    rnn = ToyRnn(vocab, seed=5)
    start = torch.tensor([1, 4])
    h0 = torch.randn(2, 8, generator=torch.Generator().manual_seed(6))  # (B, H)
    max_lengths = torch.tensor([5, 3])
    result = beam_search(
        rnn, start, h0, beam_size=5, max_lengths=max_lengths, eos_id=eos, alpha=0.6,
        n_best=n_best, reorder_state=pick_rows,
    )  # fmt: skip
    assert result.tokens.shape[:2] == result.lengths.shape == result.scores.shape == (2, n_best)
    for row in range(2):
        hyps = hypotheses(result, row)
        scores = [s for _, s in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(seq) for seq, _ in hyps}) == n_best
        max_len = int(max_lengths[row])
        for seq, score in hyps:
            assert len(seq) <= max_len and eos not in seq
            # a wrong reorder_state would feed a hypothesis another beam's state
            expected = rescore(rnn, int(start[row]), h0[row : row + 1], seq, max_len, eos, 0.6)
            assert score == pytest.approx(expected, abs=1e-5)


def test_max_lengths_per_row_and_padding():
    vocab, eos, pad = 6, 5, 9
    table = random_table(vocab, seed=7)
    table[:, eos] = -20.0  # eos (almost) never: hypotheses run to their max length
    max_lengths = torch.tensor([1, 3, 5])
    start = torch.tensor([0, 1, 2])
    options = dict(beam_size=3, eos_id=eos, pad_id=pad, n_best=2, reorder_state=keep_state)
    result = beam_search(markov(table), start, None, max_lengths=max_lengths, **options)
    assert result.tokens.dtype == result.lengths.dtype == torch.long
    assert result.tokens.shape == (3, 2, 5)
    assert torch.equal(result.lengths, max_lengths.unsqueeze(1).expand(3, 2))
    for row in range(3):
        for n in range(2):
            length = int(result.lengths[row, n])
            assert (result.tokens[row, n, length:] == pad).all()
            assert (result.tokens[row, n, :length] < eos).all()
    # an int max length is the same as a tensor of it
    as_int = beam_search(markov(table), start, None, max_lengths=3, **options)
    as_tensor = beam_search(markov(table), start, None, max_lengths=torch.full((3,), 3), **options)
    assert torch.equal(as_int.tokens, as_tensor.tokens)
    assert torch.equal(as_int.scores, as_tensor.scores)


# --- bad arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"beam_size": 0}, "beam_size must be an integer >= 1; got 0"),
        ({"beam_size": 2.0}, "beam_size must be an integer >= 1; got 2.0"),
        ({"n_best": 3}, "n_best must be an integer in [1, beam_size=2]; got 3"),
        ({"n_best": 0}, "n_best must be an integer in [1, beam_size=2]; got 0"),
        ({"alpha": -0.5}, "alpha must be >= 0; got -0.5"),
        ({"max_lengths": 0}, "max_lengths must be >= 1; got 0"),
        ({"max_lengths": torch.tensor([3, 0])}, "max_lengths must be >= 1; got [3, 0]"),
        ({"max_lengths": torch.tensor([3])}, "max_lengths must be an int or a (2,) integer"),
    ],
)
def test_bad_arguments_raise_one_line_errors(options, message):
    kwargs = dict(beam_size=2, max_lengths=3, eos_id=0, reorder_state=keep_state) | options
    with pytest.raises(NlpseqError, match=re.escape(message)) as error:
        beam_search(markov(random_table(4, 0)), torch.tensor([1, 2]), None, **kwargs)
    assert "\n" not in str(error.value)


def test_too_small_vocabulary_pads_with_empty_hypotheses():
    # V = 2 and max length 1 allow only two hypotheses; the third is empty and scores -inf
    result = beam_search(
        markov(torch.zeros(2, 2)), torch.tensor([0]), None, beam_size=3, max_lengths=1,
        eos_id=1, n_best=3, reorder_state=keep_state,
    )  # fmt: skip
    assert sorted(result.lengths[0, :2].tolist()) == [0, 1]  # "eos" and "0", tied
    assert result.lengths[0, 2].item() == 0
    assert result.scores[0, :2].tolist() == pytest.approx([math.log(0.5)] * 2)
    assert result.scores[0, 2].item() == -math.inf
