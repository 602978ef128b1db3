"""RecurrentEncoder: shapes, padding never leaks, true final states, parameter counts, errors."""


import pytest
import torch

from nlpseq.encoders import (
    EncoderOutput,
    RecurrentEncoder,
    count_parameters,
    expected_parameter_count,
    matched_hidden_size,
)
from nlpseq.encoders.regularization import LockedDropout
from nlpseq.errors import NlpseqError
from nlpseq.heads import POOLINGS, ClassificationHead

IN, H = 3, 4  # tiny input and hidden sizes
LENGTHS = torch.tensor([5, 2, 4, 1])  # unsorted on purpose; T = 6 > max length
T = 6

CONFIGS = [
    pytest.param(cell, bidirectional, num_layers, id=f"{cell}-D{1 + bidirectional}-L{num_layers}")
    for cell in ("rnn", "lstm", "gru")
    for bidirectional in (False, True)
    for num_layers in (1, 2)
]


def make_encoder(cell, bidirectional, num_layers, **kwargs):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(
        cell, IN, H, num_layers=num_layers, bidirectional=bidirectional, **kwargs
    )
    return encoder.eval()


def make_inputs(lengths=LENGTHS, total=T, seed=1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(len(lengths), total, IN, generator=generator)  # (B, T, I)


def pad_mask(lengths=LENGTHS, total=T):
    return torch.arange(total)[None, :] < lengths[:, None]  # (B, T)


def with_garbage_at_pads(inputs, lengths=LENGTHS):
    pads = ~pad_mask(lengths, inputs.size(1))
    garbage = 100 * torch.randn(inputs.shape, generator=torch.Generator().manual_seed(7))
    return torch.where(pads[..., None], garbage, inputs)


@pytest.mark.parametrize("cell, bidirectional, num_layers", CONFIGS)
def test_shapes(cell, bidirectional, num_layers):
    encoder = make_encoder(cell, bidirectional, num_layers)
    D, B = 1 + bidirectional, len(LENGTHS)
    out = encoder(make_inputs(), LENGTHS)

    assert isinstance(out, EncoderOutput)
    assert encoder.num_directions == D
    assert encoder.output_size == D * H
    assert out.outputs.shape == (B, T, D * H)
    assert out.mask.dtype == torch.bool and torch.equal(out.mask, pad_mask())
    assert out.final_state.shape == (num_layers * D, B, H)
    assert out.last_hidden.shape == (B, D * H)
    if cell == "lstm":
        assert out.final_cell.shape == (num_layers * D, B, H)
        h, c = out.state()
        assert h is out.final_state and c is out.final_cell
    else:
        assert out.final_cell is None
        assert out.state() is out.final_state


@pytest.mark.parametrize("cell, bidirectional, num_layers", CONFIGS)
def test_padding_does_not_leak(cell, bidirectional, num_layers):
    encoder = make_encoder(cell, bidirectional, num_layers)
    inputs = make_inputs()
    clean = encoder(inputs, LENGTHS)
    dirty = encoder(with_garbage_at_pads(inputs), LENGTHS)
    real = pad_mask()

    assert torch.all(clean.outputs[~real] == 0)
    assert torch.all(dirty.outputs[~real] == 0)
    assert torch.equal(clean.outputs, dirty.outputs)
    assert torch.equal(clean.final_state, dirty.final_state)
    if cell == "lstm":
        assert torch.equal(clean.final_cell, dirty.final_cell)
    for pooling in POOLINGS:
        torch.manual_seed(0)
        head = ClassificationHead(encoder.output_size, 3, pooling=pooling).eval()
        torch.testing.assert_close(head(clean), head(dirty), rtol=0, atol=0)


@pytest.mark.parametrize("cell, bidirectional, num_layers", CONFIGS)
def test_final_state_matches_unpadded_run(cell, bidirectional, num_layers):
    encoder = make_encoder(cell, bidirectional, num_layers)
    inputs = make_inputs()
    batch = encoder(inputs, LENGTHS)

    for i, length in enumerate(LENGTHS.tolist()):
        alone = encoder(inputs[i : i + 1, :length], torch.tensor([length]))  # (1, T_i, I)
        torch.testing.assert_close(
            batch.final_state[:, i : i + 1], alone.final_state, rtol=0, atol=1e-6
        )
        torch.testing.assert_close(
            batch.outputs[i : i + 1, :length], alone.outputs, rtol=0, atol=1e-6
        )
        if cell == "lstm":
            torch.testing.assert_close(
                batch.final_cell[:, i : i + 1], alone.final_cell, rtol=0, atol=1e-6
            )


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_initial_state_round_trips(cell, num_layers):
    """Feeding state() back in equals running both halves as one sequence (one direction)."""
    encoder = make_encoder(cell, bidirectional=False, num_layers=num_layers)
    inputs = make_inputs(lengths=torch.tensor([6, 6]))  # (2, 6, I), no padding
    whole = encoder(inputs, torch.tensor([6, 6]))
    first = encoder(inputs[:, :3], torch.tensor([3, 3]))
    second = encoder(inputs[:, 3:], torch.tensor([3, 3]), initial_state=first.state())
    torch.testing.assert_close(second.final_state, whole.final_state, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cell, bidirectional, num_layers", CONFIGS)
def test_gradient_reaches_real_tokens_only(cell, bidirectional, num_layers):
    encoder = make_encoder(cell, bidirectional, num_layers)
    inputs = make_inputs().requires_grad_()
    out = encoder(inputs, LENGTHS)
    loss = out.outputs.sum() + out.final_state.sum()
    if out.final_cell is not None:
        loss = loss + out.final_cell.sum()
    loss.backward()

    real = pad_mask()
    assert torch.all(inputs.grad[~real] == 0)
    assert torch.all(inputs.grad[real].abs().sum(-1) > 0)


@pytest.mark.parametrize("cell, bidirectional, num_layers", CONFIGS)
def test_parameter_count_closed_form(cell, bidirectional, num_layers):
    encoder = make_encoder(cell, bidirectional, num_layers)
    assert count_parameters(encoder) == expected_parameter_count(
        cell, IN, H, num_layers, bidirectional
    )


@pytest.mark.parametrize(
    "cell, expected",
    # input 3, hidden 2, one layer, one direction: g * (2*3 + 2*2 + 2*2) = g * 14
    [("rnn", 14), ("gru", 42), ("lstm", 56)],
)
def test_parameter_count_by_hand(cell, expected):
    assert count_parameters(RecurrentEncoder(cell, 3, 2)) == expected
    assert expected_parameter_count(cell, 3, 2, 1, False) == expected


def test_parameter_count_by_hand_deep_bidirectional():
    # GRU, input 3, hidden 2, two layers, two directions: 3 gates per layer and direction.
    # layer 0: 2 * 3 * (2*3 + 2*2 + 2*2) = 84; layer 1 (input 2*2): 2 * 3 * (2*4 + 4 + 4) = 96
    encoder = RecurrentEncoder("gru", 3, 2, num_layers=2, bidirectional=True)
    assert count_parameters(encoder) == 84 + 96 == 180


def test_relu_rnn_is_built_and_dropout_ignored_for_one_layer(recwarn):
    encoder = RecurrentEncoder("rnn", IN, H, dropout=0.5, nonlinearity="relu")
    assert encoder.rnn.nonlinearity == "relu"
    assert encoder.rnn.dropout == 0.0
    assert not [w for w in recwarn if "dropout" in str(w.message)]
    assert RecurrentEncoder("lstm", IN, H, num_layers=2, dropout=0.5).rnn.dropout == 0.5


def test_unknown_cell_names_the_choices():
    with pytest.raises(NlpseqError, match=r"Unknown cell 'lsmt'; choose one of 'rnn', .*'gru'"):
        RecurrentEncoder("lsmt", IN, H)
    with pytest.raises(NlpseqError, match="lsmt"):
        expected_parameter_count("lsmt", IN, H, 1, False)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_relu_only_for_rnn(cell):
    with pytest.raises(NlpseqError, match=r"nonlinearity='relu' applies to cell='rnn' only"):
        RecurrentEncoder(cell, IN, H, nonlinearity="relu")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"hidden_size": -1}, "hidden_size"),
        ({"input_size": 0}, "input_size"),
        ({"num_layers": 0}, "num_layers"),
        ({"dropout": 1.0}, "dropout"),
        ({"dropout": -0.1}, "dropout"),
        ({"nonlinearity": "sigmoid"}, "Unknown nonlinearity 'sigmoid'; choose one of 'tanh'"),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"cell": "rnn", "input_size": IN, "hidden_size": H, **kwargs}
    with pytest.raises(NlpseqError, match=message):
        RecurrentEncoder(**arguments)


