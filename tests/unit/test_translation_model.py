"""Attention, bridge, decoder and the seq2seq model: values, masking, and that the step path
used by decoding computes exactly what teacher forcing computes."""

import functools
import itertools

import pytest
import torch

from nlpseq.encoders import RecurrentEncoder
from nlpseq.errors import NlpseqError
from nlpseq.heads import ATTENTIONS, Attention, Bridge, RecurrentDecoder
from nlpseq.models import RecurrentTranslator

CELLS = ("rnn", "gru", "lstm")
VS, VT, E = 30, 25, 8


def translator(encoder_cell="gru", decoder_cell="gru", attention="luong_general",
               input_feeding=True, bidirectional=True, encoder_layers=1, decoder_layers=1,
               hidden=12, **model_options):
    torch.manual_seed(0)
    encoder = functools.partial(RecurrentEncoder, cell=encoder_cell, hidden_size=hidden // 2
                                if bidirectional else hidden, num_layers=encoder_layers,
                                bidirectional=bidirectional)
    decoder = functools.partial(RecurrentDecoder, cell=decoder_cell, hidden_size=hidden,
                                num_layers=decoder_layers, attention=attention,
                                input_feeding=input_feeding)
    return RecurrentTranslator(encoder, decoder, VS, VT, embedding_dim=E, **model_options).eval()


def batch():
    torch.manual_seed(1)
    source = torch.randint(4, VS, (3, 6))
    lengths = torch.tensor([6, 2, 4])
    for row, length in enumerate(lengths):
        source[row, length:] = 0
    return source, lengths, torch.randint(4, VT, (3, 5))


# ------------------------------------------------------------------------- attention
def test_luong_dot_weights_are_a_masked_softmax_of_dot_products():
    attention = Attention("luong_dot", 2, 2)
    memory = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]]])  # (1, 3, 2), last is padding
    query = torch.tensor([[[2.0, 0.0]]])  # (1, 1, 2): scores 2, 0, (10 masked)
    mask = torch.tensor([[True, True, False]])
    context, weights = attention(query, attention.prepare(memory), memory, mask)
    e2 = torch.exp(torch.tensor(2.0))
    expected = torch.tensor([e2 / (e2 + 1), 1 / (e2 + 1), 0.0])
    torch.testing.assert_close(weights[0, 0], expected)
    mixed = expected[0] * memory[0, 0] + expected[1] * memory[0, 1]
    torch.testing.assert_close(context[0, 0], mixed)


@pytest.mark.parametrize("kind", ["bahdanau", "luong_dot", "luong_general"])
def test_attention_gives_padding_exactly_zero_weight(kind):
    torch.manual_seed(0)
    attention = Attention(kind, 6, 6)
    memory, query = torch.randn(2, 4, 6), torch.randn(2, 3, 6)
    mask = torch.tensor([[True, True, True, True], [True, False, False, False]])
    _, weights = attention(query, attention.prepare(memory), memory, mask)
    assert weights.shape == (2, 3, 4)
    assert torch.all(weights[1, :, 1:] == 0) and torch.allclose(weights[1, :, 0], torch.ones(3))
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))


@pytest.mark.parametrize("kind", ["bahdanau", "luong_dot", "luong_general"])
def test_grouped_queries_read_one_memory_row_as_if_it_were_repeated(kind):
    torch.manual_seed(0)
    attention = Attention(kind, 6, 6)
    memory, query = torch.randn(2, 4, 6), torch.randn(2 * 3, 1, 6)  # 3 queries per memory row
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])
    keys = attention.prepare(memory)
    context, weights = attention(query, keys, memory, mask)
    rows = torch.tensor([0, 0, 0, 1, 1, 1])
    expected = attention(query, keys[rows], memory[rows], mask[rows])
    torch.testing.assert_close(context, expected[0])
    torch.testing.assert_close(weights, expected[1])
    assert torch.all(weights[3:, 0, 2:] == 0)
    with pytest.raises(ValueError, match="5 query rows do not divide among 2 memory rows"):
        attention(query[:5], keys, memory, mask)


def test_luong_dot_needs_equal_sizes_and_unknown_kinds_are_named():
    with pytest.raises(NlpseqError, match=r"luong_dot needs the decoder's hidden size \(8\)"):
        Attention("luong_dot", 8, 6)
    with pytest.raises(NlpseqError, match="Unknown attention 'dot'"):
        translator(attention="dot")


# ---------------------------------------------------------------------------- bridge
@pytest.mark.parametrize("encoder_cell,decoder_cell", itertools.product(CELLS, CELLS))
@pytest.mark.parametrize("bidirectional,encoder_layers,decoder_layers",
                         [(True, 2, 2), (True, 1, 2), (False, 2, 1)])
def test_bridge_starts_any_decoder_from_any_encoder(encoder_cell, decoder_cell, bidirectional,
                                                   encoder_layers, decoder_layers):
    torch.manual_seed(0)
    encoder = RecurrentEncoder(encoder_cell, 5, 4, num_layers=encoder_layers,
                               bidirectional=bidirectional)
    encoded = encoder(torch.randn(3, 6, 5), torch.tensor([6, 2, 4]))
    state = Bridge("linear", encoder, decoder_cell, decoder_layers, 7)(encoded)
    hidden, cell = state if decoder_cell == "lstm" else (state, None)
    assert hidden.shape == (decoder_layers, 3, 7)
    assert (cell is not None) == (decoder_cell == "lstm")
    assert torch.all(hidden.abs() < 1)  # tanh


