"""RecurrentLanguageModel and its head: tying, projection, state carry, one-step decoding."""

import functools

import pytest
import torch

from nlpseq.encoders import RecurrentEncoder, count_parameters
from nlpseq.errors import NlpseqError
from nlpseq.models import RecurrentLanguageModel

V, E = 11, 8


def make_model(cell="lstm", hidden=E, tie=True, num_layers=2, **encoder_options):
    torch.manual_seed(0)
    encoder = functools.partial(RecurrentEncoder, cell=cell, hidden_size=hidden,
                                num_layers=num_layers, bidirectional=False, **encoder_options)
    return RecurrentLanguageModel(encoder, vocab_size=V, embedding_dim=E, tie_weights=tie).eval()


def tokens(batch=2, steps=7, seed=1):
    return torch.randint(4, V, (batch, steps), generator=torch.Generator().manual_seed(seed))


def test_tied_output_shares_the_embedding_and_saves_its_parameters():
    tied, untied = make_model(tie=True), make_model(tie=False)
    assert tied.head.tied and not untied.head.tied
    assert tied.head.embedding.weight is tied.embedding.weight
    # untied: Linear(H, V) = V*H + V; tied: only the V biases of its own
    assert count_parameters(untied) - count_parameters(tied) == V * E
    logits, _ = tied(tokens())
    assert logits.shape == (2, 7, V)


def test_tying_with_another_hidden_size_projects_to_the_embedding_size():
    model = make_model(hidden=5, tie=True)
    assert model.head.projection.in_features == 5 and model.head.projection.out_features == E
    logits, _ = model(tokens())
    assert logits.shape == (2, 7, V)


def test_a_bidirectional_encoder_is_refused_with_the_fix():
    encoder = functools.partial(RecurrentEncoder, cell="gru", hidden_size=4, bidirectional=True)
    with pytest.raises(NlpseqError, match="unidirectional.*encoder.bidirectional=false"):
        RecurrentLanguageModel(encoder, vocab_size=V, embedding_dim=E)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("locked", [False, True])
def test_carrying_the_state_across_blocks_equals_one_long_pass(cell, locked):
    model = make_model(cell, locked_dropout=locked, dropout=0.3, weight_drop=0.2)
    ids = tokens(steps=12)
    whole, final = model(ids)
    first, state = model(ids[:, :5])
    second, carried = model(ids[:, 5:], None, state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=0, atol=1e-5)
    for a, b in zip(carried if cell == "lstm" else [carried], final if cell == "lstm" else [final],
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_one_step_at_a_time_gives_the_logits_of_the_full_pass(cell):
    model = make_model(cell)
    ids = tokens(steps=6)
    whole, _ = model(ids)
    state = None
    for t in range(ids.size(1)):
        logits, state = model.step(ids[:, t], state)  # (B, V)
        torch.testing.assert_close(logits, whole[:, t], rtol=0, atol=1e-5)


def test_padded_lines_match_each_line_alone():
    model = make_model("gru")
    ids = tokens(steps=6)
    lengths = torch.tensor([6, 3])
    batch, _ = model(ids, lengths)
    alone, _ = model(ids[1:, :3])
    torch.testing.assert_close(batch[1:, :3], alone, rtol=0, atol=1e-5)
