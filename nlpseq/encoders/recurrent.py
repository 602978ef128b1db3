"""Recurrent encoders: one module for the Elman RNN, the LSTM and the GRU.

Cells: Elman 1990 ("Finding Structure in Time"); Hochreiter & Schmidhuber 1997 (LSTM),
with the forget gate of Gers, Schmidhuber & Cummins 2000; Cho et al. 2014 (GRU).

Why one plug for three cells: every head reads the same `EncoderOutput` (outputs, mask,
final_state) and never asks which cell produced it, so `encoder=rnn|lstm|gru` swaps the
cell and nothing else. Tensors are `batch_first=True` throughout. Shape legend: B batch,
T time, I input features, H hidden, D directions, L layers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from nlpseq.checks import check_positive_int, check_probability
from nlpseq.encoders.dense import dense_forward
from nlpseq.encoders.regularization import LockedDropout, apply_weight_drop
from nlpseq.errors import NlpseqError

log = logging.getLogger("nlpseq.encoders")

# cell name -> (torch module, number of gates per layer and direction)
_CELLS: dict[str, tuple[type[nn.RNNBase], int]] = {
    "rnn": (nn.RNN, 1),
    "gru": (nn.GRU, 3),
    "lstm": (nn.LSTM, 4),
}
_NONLINEARITIES = ("tanh", "relu")
EXECUTIONS = ("auto", "packed", "dense")
# execution=auto on a CPU packs a batch of at most this many steps with at least this share
# of padding (measured with scripts/bench_execution.py, docs/speed.md); dense otherwise
PACK_UP_TO_LENGTH, PACK_FROM_PADDING = 16, 0.3


def _choices(options) -> str:
    return ", ".join(repr(o) for o in options)


def _check_cell(cell: str) -> tuple[type[nn.RNNBase], int]:
    if cell not in _CELLS:
        raise NlpseqError(f"Unknown cell {cell!r}; choose one of {_choices(_CELLS)}")
    return _CELLS[cell]


@dataclass
class EncoderOutput:
    """What every encoder hands to every head.

    Attributes:
        outputs: top layer's states at every step, exactly zero at padded positions.
        mask: True at real tokens, False at padding.
        final_state: h_n as torch returns it; for each sequence, the state after its
            true last token (the backward direction's after position 0).
        final_cell: the LSTM's c_n, laid out like `final_state`; None for rnn and gru.

    Shape:
        outputs (B, T, D*H), mask (B, T), final_state and final_cell (L*D, B, H).
    """

    outputs: Tensor
    mask: Tensor
    final_state: Tensor
    final_cell: Tensor | None = None

    @property
    def num_directions(self) -> int:
        return self.outputs.size(-1) // self.final_state.size(-1)

    @property
    def last_hidden(self) -> Tensor:
        """Top layer's final h, directions concatenated (forward first). Shape (B, D*H)."""
        d = self.num_directions
        top = self.final_state[-d:]  # (D, B, H)
        return top.transpose(0, 1).reshape(top.size(1), -1)  # (B, D*H)

    def state(self) -> Tensor | tuple[Tensor, Tensor]:
        """The final state in the form torch.nn expects as an initial state.

        Returns:
            `(h, c)` for an LSTM, `h` otherwise; each (L*D, B, H).
        """
        if self.final_cell is None:
            return self.final_state
        return self.final_state, self.final_cell


class RecurrentEncoder(nn.Module):
    """A padding-aware wrapper around `torch.nn.RNN`, `LSTM` or `GRU` (batch_first=True).

    Args:
        cell: 'rnn', 'lstm' or 'gru'.
        input_size: features per input step (I).
        hidden_size: features per direction of the state (H).
        num_layers: stacked recurrent layers (L).
        bidirectional: also run right-to-left and concatenate (D = 2).
        dropout: dropout between stacked layers, in [0, 1); unused when num_layers == 1.
        nonlinearity: 'tanh' or 'relu'; cell='rnn' only.
        locked_dropout: drop the same features at every step between layers (variational
            dropout, Gal & Ghahramani 2016) instead of a fresh mask per step; the layers
            then run one at a time.
        weight_drop: DropConnect rate on the hidden-to-hidden matrices while training
            (AWD-LSTM's weight-drop, Merity et al. 2018).
        match_params: resize the hidden size so that this encoder has (nearly) as many
            parameters as a ``match_reference`` encoder of ``hidden_size``: comparing cells
            at equal hidden size gives the LSTM 4x the vanilla RNN's parameters.
        match_reference: the cell whose parameter count ``match_params`` matches.
        forget_bias: LSTM only: start every forget gate's bias at this value (Gers et al.
            2000; 1.0 as Jozefowicz et al. 2015 recommend and Keras does), which biases the
            cell towards keeping its content (sigmoid(1) = 0.73 of it a step); None keeps
            torch's initialisation (bias near 0: forget gates near 0.5 halve the cell state
            at every step). rnn and gru have
            no forget gate and ignore it, so one setting serves a comparison of all three.
        execution: how a padded batch runs, with the same result either way: 'packed'
            through `pack_padded_sequence`, 'dense' through the fused dense kernels with
            each row's reverse direction started at its own end (`nlpseq.encoders.dense`),
            'auto' packed on a GPU (cuDNN reads packed batches natively) and dense on a
            CPU (whose packed backward pass is several times slower, the more so the
            longer the sequences) except for a short batch that is mostly padding. A batch
            whose rows all have one length is never packed.
        init_from, init_from_backward: runs or checkpoints to start from
            (``encoder.init_from``, ``encoder.init_from_backward``); the encoder never reads
            them: the task copies the weights after building the model.
    """

    def __init__(
        self,
        cell: Literal["rnn", "lstm", "gru"],
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        locked_dropout: bool = False,
        weight_drop: float = 0.0,
        match_params: bool = False,
        match_reference: Literal["rnn", "lstm", "gru"] = "lstm",
        forget_bias: float | None = None,
        execution: Literal["auto", "packed", "dense"] = "auto",
        init_from: str | None = None,
        init_from_backward: str | None = None,
    ) -> None:
        super().__init__()
        del init_from, init_from_backward  # read by the task building the model (tasks.transfer)
        rnn_class, _ = _check_cell(cell)
        if execution not in EXECUTIONS:
            raise NlpseqError(f"Unknown execution {execution!r}; choose one of "
                              f"{_choices(EXECUTIONS)}")
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            check_positive_int(name, value)
        if match_params:
            matched = matched_hidden_size(cell, match_reference, input_size, hidden_size,
                                          num_layers, bidirectional)
            log.info("match_params: %s hidden size %d (as many parameters as a %s encoder "
                     "with hidden size %d)", cell, matched, match_reference, hidden_size)
            hidden_size = matched
        check_probability("dropout", dropout)
        check_probability("weight_drop", weight_drop)
        if nonlinearity not in _NONLINEARITIES:
            raise NlpseqError(
                f"Unknown nonlinearity {nonlinearity!r}; choose one of {_choices(_NONLINEARITIES)}"
            )
        if cell != "rnn" and nonlinearity != "tanh":
            raise NlpseqError(
                f"nonlinearity={nonlinearity!r} applies to cell='rnn' only; got cell={cell!r}"
            )

        self.cell, self.execution = cell, execution
        self.hidden_size, self.num_layers = hidden_size, num_layers
        self.diagnostic_forward = None  # set by diagnostics to run the cell equations instead
        self.num_directions = 2 if bidirectional else 1
        self.output_size = hidden_size * self.num_directions
        extra = {"nonlinearity": nonlinearity} if cell == "rnn" else {}
        sizes = dict(hidden_size=hidden_size, bidirectional=bidirectional, batch_first=True,
                     **extra)
        if locked_dropout and num_layers > 1:
            layers = [rnn_class(input_size if i == 0 else self.output_size, num_layers=1, **sizes)
                      for i in range(num_layers)]
            self.rnn: nn.Module = LockedStack(layers, dropout)
        else:  # torch's own stack: one fused kernel, a fresh dropout mask per step
            layers = [rnn_class(input_size, num_layers=num_layers,
                                dropout=dropout if num_layers > 1 else 0.0, **sizes)]
            self.rnn = layers[0]  # torch warns when dropout has no effect: 0 for 1 layer
        for layer in layers:
            if cell == "lstm" and forget_bias is not None:
                set_forget_bias(layer, forget_bias)
            apply_weight_drop(layer, weight_drop)

    def forward(
        self,
        inputs: Tensor,
        lengths: Tensor | None,
        initial_state: Tensor | tuple[Tensor, Tensor] | None = None,
    ) -> EncoderOutput:
        """Encode a padded batch; padding never reaches the outputs or the final state.

        Args:
            inputs: embedded tokens, left-aligned, padding after each sequence.
            lengths: true length of each sequence, 1 <= length <= T, on any device; None
                when no sequence is padded (a language model's contiguous blocks, or one
                decoding step): the batch then skips packing.
            initial_state: h_0, or (h_0, c_0) for an LSTM, e.g. `EncoderOutput.state()`;
                zeros when None.

        Returns:
            An `EncoderOutput` whose final state is taken at each sequence's true end.

        Shape:
            inputs (B, T, I), lengths (B,), initial_state (L*D, B, H).
        """
        if self.diagnostic_forward is not None:  # e.g. GradientProbe, for one training step
            return self.diagnostic_forward(self, inputs, lengths, initial_state)
        B, T, _ = inputs.shape
        if lengths is None:
            outputs, state = self.rnn(inputs, initial_state)  # (B, T, D*H)
            mask = torch.ones(B, T, dtype=torch.bool, device=inputs.device)
        else:
            outputs, state, mask = self._forward_padded(inputs, lengths, initial_state)
        h_n, c_n = state if isinstance(state, tuple) else (state, None)  # (L*D, B, H)
        return EncoderOutput(outputs=outputs, mask=mask, final_state=h_n, final_cell=c_n)

    def _forward_padded(self, inputs: Tensor, lengths: Tensor, initial_state):
        B, T, _ = inputs.shape
        lengths_cpu = lengths.to("cpu", torch.int64)  # slicing and packing read them here
        if lengths_cpu.shape != (B,):
            raise NlpseqError(
                f"lengths must have shape ({B},) to match inputs; got {tuple(lengths_cpu.shape)}"
            )
        if lengths_cpu.numel() and (lengths_cpu.min() < 1 or lengths_cpu.max() > T):
            raise NlpseqError(
                f"lengths must lie in [1, {T}] (T = inputs.size(1)); got {lengths_cpu.tolist()}"
            )
        longest = int(lengths_cpu.max())
        if int(lengths_cpu.min()) == longest:  # nothing to skip: one dense call
            outputs, state = self.rnn(inputs[:, :longest], initial_state)  # (B, T', D*H)
            outputs = F.pad(outputs, (0, 0, 0, T - longest))
        elif self.execution_for(inputs.device, lengths_cpu) == "dense":
            outputs, state = dense_forward(self._layers(), self._between_layers, inputs,
                                           lengths_cpu, initial_state)
        else:
            packed = pack_padded_sequence(inputs, lengths_cpu, batch_first=True,
                                          enforce_sorted=False)
            packed_out, state = self.rnn(packed, initial_state)  # torch restores batch order
            outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)
        # outputs (B, T, D*H), zero at pads
        steps = torch.arange(T, device=inputs.device)  # (T,)
        # from the lengths as given: already on the GPU there, copying the CPU ones back
        # would make the CPU wait for the forward pass queued above
        mask = steps[None, :] < lengths.to(inputs.device)[:, None]  # (B, T)
        return outputs, state, mask

    def execution_for(self, device: torch.device, lengths: Tensor) -> str:
        """'packed' or 'dense': how a padded batch with ``lengths`` (on the CPU) runs on
        ``device`` (see ``execution``). ``auto`` packs on a GPU; on a CPU it packs only a
        short batch that is mostly padding, the one shape where packing measured faster
        (scripts/bench_execution.py: dense computes the padding, and the packed backward
        pass is still cheap over a few steps)."""
        if self.execution != "auto":
            return self.execution
        if device.type == "cuda":
            return "packed"
        longest = int(lengths.max())
        padding = 1.0 - float(lengths.sum()) / (len(lengths) * longest)
        short_and_padded = longest <= PACK_UP_TO_LENGTH and padding >= PACK_FROM_PADDING
        return "packed" if short_and_padded else "dense"

    def _layers(self) -> list[tuple[nn.RNNBase, int]]:
        """Each layer's torch module and its index there, bottom first."""
        if isinstance(self.rnn, LockedStack):
            return [(layer, 0) for layer in self.rnn.layers]
        return [(self.rnn, k) for k in range(self.num_layers)]

    def _between_layers(self, x: Tensor) -> Tensor:
        """What the stack does between two layers: locked or torch's per-step dropout."""
        if isinstance(self.rnn, LockedStack):
            return self.rnn.dropout(x)
        return F.dropout(x, self.rnn.dropout, self.training)


