"""ClassificationHead and its poolings: shapes, hand-computed values, masking, 'last' reads."""

import pytest
import torch

from nlpseq.encoders import EncoderOutput, RecurrentEncoder
from nlpseq.errors import NlpseqError
from nlpseq.heads import (
    POOLINGS,
    AttentionPool,
    ClassificationHead,
    attention_pool,
    masked_max,
    masked_mean,
)

LENGTHS = torch.tensor([3, 1, 4])
B, T, IN, H, C = 3, 5, 3, 4, 2


def encode(cell="gru", bidirectional=True, num_layers=2):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(cell, IN, H, num_layers=num_layers, bidirectional=bidirectional)
    inputs = torch.randn(B, T, IN)  # (B, T, I)
    return encoder.eval()(inputs, LENGTHS)


# A hand-made batch: 2 sequences, T = 3, F = 2; the second has one padded step.
OUTPUTS = torch.tensor(
    [
        [[1.0, -2.0], [3.0, -4.0], [5.0, 0.0]],
        [[-1.0, 2.0], [-3.0, -6.0], [99.0, 99.0]],  # last row is padding
    ]
)
MASK = torch.tensor([[True, True, True], [True, True, False]])


def test_masked_mean_by_hand():
    expected = torch.tensor([[(1 + 3 + 5) / 3, (-2 - 4 + 0) / 3], [(-1 - 3) / 2, (2 - 6) / 2]])
    torch.testing.assert_close(masked_mean(OUTPUTS, MASK), expected)


def test_masked_max_by_hand_never_picks_a_pad():
    expected = torch.tensor([[5.0, 0.0], [-1.0, 2.0]])
    torch.testing.assert_close(masked_max(OUTPUTS, MASK), expected)
    all_negative = OUTPUTS - 200  # every real value is now negative...
    all_negative[1, 2] = 0.0  # ...and the pad is the largest entry: it must still lose
    torch.testing.assert_close(masked_max(all_negative, MASK), expected - 200)


def test_attention_pool_by_hand():
    scores = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, 50.0]])  # a big score on a pad
    pooled, weights = attention_pool(OUTPUTS, scores, MASK)
    torch.testing.assert_close(weights, torch.tensor([[1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]]))
    torch.testing.assert_close(pooled, masked_mean(OUTPUTS, MASK))


def test_learned_attention_weights_are_zero_at_pads_and_sum_to_one():
    encoded = encode()
    torch.manual_seed(0)
    pooled, weights = AttentionPool(encoded.outputs.size(-1))(encoded.outputs, encoded.mask)
    assert pooled.shape == (B, 2 * H)
    assert weights.shape == (B, T)
    assert torch.all(weights[~encoded.mask] == 0)
    assert torch.all(weights[encoded.mask] > 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B))
    torch.testing.assert_close(pooled, torch.einsum("bt,btf->bf", weights, encoded.outputs))


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_each_pooling_gives_logits(pooling, cell):
    encoded = encode(cell)
    torch.manual_seed(0)
    head = ClassificationHead(2 * H, C, pooling=pooling, dropout=0.1)
    assert head.output_size == C
    logits = head(encoded)
    assert logits.shape == (B, C)
    assert torch.isfinite(logits).all()
    logits.sum().backward()
    assert all(p.grad is not None for p in head.parameters())


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_last_hidden_reads_true_ends_of_each_direction(cell, num_layers):
    encoded = encode(cell, bidirectional=True, num_layers=num_layers)
    idx = torch.arange(B)
    forward_at_last = encoded.outputs[idx, LENGTHS - 1, :H]  # (B, H)
    backward_at_first = encoded.outputs[:, 0, H:]  # (B, H)
    expected = torch.cat([forward_at_last, backward_at_first], dim=-1)  # (B, 2H)
    torch.testing.assert_close(encoded.last_hidden, expected, rtol=0, atol=1e-6)

    torch.manual_seed(0)
    head = ClassificationHead(2 * H, C, pooling="last")
    torch.testing.assert_close(head.pool(encoded), expected, rtol=0, atol=1e-6)


def test_last_hidden_unidirectional_is_top_layer_final_state():
    encoded = encode("lstm", bidirectional=False, num_layers=2)
    torch.testing.assert_close(encoded.last_hidden, encoded.final_state[-1])
    torch.testing.assert_close(encoded.last_hidden, encoded.outputs[torch.arange(B), LENGTHS - 1])


def test_head_works_on_a_hand_made_encoder_output():
    # Heads need no encoder: any EncoderOutput will do.
    encoded = EncoderOutput(OUTPUTS, MASK, final_state=torch.zeros(1, 2, 2))
    for pooling in POOLINGS:
        assert ClassificationHead(2, C, pooling=pooling)(encoded).shape == (2, C)


def test_unknown_pooling_lists_the_choices():
    with pytest.raises(NlpseqError, match="Unknown pooling 'avg'; choose one of 'last', 'mean'"):
        ClassificationHead(4, C, pooling="avg")


@pytest.mark.parametrize(
    "kwargs", [{"dropout": 1.0}, {"dropout": -0.5}, {"num_classes": 0}, {"input_size": -3}]
)
def test_bad_arguments(kwargs):
    arguments = {"input_size": 4, "num_classes": C, **kwargs}
    with pytest.raises(NlpseqError, match=next(iter(kwargs))):
        ClassificationHead(**arguments)
