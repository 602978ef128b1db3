"""Dense execution of padded batches gives what packing gives: outputs, final states and
every gradient, for the three cells, one or two directions and layers, any lengths."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nlpseq.encoders import RecurrentEncoder
from nlpseq.encoders.dense import reverse_within_lengths
from nlpseq.errors import NlpseqError

IN, H = 3, 5
TOLERANCE = 1e-5

CASES = [
    pytest.param(cell, bidirectional, num_layers,
                 id=f"{cell}-D{1 + bidirectional}-L{num_layers}")
    for cell in ("rnn", "lstm", "gru")
    for bidirectional in (False, True)
    for num_layers in (1, 2)
]
LENGTHS = {
    "mixed": [7, 1, 4, 7, 2, 5],  # unsorted, with a length-1 row and T > some rows
    "one-short": [9, 9, 9, 3],
    "all-equal": [6, 6, 6],
    "all-one": [1, 1],
    "padded-beyond-longest": [2, 5, 3],  # T = 8 below: steps 5-7 are padding in every row
}


def encoders(cell, bidirectional, num_layers, **options):
    """The same weights under both executions."""
    torch.manual_seed(0)
    packed = RecurrentEncoder(cell, IN, H, num_layers=num_layers, bidirectional=bidirectional,
                              execution="packed", **options)
    dense = RecurrentEncoder(cell, IN, H, num_layers=num_layers, bidirectional=bidirectional,
                             execution="dense", **options)
    dense.load_state_dict(packed.state_dict())
    return packed.eval(), dense.eval()


def run(encoder, inputs, lengths, initial_state=None):
    """Outputs, final states, and the gradients of a loss that reads all of them."""
    inputs = inputs.clone().requires_grad_(True)
    encoder.zero_grad()
    out = encoder(inputs, lengths, initial_state)
    weights = torch.linspace(-1, 1, out.outputs.numel()).view_as(out.outputs)
    loss = (out.outputs * weights).sum() + out.final_state.pow(2).sum()
    if out.final_cell is not None:
        loss = loss + out.final_cell.sin().sum()
    loss.backward()
    grads = {name: p.grad.clone() for name, p in encoder.named_parameters()}
    return out, inputs.grad, grads


def assert_same(packed_run, dense_run, mask):
    (p_out, p_dx, p_grads), (d_out, d_dx, d_grads) = packed_run, dense_run
    assert torch.equal(p_out.mask, d_out.mask)
    torch.testing.assert_close(d_out.outputs, p_out.outputs, atol=TOLERANCE, rtol=0)
    assert not d_out.outputs[~mask].any()  # exactly zero at padding
    torch.testing.assert_close(d_out.final_state, p_out.final_state, atol=TOLERANCE, rtol=0)
    if p_out.final_cell is None:
        assert d_out.final_cell is None
    else:
        torch.testing.assert_close(d_out.final_cell, p_out.final_cell, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(d_dx, p_dx, atol=TOLERANCE, rtol=0)
    assert d_grads.keys() == p_grads.keys()
    for name in p_grads:
        torch.testing.assert_close(d_grads[name], p_grads[name], atol=TOLERANCE, rtol=0,
                                   msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("lengths", list(LENGTHS.values()), ids=list(LENGTHS))
@pytest.mark.parametrize("cell, bidirectional, num_layers", CASES)
def test_dense_equals_packed(cell, bidirectional, num_layers, lengths):
    packed, dense = encoders(cell, bidirectional, num_layers)
    lengths = torch.tensor(lengths)
    T = 8 if len(lengths) == 3 and lengths.max() == 5 else int(lengths.max())
    inputs = torch.randn(len(lengths), T, IN, generator=torch.Generator().manual_seed(1))
    mask = torch.arange(T)[None, :] < lengths[:, None]
    assert_same(run(packed, inputs, lengths), run(dense, inputs, lengths), mask)


@pytest.mark.parametrize("cell, bidirectional, num_layers", CASES)
def test_dense_equals_packed_from_an_initial_state(cell, bidirectional, num_layers):
    packed, dense = encoders(cell, bidirectional, num_layers)
    lengths = torch.tensor([4, 2, 6])
    inputs = torch.randn(3, 6, IN, generator=torch.Generator().manual_seed(2))
    shape = (num_layers * (1 + bidirectional), 3, H)
    h0 = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    state = (h0, h0.flip(1).cos()) if cell == "lstm" else h0
    mask = torch.arange(6)[None, :] < lengths[:, None]
    assert_same(run(packed, inputs, lengths, state), run(dense, inputs, lengths, state), mask)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_dense_equals_packed_with_a_locked_dropout_stack(cell):
    packed, dense = encoders(cell, True, 2, locked_dropout=True, dropout=0.3)
    lengths = torch.tensor([5, 1, 3])
    inputs = torch.randn(3, 5, IN, generator=torch.Generator().manual_seed(4))
    mask = torch.arange(5)[None, :] < lengths[:, None]
    assert_same(run(packed, inputs, lengths), run(dense, inputs, lengths), mask)


@settings(max_examples=25, deadline=None)
@given(cell=st.sampled_from(["rnn", "lstm", "gru"]), bidirectional=st.booleans(),
       lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6), seed=st.integers(0, 99))
def test_dense_equals_packed_for_any_lengths(cell, bidirectional, lengths, seed):
    packed, dense = encoders(cell, bidirectional, 2)
    lengths = torch.tensor(lengths)
    T = int(lengths.max()) + seed % 3
    inputs = torch.randn(len(lengths), T, IN, generator=torch.Generator().manual_seed(seed))
    mask = torch.arange(T)[None, :] < lengths[:, None]
    assert_same(run(packed, inputs, lengths), run(dense, inputs, lengths), mask)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_mode_dropout_and_weight_drop_still_act_in_dense_execution(cell):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(cell, IN, H, num_layers=2, dropout=0.5, weight_drop=0.5,
                               execution="dense").train()
    lengths = torch.tensor([4, 2])
    inputs = torch.randn(2, 4, IN)
    first = encoder(inputs, lengths).outputs
    second = encoder(inputs, lengths).outputs
    assert not torch.allclose(first, second)  # fresh masks each call
    encoder.eval()
    torch.testing.assert_close(encoder(inputs, lengths).outputs, encoder(inputs, lengths).outputs)


def test_reverse_within_lengths_by_hand():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 0, 0, 0]]).float()[..., None]  # (3, 4, 1)
    reversed_ = reverse_within_lengths(x, torch.tensor([3, 2, 1]))[..., 0]
    assert reversed_.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0], [6, 0, 0, 0]]


def test_auto_packs_on_a_gpu_and_short_padded_batches_on_a_cpu():
    encoder = RecurrentEncoder("gru", IN, H)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    long_batch, bucketed, short_padded = (torch.tensor([300, 20]), torch.tensor([12, 11, 12]),
                                          torch.tensor([16, 4, 9]))  # padding 0.94, 0.03, 0.40
    assert encoder.execution_for(cpu, long_batch) == "dense"
    assert encoder.execution_for(cpu, bucketed) == "dense"
    assert encoder.execution_for(cpu, short_padded) == "packed"
    assert encoder.execution_for(cpu, torch.tensor([17, 4, 9])) == "dense"  # longer than 16
    assert encoder.execution_for(gpu, long_batch) == "packed"
    forced = RecurrentEncoder("gru", IN, H, execution="dense")
    assert forced.execution_for(gpu, short_padded) == "dense"


def test_unknown_execution_names_the_choices():
    with pytest.raises(NlpseqError, match="Unknown execution 'fast'; choose one of 'auto', "
                                          "'packed', 'dense'"):
        RecurrentEncoder("gru", IN, H, execution="fast")


def test_equal_lengths_never_pack(monkeypatch):
    import nlpseq.encoders.recurrent as recurrent

    def refuse(*args, **kwargs):
        raise AssertionError("packed")

    monkeypatch.setattr(recurrent, "pack_padded_sequence", refuse)
    encoder = RecurrentEncoder("lstm", IN, H, bidirectional=True, execution="packed")
    out = encoder(torch.randn(2, 5, IN), torch.tensor([3, 3]))
    assert out.outputs.shape == (2, 5, 2 * H) and not out.outputs[:, 3:].any()
