"""The gradient reaching each hidden state, against a hand computation on a linear RNN:
the probe itself and the training callback that records it."""

import json

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from nlpseq.diagnostics.gradient_flow import GradientProbe, first_to_last_ratio, norms_by_distance
from nlpseq.encoders import RecurrentEncoder
from nlpseq.tasks.callbacks import GradientFlow


def linear_rnn(recurrent_weight: float = 0.5):
    """h_t = relu(x_t + w h_{t-1}): linear for positive inputs."""
    encoder = RecurrentEncoder("rnn", 1, 1, nonlinearity="relu")
    with torch.no_grad():
        encoder.rnn.weight_ih_l0.fill_(1.0)
        encoder.rnn.weight_hh_l0.fill_(recurrent_weight)
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
    torch.testing.assert_close(probe.curve(), torch.tensor([1.0, 0.5, 0.25, 0.125], dtype=float))
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


class LastStateTask(pl.LightningModule):
    """L = sum over rows of h_T of the linear RNN: dL/dh_t = 0.5 ** (T - 1 - t) per row."""

    def __init__(self):
        super().__init__()
        self.model = torch.nn.Module()
        self.model.encoder = linear_rnn()

    def training_step(self, batch, batch_idx):
        return self.model.encoder(batch[0], None).outputs[:, -1].sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)  # the weights stay as set


def test_the_callback_records_the_hand_computed_curve_and_clipping(tmp_path):
    inputs = torch.rand(4, 5, 1) + 0.1  # positive: relu is the identity
    callback = GradientFlow(every_n_steps=2)
    trainer = pl.Trainer(max_steps=3, callbacks=[callback], gradient_clip_val=1e-3,
                         default_root_dir=tmp_path, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(LastStateTask(), DataLoader(TensorDataset(inputs), batch_size=1))
    lines = [json.loads(line) for line in (tmp_path / "gradient_flow.jsonl").open()]
    assert [line["step"] for line in lines] == [0, 2]
    for line in lines:
        assert line["norm_by_distance"] == pytest.approx([1.0, 0.5, 0.25, 0.125, 0.0625])
        assert line["first_over_last"] == pytest.approx(0.0625)
    # the total norm before clipping, against autograd on the fused module (row 0)
    reference = linear_rnn()
    reference(inputs[:1], None).outputs[:, -1].sum().backward()
    expected = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(p.grad) for p in reference.parameters()]))
    assert lines[0]["grad_norm_before_clip"] == pytest.approx(float(expected), rel=1e-5)
    assert callback._clipped == callback._steps == 3  # one epoch; every step past 1e-3


def test_the_curve_ends_at_the_longest_row_and_a_vanished_gradient_reads_zero():
    norms = torch.tensor([[1.0, 2.0, 3.0, 0.0], [4.0, 5.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    curve = norms_by_distance(norms, mask)  # distance 0: (3 + 5) / 2, 1: (2 + 4) / 2, 2: 1
    torch.testing.assert_close(curve, torch.tensor([4.0, 3.0, 1.0]))
    assert first_to_last_ratio(curve) == pytest.approx(0.25)
    vanished = norms_by_distance(torch.tensor([[0.0, 0.2, 1.0]]), torch.ones(1, 3, dtype=bool))
    assert first_to_last_ratio(vanished) == 0.0  # underflow at h_1, not a shorter sequence


def test_a_tiny_but_representable_gradient_is_measured_not_read_as_zero():
    # w = 0.01 over 15 steps: dL/dh_1 = 1e-28, a normal float32 whose square is not
    encoder, probe = linear_rnn(0.01), GradientProbe()
    encoder.diagnostic_forward = probe.forward
    encoder(torch.rand(1, 15, 1) + 0.1, None).outputs[0, -1].sum().backward()
    curve = probe.curve()
    assert curve[14].item() == pytest.approx(1e-28, rel=1e-4)
    assert first_to_last_ratio(curve) == pytest.approx(1e-28, rel=1e-4)