@pytest.mark.parametrize("lengths", [[5, 0, 4, 1], [7, 2, 4, 1]])
def test_lengths_out_of_range(lengths):
    encoder = make_encoder("gru", False, 1)
    with pytest.raises(NlpseqError, match=r"lengths must lie in \[1, 6\]"):
        encoder(make_inputs(), torch.tensor(lengths))


def test_configs_differ_only_in_cell_and_match_the_signature():
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from nlpseq.config.folder import config_dir
    with initialize_config_dir(config_dir(), version_base="1.3"):  # cells extend one base
        loaded = {cell: OmegaConf.to_container(compose("train", [f"encoder={cell}"]).encoder)
                  for cell in ("rnn", "lstm", "gru")}
    for cell, cfg in loaded.items():
        assert cfg.pop("cell") == cell
    assert loaded["rnn"] == loaded["lstm"] == loaded["gru"]

    cfg = loaded["rnn"]
    assert cfg.pop("_target_") == "nlpseq.encoders.RecurrentEncoder"
    assert cfg.pop("_partial_") is True
    for cell in ("rnn", "lstm", "gru"):  # input_size comes from the model at run time
        assert RecurrentEncoder(cell=cell, input_size=IN, **cfg).output_size == 2 * 256


def copy_fused_into_stack(fused: RecurrentEncoder, stacked: RecurrentEncoder) -> None:
    """Give each single-layer module of the locked stack the weights of the fused layer."""
    fused_weights = dict(fused.rnn.named_parameters())
    for i, layer in enumerate(stacked.rnn.layers):
        for name, parameter in layer.named_parameters():
            with torch.no_grad():
                parameter.copy_(fused_weights[name.replace("_l0", f"_l{i}")])


