"""The recurrent decoder of a seq2seq model, and the bridge that starts it.

The decoder is any of the three cells (its own choice, independent of the encoder's) with
optional attention over the encoder's outputs and input feeding (Luong et al. 2015: the
previous step's attentional vector joins the next input, so the decoder knows what it
attended to). Each step's output is the attentional vector ``tanh(W [h_t; c_t])``.

Teacher-forced training takes one of two paths with the same weights: without input
feeding and without Bahdanau attention (whose query is the previous state), the whole
target runs through the RNN in one call and attention is one batched product; otherwise
the decoder steps through time. Shape legend: B batch, T target steps, S source
positions, E embedding, H decoder hidden, M memory (encoder output) size, L layers.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from nlpseq.checks import check_probability
from nlpseq.encoders.recurrent import EncoderOutput, RecurrentEncoder, _check_cell
from nlpseq.errors import NlpseqError
from nlpseq.heads.attention import ATTENTIONS, Attention, AttentionKind

BRIDGES = ("linear", "zero")
RnnState = Tensor | tuple[Tensor, Tensor]  # h (L, B, H), or (h, c) for an LSTM


class SourceMemory(NamedTuple):
    """What attention reads, computed once per source batch: one row per sentence, also
    when the decoder state holds several rows (hypotheses) per sentence in beam search.

    Shape: memory (B, S, M) encoder outputs, keys (B, S, K) from ``Attention.prepare``,
    mask (B, S) True at real source tokens.
    """

    memory: Tensor
    keys: Tensor | None
    mask: Tensor


class DecoderState(NamedTuple):
    """The decoder's recurrent state and the previous attentional vector (input feeding).

    Shape: hidden (L, B, H) or a (h, c) pair of them; feed (B, H) or None.
    """

    hidden: RnnState
    feed: Tensor | None


class Bridge(nn.Module):
    """Encoder final state -> decoder initial state: ``tanh(W h_enc)`` per decoder layer, or
    zeros (``kind="zero"``).

    Handles every pairing: the encoder's directions are concatenated (bi -> uni); with equal
    layer counts, decoder layer i starts from encoder layer i, otherwise every decoder
    layer starts from the encoder's top layer; an LSTM decoder's cell state comes from the
    encoder's cell state when the encoder is an LSTM, else from its hidden state.
    """

    def __init__(self, kind: Literal["linear", "zero"], encoder: RecurrentEncoder,
                 decoder_cell: str, decoder_layers: int, decoder_hidden: int) -> None:
        super().__init__()
        if kind not in BRIDGES:
            raise NlpseqError(f"Unknown bridge {kind!r}; choose one of "
                              f"{', '.join(map(repr, BRIDGES))}")
        self.kind = kind
        self.layers, self.hidden_size = decoder_layers, decoder_hidden
        self.lstm = decoder_cell == "lstm"
        self.same_layers = encoder.num_layers == decoder_layers
        self.encoder_directions = encoder.num_directions
        if kind == "linear":
            size = encoder.output_size  # directions concatenated
            self.hidden = nn.Linear(size, decoder_hidden)
            self.cell = nn.Linear(size, decoder_hidden) if self.lstm else None

    def forward(self, encoded: EncoderOutput) -> RnnState:
        """Shape: encoded.final_state (L_e*D, B, H_e) -> (L, B, H), or (h, c) for an LSTM."""
        batch = encoded.final_state.size(1)
        if self.kind == "zero":
            zeros = encoded.final_state.new_zeros(self.layers, batch, self.hidden_size)
            return (zeros, zeros.clone()) if self.lstm else zeros
        h = torch.tanh(self.hidden(self._layers(encoded.final_state)))  # (L, B, H)
        if not self.lstm:
            return h
        source = encoded.final_cell if encoded.final_cell is not None else encoded.final_state
        return h, torch.tanh(self.cell(self._layers(source)))

    def _layers(self, state: Tensor) -> Tensor:
        """(L_e*D, B, H_e) -> (L, B, D*H_e): directions side by side, one row per layer."""
        d = self.encoder_directions
        layers = state.view(-1, d, *state.shape[1:])  # (L_e, D, B, H_e)
        layers = layers.permute(0, 2, 1, 3).flatten(2)  # (L_e, B, D*H_e)
        if self.same_layers:
            return layers
        return layers[-1:].expand(self.layers, -1, -1)  # the top layer for every layer


class RecurrentDecoder(nn.Module):
    """A recurrent decoder (rnn, lstm or gru) with attention over the source.

    Args:
        cell: the decoder's cell, independent of the encoder's.
        input_size: target embedding size (E), filled in by the model.
        encoder: the model's encoder (its sizes fix the memory and the bridge).
        hidden_size, num_layers: the decoder RNN's size.
        attention: ``none``, ``bahdanau``, ``luong_dot`` or ``luong_general``.
        input_feeding: feed the previous attentional vector into the next step (with
            attention only).
        bridge: ``linear`` (tanh of a linear map of the encoder's final state) or ``zero``.
        dropout: between stacked layers and on each step's output.
        init_from: a target-side language model to start from (``task.decoder.init_from``);
            read by the task, which copies the weights after building the model.
    """

    def __init__(
        self,
        cell: Literal["rnn", "lstm", "gru"],
        input_size: int,
        encoder: RecurrentEncoder,
        hidden_size: int = 256,
        num_layers: int = 1,
        attention: AttentionKind = "luong_general",
        input_feeding: bool = True,
        bridge: Literal["linear", "zero"] = "linear",
        dropout: float = 0.0,
        init_from: str | None = None,
    ) -> None:
        super().__init__()
        del init_from  # read by the task that builds the model (nlpseq.tasks.transfer)
        rnn_class, _ = _check_cell(cell)
        if attention not in ATTENTIONS:
            raise NlpseqError(f"Unknown attention {attention!r}; choose one of "
                              f"{', '.join(map(repr, ATTENTIONS))}")
        if attention == "none" and bridge == "zero":
            raise NlpseqError("attention=none with bridge=zero never reads the source; "
                              "use bridge=linear or an attention")
        check_probability("dropout", dropout)
        self.cell, self.attention_kind = cell, attention
        self.input_feeding = input_feeding and attention != "none"
        memory_size = encoder.output_size
        rnn_input = input_size + (hidden_size if self.input_feeding else 0)
        rnn_input += memory_size if attention == "bahdanau" else 0
        self.rnn = rnn_class(rnn_input, hidden_size, num_layers=num_layers, batch_first=True,
                             dropout=dropout if num_layers > 1 else 0.0)
        self.bridge = Bridge(bridge, encoder, cell, num_layers, hidden_size)
        self.attention = (Attention(attention, hidden_size, memory_size)
                          if attention != "none" else None)
        self.combine = (nn.Linear(hidden_size + memory_size, hidden_size)
                        if attention != "none" else None)
        self.dropout = nn.Dropout(dropout)
        self.hidden_size = self.output_size = hidden_size

    @property
    def parallel(self) -> bool:
        """Whether teacher forcing can run the whole target in one RNN call."""
        return not self.input_feeding and self.attention_kind != "bahdanau"

    def start(self, encoded: EncoderOutput) -> tuple[DecoderState, SourceMemory]:
        """The initial state and the source memory of a batch of encoded sources."""
        keys = self.attention.prepare(encoded.outputs) if self.attention is not None else None
        memory = SourceMemory(encoded.outputs, keys, encoded.mask)
        hidden = self.bridge(encoded)
        feed = None
        if self.input_feeding:
            feed = encoded.outputs.new_zeros(encoded.outputs.size(0), self.hidden_size)
        return DecoderState(hidden, feed), memory

    def forward(self, embedded: Tensor, state: DecoderState,
                memory: SourceMemory) -> tuple[Tensor, DecoderState, Tensor | None]:
        """Teacher forcing over a whole target: outputs, final state, attention weights.

        Shape: embedded (B, T, E) -> outputs (B, T, H), weights (B, T, S) or None
        """
        if self.parallel:
            out, hidden = self.rnn(embedded, state.hidden)  # (B, T, H)
            outputs, weights = self._attend(out, memory)
            return outputs, DecoderState(hidden, None), weights
        outputs, weights = [], []
        for t in range(embedded.size(1)):
            output, state, weight = self.step(embedded[:, t], state, memory)
            outputs.append(output)
            weights.append(weight)
        stacked = torch.stack(weights, dim=1) if self.attention is not None else None
        return torch.stack(outputs, dim=1), state, stacked

    def step(self, embedded: Tensor, state: DecoderState,
             memory: SourceMemory) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One decoding step.

        Shape: embedded (B, E) -> output (B, H), weights (B, S) or None
        """
        inputs = [embedded]
        if self.input_feeding:
            inputs.append(state.feed)
        context = weights = None
        if self.attention_kind == "bahdanau":  # the query is the previous top-layer state
            hidden = state.hidden[0] if isinstance(state.hidden, tuple) else state.hidden
            context, weights = self.attention(hidden[-1][:, None], memory.keys, memory.memory,
                                              memory.mask)  # (B, 1, M), (B, 1, S)
            inputs.append(context[:, 0])
        out, hidden = self.rnn(torch.cat(inputs, dim=-1)[:, None], state.hidden)  # (B, 1, H)
        output, weights = self._attend(out, memory, context, weights)
        output = output[:, 0]  # (B, H)
        feed = output if self.input_feeding else None
        return output, DecoderState(hidden, feed), (weights[:, 0] if weights is not None
                                                     else None)

    def _attend(self, out: Tensor, memory: SourceMemory, context: Tensor | None = None,
                weights: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """RNN outputs -> attentional vectors ``tanh(W [out; context])`` and the weights;
        Luong attention queries with ``out``, Bahdanau passes the context it computed.

        Shape: out (B, T, H) -> (B, T, H), weights (B, T, S) or None
        """
        if self.attention is None:
            return self.dropout(out), None
        if context is None:
            context, weights = self.attention(out, memory.keys, memory.memory, memory.mask)
        combined = torch.tanh(self.combine(torch.cat([out, context], dim=-1)))
        return self.dropout(combined), weights
