"""The probe task: readout shapes per probe, losses and scores computed by hand, and a
small LSTM that learns first-token classification."""

from functools import partial

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from nlpseq.data.probes import first_token_task, generate
from nlpseq.encoders import RecurrentEncoder
from nlpseq.errors import NlpseqError
from nlpseq.tasks import ProbeTask


def probe_task(kind, cell="lstm", hidden=8, num_symbols=4, copy_length=3):
    return ProbeTask(partial(RecurrentEncoder, cell, hidden_size=hidden),
                     partial(torch.optim.Adam, lr=0.01), kind, num_symbols, copy_length)


class Fixed(nn.Module):
    """Stands in for the model: returns the same outputs whatever it reads."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs = outputs

    def forward(self, inputs, lengths=None):
        return self.outputs


@pytest.mark.parametrize(("kind", "shape"), [("adding", (5,)), ("first_token", (5, 4)),
                                             ("copy", (5, 3, 4))])
def test_readout_shapes(kind, shape):
    inputs, _ = generate(kind, 5, 12, seed=0, num_symbols=4, copy_length=3)
    assert probe_task(kind)(inputs).shape == shape


def test_adding_loss_is_the_mean_squared_error():
    task = probe_task("adding")
    task.model = Fixed(torch.tensor([1.0, 2.0]))
    loss, score = task.loss_and_score({"inputs": None, "targets": torch.tensor([1.5, 2.0])})
    assert loss.item() == pytest.approx(0.125)  # (0.5**2 + 0) / 2
    torch.testing.assert_close(score, torch.tensor([0.25, 0.0]))
    assert task.score_name == "mse" and task.chance == pytest.approx(1 / 6)


def test_copy_accuracy_counts_each_recalled_symbol():
    task = probe_task("copy", num_symbols=2, copy_length=2)
    # row 0 predicts classes (0, 1) = symbols (1, 2); row 1 predicts (1, 1) = symbols (2, 2)
    logits = torch.tensor([[[5.0, 0.0], [0.0, 5.0]], [[0.0, 5.0], [0.0, 5.0]]])
    task.model = Fixed(logits)
    targets = torch.tensor([[1, 2], [1, 2]])
    loss, score = task.loss_and_score({"inputs": None, "targets": targets})
    torch.testing.assert_close(score, torch.tensor([1.0, 0.5]))
    expected = nn.functional.cross_entropy(logits.reshape(4, 2), (targets - 1).reshape(4))
    assert loss.item() == pytest.approx(expected.item())


def test_a_small_lstm_learns_to_classify_by_the_first_token():
    torch.manual_seed(0)
    task = probe_task("first_token", hidden=16)
    inputs, targets = first_token_task(512, 6, seed=0, num_symbols=4)
    optimizer = torch.optim.Adam(task.parameters(), lr=0.02)
    for step in range(150):
        rows = slice(64 * (step % 8), 64 * (step % 8 + 1))
        loss, _ = task.loss_and_score({"inputs": inputs[rows], "targets": targets[rows]})
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test_inputs, test_targets = first_token_task(500, 6, seed=1, num_symbols=4)
    _, score = task.loss_and_score({"inputs": test_inputs, "targets": test_targets})
    assert score.mean().item() > 0.95  # chance: 0.25


def test_a_bidirectional_encoder_is_refused():
    cfg = OmegaConf.create({"encoder": {"bidirectional": True}})
    with pytest.raises(NlpseqError, match="Set encoder.bidirectional=false"):
        ProbeTask.check_config(cfg)


def test_evaluation_data_must_be_the_same_probe_but_may_be_longer():
    task = probe_task("copy", num_symbols=4, copy_length=3)
    task.check_data(OmegaConf.create({"kind": "copy", "num_symbols": 4, "copy_length": 3,
                                      "length": 500}))
    with pytest.raises(NlpseqError, match=r"the evaluation data has data.num_symbols=8 "
                                          r"\(data.length may differ\)"):
        task.check_data(OmegaConf.create({"kind": "copy", "num_symbols": 8, "copy_length": 3}))
    with pytest.raises(NlpseqError, match="trained on the adding probe with data.kind=adding; "
                                          "the evaluation data has data.kind=copy"):
        probe_task("adding").check_data(OmegaConf.create({"kind": "copy"}))