def set_forget_bias(lstm: nn.LSTM, value: float) -> None:
    """Make the forget gate's total bias ``value`` in every layer and direction: torch adds
    ``bias_ih`` and ``bias_hh``, whose rows H..2H (gate order i, f, g, o) feed the forget gate."""
    h = lstm.hidden_size
    with torch.no_grad():
        for name, bias in lstm.named_parameters():
            if name.startswith("bias_ih"):
                bias[h:2 * h] = value
            elif name.startswith("bias_hh"):
                bias[h:2 * h] = 0.0


class LockedStack(nn.Module):
    """Single-layer recurrent modules run one after another, with `LockedDropout` between
    them; called like a multi-layer `torch.nn.RNN/LSTM/GRU` (same state layout).

    Shape:
        inputs (B, T, I) or a PackedSequence; states (L*D, B, H).
    """

    def __init__(self, layers: list[nn.RNNBase], dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.dropout = LockedDropout(dropout)

    def forward(self, inputs, initial_state=None):
        is_lstm = isinstance(self.layers[0], nn.LSTM)
        d = 2 if self.layers[0].bidirectional else 1
        x, finals = inputs, []
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = self._drop(x)
            state = None
            if initial_state is not None:  # this layer's slice of (L*D, B, H)
                state = (tuple(s[i * d:(i + 1) * d] for s in initial_state) if is_lstm
                         else initial_state[i * d:(i + 1) * d])
            x, final = layer(x, state)
            finals.append(final)
        if is_lstm:
            return x, (torch.cat([h for h, _ in finals]), torch.cat([c for _, c in finals]))
        return x, torch.cat(finals)

    def _drop(self, x):
        if not isinstance(x, PackedSequence):
            return self.dropout(x)  # (B, T, D*H)
        padded, lengths = pad_packed_sequence(x, batch_first=True)
        return pack_padded_sequence(self.dropout(padded), lengths, batch_first=True,
                                    enforce_sorted=False)


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters in `module` (trainable or not)."""
    return sum(p.numel() for p in module.parameters())


def expected_parameter_count(
    cell: Literal["rnn", "lstm", "gru"],
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
) -> int:
    """Closed-form parameter count of a `RecurrentEncoder`.

    Per layer and direction, with g gates (rnn 1, gru 3, lstm 4) and `in` = input_size on
    layer 0 and D*H above: g * (H*in + H*H + 2*H); torch keeps two bias vectors per gate.
    """
    _, gates = _check_cell(cell)
    d, h = (2 if bidirectional else 1), hidden_size
    total = 0
    for layer in range(num_layers):
        layer_in = input_size if layer == 0 else d * h
        total += d * gates * (h * layer_in + h * h + 2 * h)
    return total


def matched_hidden_size(
    cell: Literal["rnn", "lstm", "gru"],
    reference_cell: Literal["rnn", "lstm", "gru"],
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    bidirectional: bool = False,
) -> int:
    """The hidden size at which a ``cell`` encoder's parameter count is nearest to that of a
    ``reference_cell`` encoder with ``hidden_size`` (same input size, layers, directions)."""
    _check_cell(reference_cell)

    def count(size: int) -> int:
        return expected_parameter_count(cell, input_size, size, num_layers, bidirectional)

    target = expected_parameter_count(reference_cell, input_size, hidden_size, num_layers,
                                      bidirectional)
    size = 1
    while count(size + 1) <= target:  # the count grows with the size
        size += 1
    return size if target - count(size) <= count(size + 1) - target else size + 1