def test_bridge_maps_each_layer_with_directions_side_by_side():
    encoder = RecurrentEncoder("gru", 5, 4, num_layers=2, bidirectional=True)
    bridge = Bridge("linear", encoder, "gru", 2, 3)
    final = torch.randn(4, 2, 4)  # (L*D, B, H): layer 0 fwd, layer 0 bwd, layer 1 fwd, bwd
    encoded = type("Encoded", (), {"final_state": final, "final_cell": None})()
    expected = torch.tanh(bridge.hidden(torch.cat([final[2], final[3]], dim=-1)))  # layer 1
    torch.testing.assert_close(bridge(encoded)[1], expected)


def test_zero_bridge_starts_from_zeros_and_needs_attention():
    encoder = RecurrentEncoder("lstm", 5, 4)
    encoded = encoder(torch.randn(2, 3, 5), torch.tensor([3, 1]))
    h, c = Bridge("zero", encoder, "lstm", 2, 6)(encoded)
    assert h.shape == c.shape == (2, 2, 6) and not h.any() and not c.any()
    with pytest.raises(NlpseqError, match="never reads the source"):
        RecurrentDecoder("gru", E, encoder, attention="none", bridge="zero")


# ----------------------------------------------------------------- decoder and model
@pytest.mark.parametrize("attention", ["luong_dot", "luong_general", "none"])
def test_the_parallel_teacher_forcing_path_equals_stepping(attention):
    model = translator(attention=attention, input_feeding=False, decoder_layers=2)
    assert model.decoder.parallel
    source, lengths, target = batch()
    state, memory = model.start(source, lengths)
    embedded = model.target_embedding(target)
    parallel, _, _ = model.decoder(embedded, state, memory)  # one RNN call over T steps
    outputs = []
    for t in range(target.size(1)):  # the same weights, one step at a time
        output, state, _ = model.decoder.step(embedded[:, t], state, memory)
        outputs.append(output)
    torch.testing.assert_close(torch.stack(outputs, 1), parallel, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("cells", [("lstm", "gru"), ("gru", "lstm"), ("rnn", "rnn")])
def test_decoding_steps_reproduce_the_teacher_forced_logits(attention, cells):
    model = translator(*cells, attention=attention, input_feeding=attention != "none")
    source, lengths, target = batch()
    logits, weights = model(source, lengths, target)  # (B, T, V)
    state = model.start(source, lengths)
    for t in range(target.size(1)):
        step_logits, state = model.step(target[:, t], state)
        torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-5)
    assert (weights is None) == (attention == "none")


def test_source_padding_does_not_change_the_translation_logits():
    model = translator("lstm", "lstm", attention="bahdanau")
    source, lengths, target = batch()
    logits, weights = model(source, lengths, target)
    alone, _ = model(source[1:2, :2], lengths[1:2], target[1:2])
    torch.testing.assert_close(logits[1], alone[0], atol=1e-5, rtol=1e-5)
    assert torch.all(weights[1, :, 2:] == 0)


def test_reorder_state_selects_and_repeats_rows():
    model = translator("lstm", "gru")
    source, lengths, target = batch()
    state = model.start(source, lengths)
    index = torch.tensor([2, 2, 0])
    logits, _ = model.step(target[index, 0], model.reorder_state(state, index))
    direct, _ = model.step(target[:, 0], state)
    torch.testing.assert_close(logits, direct[index])


@pytest.mark.parametrize("attention", ["bahdanau", "luong_general"])
def test_reorder_state_by_sentence_keeps_one_memory_row_per_sentence(attention):
    model = translator("gru", "lstm", attention=attention)
    source, lengths, target = batch()
    state = model.start(source, lengths)
    direct, _ = model.step(target[:, 0], state)
    beams = model.reorder_state(state, torch.tensor([[2, 2], [0, 0]]))  # 2 hypotheses each
    assert beams[1].memory.shape[0] == 2 and beams[0].hidden[0].shape[1] == 4
    logits, beams = model.step(target[[2, 2, 0, 0], 0], beams)
    torch.testing.assert_close(logits, direct[[2, 2, 0, 0]])
    # following hypotheses 3 and 2 (both of sentence 0) drops sentence 2's memory row
    followed = model.reorder_state(beams, torch.tensor([[3, 2]]))
    assert followed[1].memory.shape[0] == 1
    torch.testing.assert_close(followed[1].memory[0], state[1].memory[0])
    torch.testing.assert_close(followed[0].feed, beams[0].feed[[3, 2]])


def test_tied_and_shared_embeddings_save_their_parameters():
    untied = translator(tie_embeddings=False)
    tied = translator()
    shared = RecurrentTranslator(
        functools.partial(RecurrentEncoder, cell="gru", hidden_size=6, bidirectional=True),
        functools.partial(RecurrentDecoder, cell="gru", hidden_size=12), VS, VS,
        embedding_dim=E, share_embeddings=True)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # untied: Linear(12 -> 25) = 12*25 + 25; tied: projection 12 -> 8 (+ bias) and a bias of 25
    assert count(untied) - count(tied) == (12 * VT + VT) - (12 * E + E + VT)
    assert shared.source_embedding is shared.target_embedding
    assert shared.head.embedding is shared.target_embedding


def test_scheduled_sampling_with_ratio_zero_reads_only_its_own_predictions():
    model = translator().train()
    model.embedding_dropout.p = 0.0
    model.decoder.dropout.p = 0.0
    source, lengths, target = batch()
    other = target.clone()
    other[:, 1:] = torch.randint(4, VT, other[:, 1:].shape)
    first, _ = model(source, lengths, target, teacher_forcing=0.0)
    second, _ = model(source, lengths, other, teacher_forcing=0.0)
    torch.testing.assert_close(first, second)  # only the first (<bos>) input is read
    gold, _ = model(source, lengths, other, teacher_forcing=1.0)
    assert not torch.allclose(gold[:, 1:], second[:, 1:])