@pytest.mark.parametrize("cell, bidirectional, num_layers",
                         [c for c in CONFIGS if c.values[2] == 2])
def test_locked_stack_computes_what_the_fused_stack_computes(cell, bidirectional, num_layers):
    fused = make_encoder(cell, bidirectional, num_layers, dropout=0.5)
    stacked = make_encoder(cell, bidirectional, num_layers, dropout=0.5, locked_dropout=True)
    assert count_parameters(stacked) == count_parameters(fused)
    copy_fused_into_stack(fused, stacked)
    inputs = make_inputs()
    initial = fused(inputs, LENGTHS).state()  # any non-zero initial state
    expected, got = fused(inputs, LENGTHS, initial), stacked(inputs, LENGTHS, initial)
    torch.testing.assert_close(got.outputs, expected.outputs, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.final_state, expected.final_state, rtol=0, atol=1e-6)
    if cell == "lstm":
        torch.testing.assert_close(got.final_cell, expected.final_cell, rtol=0, atol=1e-6)


def test_locked_dropout_drops_the_same_features_at_every_step():
    torch.manual_seed(0)
    drop = LockedDropout(0.5).train()
    out = drop(torch.ones(8, 20, 16))  # (B, T, F)
    assert torch.equal(out, out[:, :1].expand_as(out))  # one mask per sequence
    assert set(out.unique().tolist()) == {0.0, 2.0}  # kept features scaled by 1 / (1 - p)
    assert torch.equal(drop.eval()(out), out)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_weight_drop_acts_in_training_only(cell):
    plain = make_encoder(cell, False, 2)
    dropped = make_encoder(cell, False, 2, weight_drop=0.5)
    assert count_parameters(dropped) == count_parameters(plain)
    plain_weights = plain.state_dict()  # the same weights; weight_hh renamed by parametrize
    dropped.load_state_dict({name: plain_weights[name.replace("parametrizations.", "")
                                                 .replace(".original", "")]
                             for name in dropped.state_dict()})
    inputs = make_inputs()
    torch.testing.assert_close(dropped(inputs, LENGTHS).outputs, plain(inputs, LENGTHS).outputs)
    dropped.train()
    assert not torch.allclose(dropped(inputs, LENGTHS).outputs, plain(inputs, LENGTHS).outputs)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_unpadded_batches_may_skip_the_lengths(cell):
    encoder = make_encoder(cell, False, 2)
    inputs = make_inputs(lengths=torch.tensor([6, 6]))  # (2, 6, I)
    packed, plain = encoder(inputs, torch.tensor([6, 6])), encoder(inputs, None)
    torch.testing.assert_close(plain.outputs, packed.outputs, rtol=0, atol=1e-6)
    torch.testing.assert_close(plain.final_state, packed.final_state, rtol=0, atol=1e-6)
    assert plain.mask.all()


