"""The gradient reaching each hidden state, against a hand computation on a linear RNN."""

import pytest
import torch

from nlpseq.diagnostics.gradient_flow import GradientProbe, first_to_last_ratio
from nlpseq.encoders import RecurrentEncoder


def linear_rnn():
    """h_t = relu(x_t + 0.5 h_{t-1}): linear for positive inputs."""
    encoder = RecurrentEncoder("rnn", 1, 1, nonlinearity="relu")
    with torch.no_grad():
        encoder.rnn.weight_ih_l0.fill_(1.0)
        encoder.rnn.weight_hh_l0.fill_(0.5)
        encoder.rnn.bias_ih_l0.zero_()
        encoder.rnn.bias_hh_l0.zero_()
    return encoder


def test_gradient_by_distance_on_a_linear_rnn_by_hand():
    # L = h at each row's last token: dL/dh_t = 0.5 ** (T - 1 - t)
    encoder, probe = linear_rnn(), GradientProbe()
    inputs, lengths = torch.rand(2, 4, 1) + 0.1, torch.tensor([4, 3])
    fused = encoder(inputs, lengths).outputs
    encoder.diagnostic_forward = probe.forward
    outputs = encoder(inputs, lengths).outputs
    torch.testing.assert_close(outputs, fused)  # the probe computes what the model computes
    (outputs[0, 3].sum() + outputs[1, 2].sum()).backward()
    torch.testing.assert_close(probe.curve(), torch.tensor([1.0, 0.5, 0.25, 0.125]))
    assert first_to_last_ratio(probe.curve()) == pytest.approx(0.125)
    assert encoder.rnn.weight_hh_l0.grad is not None  # the step still trains the weights


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_the_probe_reproduces_a_two_layer_encoder_with_state(cell):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(cell, 3, 4, num_layers=2).eval()
    inputs = torch.randn(2, 5, 3)
    first = encoder(inputs[:, :2], None)
    expected = encoder(inputs[:, 2:], None, first.state())
    encoder.diagnostic_forward = GradientProbe().forward
    got = encoder(inputs[:, 2:], None, first.state())
    torch.testing.assert_close(got.outputs, expected.outputs, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.final_state, expected.final_state, atol=1e-5, rtol=0)
