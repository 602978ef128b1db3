"""The written-out cell equations reproduce torch's RNN, LSTM and GRU (to 1e-5) from the
same weights, padding included, and give the values a hand computation gives."""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlpseq.diagnostics.cells import gru_step, lstm_step, trace, trace_encoder
from nlpseq.encoders import RecurrentEncoder

LENGTHS = torch.tensor([5, 2, 4])


def torch_run(module, inputs, lengths):
    packed = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
    outputs, state = module(packed)
    outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=inputs.shape[1])
    return outputs, state


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_trace_reproduces_torch_outputs_and_final_states(kind, layers, bidirectional):
    torch.manual_seed(0)
    cell, _, nonlinearity = kind.partition("_")
    options = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
    module = getattr(nn, cell.upper())(4, 6, num_layers=layers, bidirectional=bidirectional,
                                       batch_first=True, **options).eval()
    inputs = torch.randn(3, 5, 4)
    expected, state = torch_run(module, inputs, LENGTHS)
    got = trace(module, inputs, LENGTHS)
    torch.testing.assert_close(got.outputs, expected, atol=1e-5, rtol=0)
    hidden = state[0] if cell == "lstm" else state
    torch.testing.assert_close(got.final_hidden, hidden, atol=1e-5, rtol=0)
    if cell == "lstm":
        torch.testing.assert_close(got.final_cell, state[1], atol=1e-5, rtol=0)
        assert set(got.gates[(0, 0)]) == {"input", "forget", "output"}
        assert got.cells[(layers - 1, 0)].shape == (3, 5, 6)
    elif cell == "gru":
        assert set(got.gates[(0, 0)]) == {"reset", "update"}
    else:
        assert got.gates[(0, 0)] == {}
    for gates in got.gates.values():
        for values in gates.values():
            assert values.shape == (3, 5, 6) and 0 <= values.min() and values.max() <= 1
            assert torch.all(values[1, 2:] == 0)  # padded steps of the 2-token row


def test_lstm_and_gru_steps_by_hand():
    zero = torch.zeros
    # all weights and biases 0: every gate is sigmoid(0) = 1/2 and the candidate tanh(0) = 0
    h, c, gates = lstm_step(torch.ones(1, 2), zero(1, 1), torch.ones(1, 1), zero(4, 2),
                            zero(4, 1), zero(4), zero(4))
    assert gates["forget"].item() == 0.5 and c.item() == 0.5  # c' = f c + i g = 0.5
    assert h.item() == pytest.approx(0.5 * math.tanh(0.5))  # h' = o tanh(c')
    h, gates = gru_step(torch.ones(1, 2), torch.full((1, 1), 0.8), zero(3, 2), zero(3, 1),
                        zero(3), zero(3))
    assert gates["update"].item() == 0.5 and h.item() == pytest.approx(0.4)  # (1-z) 0 + z h


def test_trace_refuses_other_modules():
    with pytest.raises(ValueError, match="needs a batch_first nn.RNN, LSTM or GRU"):
        trace(nn.LSTM(2, 3), torch.zeros(1, 2, 2))


@pytest.mark.parametrize("locked_dropout", [False, True])
def test_trace_encoder_reproduces_a_recurrent_encoder(locked_dropout):
    torch.manual_seed(0)
    encoder = RecurrentEncoder("lstm", 4, 6, num_layers=2, bidirectional=True,
                               dropout=0.3, locked_dropout=locked_dropout, weight_drop=0.2)
    encoder.eval()
    inputs = torch.randn(3, 5, 4)
    expected = encoder(inputs, LENGTHS)
    got = trace_encoder(encoder, inputs, LENGTHS)
    torch.testing.assert_close(got.outputs, expected.outputs, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.final_hidden, expected.final_state, atol=1e-5, rtol=0)
    assert sorted(got.gates) == [(0, 0), (0, 1), (1, 0), (1, 1)]
