"""Decoding strategies on hand-built step functions: sequences, stopping, seeds, filters."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq.decoding import check_sampling_options, decode, filter_logits, greedy, sample
from nlpseq.errors import NlpseqError

# A deterministic Markov chain over 5 tokens: 0 -> 1 -> 2 -> 3 -> 4 -> 0; token 4 is eos.
NEXT = [1, 2, 3, 4, 0]
EOS = 4
CHAIN = torch.full((5, 5), -1.0)  # (V, V) row = current token, column = next-token logit
CHAIN[range(5), NEXT] = 2.0
CHAIN[:, 2] += 0.5  # a distractor that never wins


def chain_step(tokens, state):
    return CHAIN[tokens], state  # (B, V)


class Recorder:
    """Wrap a step function; record every input tokens tensor and state."""

    def __init__(self, step_fn):
        self.step_fn, self.inputs, self.states = step_fn, [], []

    def __call__(self, tokens, state):
        self.inputs.append(tokens.clone())
        self.states.append(state)
        return self.step_fn(tokens, state)


def fixed_step(logits):
    """A step function that returns the same (B, V) logits whatever it reads."""
    return lambda tokens, state: (logits, state)


def kept(logits, **kwargs):
    return torch.isfinite(filter_logits(logits, **kwargs)).nonzero()[:, -1].tolist()


# --- greedy -------------------------------------------------------------------------------


def test_greedy_follows_the_chain_for_max_new_tokens():
    out = greedy(chain_step, torch.tensor([0]), None, max_new_tokens=7)
    assert out.dtype == torch.long
    assert out.tolist() == [[1, 2, 3, 4, 0, 1, 2]]


def test_greedy_stops_at_eos_and_pads_finished_rows():
    out = greedy(chain_step, torch.tensor([3, 0]), None, max_new_tokens=10, eos_id=EOS)
    # row 0 reads 3 and emits eos at once; unpadded it would go on 0, 1, 2
    assert out.tolist() == [[4, 4, 4, 4], [1, 2, 3, 4]]


def test_greedy_stops_at_max_new_tokens_before_eos():
    out = greedy(chain_step, torch.tensor([0, 1]), None, max_new_tokens=2, eos_id=EOS)
    assert out.tolist() == [[1, 2], [2, 3]]


def test_one_step_call_per_new_token_on_last_tokens_only():
    step = Recorder(chain_step)
    out = greedy(step, torch.tensor([0, 2]), None, max_new_tokens=6)
    assert len(step.inputs) == 6
    assert all(t.shape == (2,) for t in step.inputs)
    assert step.inputs[0].tolist() == [0, 2]
    fed_back = torch.stack(step.inputs[1:], dim=1)  # (B, N - 1)
    assert torch.equal(fed_back, out[:, :-1])


def test_state_is_threaded_through_steps():
    def counting_step(tokens, state):
        return CHAIN[tokens], state + 1

    step = Recorder(counting_step)
    sample(step, torch.tensor([0]), 10, max_new_tokens=5, generator=torch.Generator())
    assert step.states == [10, 11, 12, 13, 14]


def test_on_token_streams_each_step_in_order():
    seen = []
    out = greedy(chain_step, torch.tensor([3, 0]), None, 10, eos_id=EOS, on_token=seen.append)
    assert len(seen) == out.shape[1] == 4
    assert all(t.shape == (2,) for t in seen)
    assert torch.equal(torch.stack(seen, dim=1), out)


# --- sample -------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [0.1, 1.0, 5.0])
def test_sample_with_top_k_1_is_greedy(temperature):
    start = torch.tensor([0, 1, 2, 3, 4])
    expected = greedy(chain_step, start, None, 8, eos_id=EOS)
    out = sample(
        chain_step,
        start,
        None,
        8,
        temperature=temperature,
        top_k=1,
        eos_id=EOS,
        generator=torch.Generator().manual_seed(0),
    )
    assert torch.equal(out, expected)


def test_sampling_from_outputs_that_are_not_finite_is_one_line():
    """A diverged model (NaN logits) makes torch.multinomial fail deep inside torch."""
    step = fixed_step(torch.full((1, 5), float("nan")))
    with pytest.raises(NlpseqError, match=r"^the model's outputs are not finite numbers, so "
                                          r"there is nothing to sample from"):
        sample(step, torch.zeros(1, dtype=torch.long), None, 3,
               generator=torch.Generator().manual_seed(0))


def test_same_seed_repeats_and_another_seed_differs():
    logits = 0.1 * torch.randn(2, 50, generator=torch.Generator().manual_seed(0))  # (B, V)
    step = fixed_step(logits)

    def run(seed):
        generator = torch.Generator().manual_seed(seed)
        return sample(step, torch.zeros(2, dtype=torch.long), None, 30, generator=generator)

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


def test_sample_frequencies_match_softmax():
    logits = torch.tensor([1.0, 0.5, 0.0, -1.0, 2.0])
    step = fixed_step(logits.expand(4000, 5))  # (B, V)
    tokens = torch.zeros(4000, dtype=torch.long)
    out = sample(step, tokens, None, 1, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(out[:, 0], minlength=5) / 4000
    assert torch.allclose(freq, logits.softmax(-1), atol=0.03)

    cold = sample(
        step, tokens, None, 1, temperature=0.1, generator=torch.Generator().manual_seed(0)
    )
    assert (cold == 4).float().mean() > 0.99


def test_decode_picks_greedy_or_seeded_sample():
    start = torch.tensor([0, 3])
    assert torch.equal(
        decode(chain_step, start, None, 6, greedy=True, temperature=0.0, eos_id=EOS),
        greedy(chain_step, start, None, 6, eos_id=EOS),
    )
    step = fixed_step(torch.zeros(2, 20))
    expected = sample(step, start, None, 6, top_p=0.9, generator=torch.Generator().manual_seed(7))
    assert torch.equal(decode(step, start, None, 6, top_p=0.9, seed=7), expected)


# --- filter_logits ------------------------------------------------------------------------


PROBS = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()  # (1, V) logits with these softmaxes


def test_filter_top_k_and_deterministic_ties():
    assert kept(PROBS, top_k=2) == [0, 1]
    assert kept(torch.tensor([[1.0, 3.0, 1.0, 1.0, 0.0]]), top_k=3) == [0, 1, 2]
    assert kept(PROBS, top_k=10) == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("top_p", "expected"), [(0.8, [0, 1]), (0.81, [0, 1, 2]), (0.5, [0]), (1.0, [0, 1, 2, 3])]
)
def test_filter_top_p_keeps_smallest_prefix(top_p, expected):
    assert kept(PROBS, top_p=top_p) == expected


def test_filter_top_k_and_top_p_together():
    assert kept(PROBS, top_k=3, top_p=0.6) == [0, 1]
    assert kept(PROBS, top_k=2, top_p=0.95) == [0, 1]
    assert kept(PROBS, top_k=1, top_p=0.95) == [0]


def test_filter_keeps_argmax_with_tiny_top_p_and_leaves_input_alone():
    logits = torch.tensor([[0.0, 0.1, 5.0], [2.0, -1.0, 1.9]])  # (B, V)
    original = logits.clone()
    filtered = filter_logits(logits, top_p=1e-9)
    assert torch.isfinite(filtered).tolist() == [[False, False, True], [True, False, False]]
    assert filtered[0, 2] == 5.0
    assert torch.equal(logits, original)


@settings(max_examples=50, deadline=None)
@given(
    rows=st.lists(
        st.lists(st.floats(-5, 5, width=32), min_size=6, max_size=6), min_size=1, max_size=3
    ),
    top_p=st.floats(0.01, 1.0),
)
def test_filter_top_p_property(rows, top_p):
    logits = torch.tensor(rows)  # (B, V)
    keep = torch.isfinite(filter_logits(logits, top_p=top_p))  # (B, V)
    for row, mask in zip(logits.double(), keep, strict=True):
        n = int(mask.sum())
        order = torch.sort(row, descending=True, stable=True).indices
        assert n >= 1 and set(order[:n].tolist()) == set(mask.nonzero()[:, 0].tolist())
        mass = row.softmax(-1)[order].cumsum(-1)  # (V,) float64
        assert mass[n - 1] >= top_p - 1e-5  # reaches top_p ...
        assert n == 1 or mass[n - 2] < top_p + 1e-5  # ... and one fewer would not


# --- option checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"max_new_tokens": 0}, r"max_new_tokens must be a positive integer; got 0$"),
        ({"max_new_tokens": True}, r"max_new_tokens .*; got True"),
        ({"max_new_tokens": 2.0}, r"max_new_tokens .*; got 2\.0"),
        ({"temperature": -1.0}, r"temperature must be .*> 0; got -1\.0 \(use greedy=true"),
        ({"temperature": 0}, r"temperature .*; got 0 "),
        ({"temperature": math.inf}, r"temperature .*; got inf"),
        ({"top_p": 1.5}, r"top_p must be in \(0, 1\]; got 1\.5$"),
        ({"top_p": 0.0}, r"top_p .*; got 0\.0"),
        ({"top_k": 0}, r"top_k must be a positive integer or null; got 0$"),
        ({"top_k": True}, r"top_k .*; got True"),
    ],
)
def test_invalid_options_name_option_and_value(options, match):
    options = {"max_new_tokens": 3, **options}
    with pytest.raises(NlpseqError, match=match):
        check_sampling_options(**options)
    with pytest.raises(NlpseqError, match=match):
        sample(chain_step, torch.tensor([0]), None, **options)


def test_greedy_and_decode_check_options():
    with pytest.raises(NlpseqError, match="max_new_tokens"):
        greedy(chain_step, torch.tensor([0]), None, max_new_tokens=-1)
    with pytest.raises(NlpseqError, match="seed must be an integer or null; got '1'"):
        decode(chain_step, torch.tensor([0]), None, 3, seed="1")
