"""Export-friendly views of the three task models: one small ``nn.Module`` per task, with
plain tensors in and out, that tracing (``torch.onnx.export(dynamo=False)``,
``torch.jit.trace``) records without baking in a batch's shape.

``RecurrentEncoder.forward`` picks dense or packed execution from the lengths it is given,
a data-dependent choice a trace would freeze; here padded batches always go through
``pack_padded_sequence``, which ONNX runs as its RNN ops' ``sequence_lens`` (exact: the
final state of each row is at its true end, a reverse direction starts there). Dropout is
off (eval mode). Shape legend: B batch, T time, S source length, V vocabulary,
L layers (x directions), H hidden, M memory (encoder output) size, C classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nlpseq.encoders.recurrent import EncoderOutput, LockedStack, RecurrentEncoder
from nlpseq.heads.decoder import DecoderState, SourceMemory


def encode_packed(encoder: RecurrentEncoder, inputs: Tensor, lengths: Tensor) -> EncoderOutput:
    """``encoder(inputs, lengths)`` in eval mode, always through packing, from a zero state.

    Shape: inputs (B, T, I), lengths (B,) int64 -> outputs (B, T, D*H), mask (B, T),
    final states (L*D, B, H).
    """
    T = inputs.size(1)
    x = pack_padded_sequence(inputs, lengths, batch_first=True, enforce_sorted=False)
    layers = list(encoder.rnn.layers) if isinstance(encoder.rnn, LockedStack) else [encoder.rnn]
    finals = []
    for layer in layers:  # a LockedStack's layers one by one: no dropout in eval
        x, final = layer(x, zero_state(layer, inputs))
        finals.append(final)
    outputs, _ = pad_packed_sequence(x, batch_first=True, total_length=T)  # (B, T, D*H)
    mask = torch.arange(T)[None, :] < lengths[:, None]  # (B, T)
    if isinstance(finals[0], tuple):
        return EncoderOutput(outputs, mask, torch.cat([h for h, _ in finals]),
                             torch.cat([c for _, c in finals]))
    return EncoderOutput(outputs, mask, torch.cat(finals))


def zero_state(layer: nn.Module, inputs: Tensor) -> Tensor | tuple[Tensor, Tensor]:
    """A zero initial state for ``layer`` sized from ``inputs``: given explicitly, so that a
    trace reads the batch size from the inputs (a quantized LSTM would bake its own in).
    Shape: (L*D, B, H)."""
    directions = 2 if layer.bidirectional else 1
    h = inputs.new_zeros(layer.num_layers * directions, inputs.size(0), layer.hidden_size)
    return (h, h) if layer.mode == "LSTM" else h


def state_names(cell: str) -> list[str]:
    """The recurrent state's tensors, in input and output order: h, and c for an LSTM."""
    return ["h", "c"] if cell == "lstm" else ["h"]


class SentimentExport(nn.Module):
    """The classifier's whole forward: ``(tokens (B, T), lengths (B,)) -> logits (B, C)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        encoded = encode_packed(self.model.encoder, self.model.embedding(tokens), lengths)
        return self.model.head(encoded)  # (B, C)


class LanguageModelExport(nn.Module):
    """The language model over a few tokens from a given state (one token: one generation
    step; a prompt: all of it at once), rows unpadded.

    ``(tokens (B, T), h (L, B, H)[, c]) -> (logits (B, T, V), h[, c])``
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.lstm = model.encoder.cell == "lstm"

    def forward(self, tokens: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        logits, new = self.model(tokens, None, tuple(state) if self.lstm else state[0])
        return (logits, *new) if self.lstm else (logits, new)


class TranslationEncoderExport(nn.Module):
    """Encode the sources and start the decoder:
    ``(source (B, S), lengths (B,)) -> (*state, *memory)``, named by ``decoder_parts``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, source: Tensor, lengths: Tensor) -> tuple[Tensor, ...]:
        encoded = encode_packed(self.model.encoder, self.model.source_embedding(source),
                                lengths)
        state, memory = self.model.decoder.start(encoded)
        return (*flat_state(state), *flat_memory(self.model.decoder, memory))


class TranslationDecoderExport(nn.Module):
    """One decoder step: ``(tokens (B,), *state, *memory) -> (logits (B, V), *state)``."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.state_parts, self.memory_parts = decoder_parts(model.decoder)

    def forward(self, tokens: Tensor, *tensors: Tensor) -> tuple[Tensor, ...]:
        named = dict(zip([*self.state_parts, *self.memory_parts], tensors, strict=True))
        hidden = (named["h"], named["c"]) if "c" in named else named["h"]
        state = DecoderState(hidden, named.get("feed"))
        memory = SourceMemory(named.get("memory"), named.get("keys"), named.get("mask"))
        logits, (state, _) = self.model.step(tokens, (state, memory))  # (B, V)
        return (logits, *flat_state(state))


def decoder_parts(decoder: nn.Module) -> tuple[list[str], list[str]]:
    """Names of the decoder's state tensors — h (L, B, H), c for an LSTM, feed (B, H) with
    input feeding — and of the source memory it attends to — memory (B, S, M), keys
    (B, S, K), mask (B, S) bool — none without attention."""
    state = state_names(decoder.cell) + (["feed"] if decoder.input_feeding else [])
    memory = ["memory", "keys", "mask"] if decoder.attention is not None else []
    return state, memory


def flat_state(state: DecoderState) -> list[Tensor]:
    hidden = list(state.hidden) if isinstance(state.hidden, tuple) else [state.hidden]
    return hidden + ([state.feed] if state.feed is not None else [])


def flat_memory(decoder: nn.Module, memory: SourceMemory) -> list[Tensor]:
    return [memory.memory, memory.keys, memory.mask] if decoder.attention is not None else []