def test_matched_hidden_sizes_by_hand():
    # LSTM 10 -> 20, one layer: 4 * (20*10 + 20*20 + 2*20) = 2560 parameters.
    # GRU: 3h^2 + 36h -> h=24 gives 2592 (h=23: 2415); RNN: h^2 + 12h -> h=45 gives 2565.
    assert matched_hidden_size("gru", "lstm", 10, 20) == 24
    assert matched_hidden_size("rnn", "lstm", 10, 20) == 45
    assert matched_hidden_size("lstm", "lstm", 10, 20) == 20


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_match_params_gives_each_cell_the_reference_parameter_count(cell, bidirectional):
    reference = RecurrentEncoder("lstm", 32, 64, num_layers=2, bidirectional=bidirectional)
    matched = RecurrentEncoder(cell, 32, 64, num_layers=2, bidirectional=bidirectional,
                               match_params=True)
    step = expected_parameter_count(cell, 32, matched.hidden_size + 1, 2, bidirectional) - \
        count_parameters(matched)  # what one more hidden unit costs
    assert abs(count_parameters(matched) - count_parameters(reference)) <= step / 2
    assert matched.output_size == matched.hidden_size * (2 if bidirectional else 1)
    with pytest.raises(NlpseqError, match="Unknown cell"):
        RecurrentEncoder(cell, 32, 64, match_params=True, match_reference="transformer")


@pytest.mark.parametrize("locked", [False, True])
def test_forget_bias_starts_every_forget_gate_there_and_leaves_the_rest(locked):
    torch.manual_seed(0)
    plain = RecurrentEncoder("lstm", 3, 4, num_layers=2, bidirectional=True,
                             locked_dropout=locked)
    torch.manual_seed(0)
    biased = RecurrentEncoder("lstm", 3, 4, num_layers=2, bidirectional=True,
                              locked_dropout=locked, forget_bias=1.0)
    params = dict(biased.named_parameters())
    sums = [params[name] + params[name.replace("bias_ih", "bias_hh")]
            for name in params if "bias_ih" in name]
    assert len(sums) == 4  # 2 layers x 2 directions
    for total in sums:  # gate order i, f, g, o: rows 4..7 are the forget gate's
        torch.testing.assert_close(total[4:8], torch.ones(4))
    changed = [name for (name, a), (_, b) in zip(plain.named_parameters(),
                                                  biased.named_parameters(), strict=True)
               if not torch.equal(a, b)]
    assert changed and all("bias" in name for name in changed)
    for (_, a), (_, b) in zip(plain.named_parameters(), biased.named_parameters(), strict=True):
        if a.dim() == 1:  # the input, cell and output gates keep torch's initialisation
            assert torch.equal(a[:4], b[:4]) and torch.equal(a[8:], b[8:])


def test_forget_bias_is_ignored_by_cells_without_a_forget_gate():
    torch.manual_seed(0)
    plain = RecurrentEncoder("gru", 3, 4)
    torch.manual_seed(0)
    other = RecurrentEncoder("gru", 3, 4, forget_bias=1.0)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), other.parameters(),
                                                 strict=True))
