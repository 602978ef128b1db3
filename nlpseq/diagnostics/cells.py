"""The three recurrent cells' equations written out, to look inside a trained model.

``trace`` takes a trained ``torch.nn.RNN``/``LSTM``/``GRU`` and recomputes its outputs one
step at a time in plain tensor algebra, keeping what the fused kernels hide: the LSTM's
input, forget and output gates and its cell state (Hochreiter & Schmidhuber 1997, with the
forget gate of Gers et al. 2000), the GRU's reset and update gates (Cho et al. 2014).
Inspection only, never the training path: one Python step per token is slow.

Weights are torch's: ``weight_ih_l{k}[_reverse]`` stacks the gates as (i, f, g, o) for the
LSTM and (r, z, n) for the GRU; torch keeps two bias vectors (input and hidden side).
Shape legend: B batch, T steps, I input size, H hidden size, L layers, D directions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def lstm_step(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None) -> tuple[Tensor, Tensor, dict]:
    """i, f, o = sigmoid(.), g = tanh(.) of W_i x + W_h h + b; c' = f * c + i * g;
    h' = o * tanh(c'). Shape: x (B, I), h and c (B, H)."""
    i, f, g, o = _affine(x, h, w_ih, w_hh, b_ih, b_hh).chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c = f * c + i * g
    return o * torch.tanh(c), c, {"input": i, "forget": f, "output": o}


def gru_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
             b_hh: Tensor | None) -> tuple[Tensor, dict]:
    """r = sigmoid(W_ir x + W_hr h + b_r), z = sigmoid(W_iz x + W_hz h + b_z),
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h."""
    x_r, x_z, x_n = _linear(x, w_ih, b_ih).chunk(3, dim=-1)
    h_r, h_z, h_n = _linear(h, w_hh, b_hh).chunk(3, dim=-1)
    r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h, {"reset": r, "update": z}


def rnn_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
             b_hh: Tensor | None, nonlinearity: str = "tanh") -> tuple[Tensor, dict]:
    """h' = tanh(W_i x + W_h h + b) (or relu): Elman's network, no gates."""
    pre = _affine(x, h, w_ih, w_hh, b_ih, b_hh)
    return (torch.tanh(pre) if nonlinearity == "tanh" else torch.relu(pre)), {}


@dataclass
class Trace:
    """What ``trace`` recomputed: the module's outputs and final state, the mask of real
    steps, and per (layer, direction) the gate values and (LSTM) cell states at every step.

    Shape: outputs (B, T, D*H), mask (B, T) True at real tokens, final_hidden (L*D, B, H),
        final_cell (L*D, B, H) or None, gates[(layer, direction)][name] (B, T, H),
        cells[(layer, direction)] (B, T, H). Values at padded steps are 0.
    """

    outputs: Tensor
    mask: Tensor
    final_hidden: Tensor
    final_cell: Tensor | None
    gates: dict[tuple[int, int], dict[str, Tensor]] = field(default_factory=dict)
    cells: dict[tuple[int, int], Tensor] = field(default_factory=dict)


StepHook = Callable[[int, int, int, Tensor], None]
"""``(layer, direction, t, h_t (B, H))``, called as each step's state is computed."""


def trace(module: nn.RNNBase, inputs: Tensor, lengths: Tensor | None = None,
          initial: Tensor | tuple[Tensor, Tensor] | None = None,
          on_step: StepHook | None = None) -> Trace:
    """Run ``module``'s weights through the cell equations, step by step.

    Differentiable: with gradients on, every h_t is a node of the graph (``on_step`` can
    hook it), which the fused kernels do not expose. Dropout between layers is applied
    as torch applies it when ``module`` is training.

    Args:
        module: a ``torch.nn.RNN``, ``LSTM`` or ``GRU`` with ``batch_first=True`` (as the
            encoders build them).
        inputs: (B, T, I).
        lengths: (B,) true lengths; padded steps leave the state alone, so the reverse
            direction starts at each sequence's last real token, as packed sequences do.
        initial: h_0 (L*D, B, H), or (h_0, c_0) for an LSTM; zeros when None.
        on_step: called with each new state (see ``StepHook``).
    """
    kind = next((name for name, cls in (("LSTM", nn.LSTM), ("GRU", nn.GRU), ("RNN", nn.RNN))
                 if isinstance(module, cls)), None)  # weight-drop makes a subclass
    if kind is None or not module.batch_first:
        raise ValueError("trace needs a batch_first nn.RNN, LSTM or GRU; "
                         f"got {type(module).__name__}")
    batch, steps, _ = inputs.shape
    lengths = torch.full((batch,), steps) if lengths is None else lengths.cpu()
    real = (torch.arange(steps)[None, :] < lengths[:, None]).to(inputs.device)  # (B, T)
    directions = 2 if module.bidirectional else 1
    h0, c0 = initial if isinstance(initial, tuple) else (initial, None)
    gates: dict[tuple[int, int], dict[str, Tensor]] = {}
    cells: dict[tuple[int, int], Tensor] = {}
    finals_h, finals_c = [], []
    layer_input = inputs
    for layer in range(module.num_layers):
        if layer > 0 and module.training and module.dropout > 0:
            layer_input = F.dropout(layer_input, module.dropout, training=True)
        outputs = []
        for direction in range(directions):
            index = layer * directions + direction
            start = (None if h0 is None else h0[index], None if c0 is None else c0[index])
            out, h, c, step_gates, step_cells = _run_direction(
                module, kind, layer, direction, layer_input, real, start, on_step)
            outputs.append(out)
            finals_h.append(h)
            finals_c.append(c)
            gates[(layer, direction)] = step_gates
            if step_cells is not None:
                cells[(layer, direction)] = step_cells
        layer_input = torch.cat(outputs, dim=-1)  # (B, T, D*H)
    return Trace(outputs=layer_input, mask=real, final_hidden=torch.stack(finals_h),
                 final_cell=torch.stack(finals_c) if kind == "LSTM" else None,
                 gates=gates, cells=cells)


def _run_direction(module: nn.RNNBase, kind: str, layer: int, direction: int,
                   inputs: Tensor, real: Tensor, start: tuple, on_step: StepHook | None):
    suffix = f"l{layer}" + ("_reverse" if direction else "")
    w_ih, w_hh = getattr(module, f"weight_ih_{suffix}"), getattr(module, f"weight_hh_{suffix}")
    b_ih = getattr(module, f"bias_ih_{suffix}", None)
    b_hh = getattr(module, f"bias_hh_{suffix}", None)
    batch, steps, _ = inputs.shape
    zeros = inputs.new_zeros(batch, module.hidden_size)
    h = zeros if start[0] is None else start[0]
    c = zeros if start[1] is None else start[1]
    outputs: list[Tensor | None] = [None] * steps
    gates: dict[str, list] = {}
    cells: list[Tensor | None] = [None] * steps
    order = range(steps - 1, -1, -1) if direction else range(steps)
    for t in order:
        x, keep = inputs[:, t], real[:, t, None]  # keep: (B, 1), False at padding
        if kind == "LSTM":
            new_h, new_c, step_gates = lstm_step(x, h, c, w_ih, w_hh, b_ih, b_hh)
            c = torch.where(keep, new_c, c)
            cells[t] = c * keep
        elif kind == "GRU":
            new_h, step_gates = gru_step(x, h, w_ih, w_hh, b_ih, b_hh)
        else:
            new_h, step_gates = rnn_step(x, h, w_ih, w_hh, b_ih, b_hh, module.nonlinearity)
        h = torch.where(keep, new_h, h)
        if on_step is not None:
            on_step(layer, direction, t, h)
        outputs[t] = h * keep
        for name, value in step_gates.items():
            gates.setdefault(name, [None] * steps)[t] = value * keep
    stacked = {name: torch.stack(values, dim=1) for name, values in gates.items()}
    return (torch.stack(outputs, dim=1), h, c, stacked,
            torch.stack(cells, dim=1) if kind == "LSTM" else None)


def _linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    return x @ weight.T + (bias if bias is not None else 0)


def _affine(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
            b_hh: Tensor | None) -> Tensor:
    return _linear(x, w_ih, b_ih) + _linear(h, w_hh, b_hh)


def trace_encoder(encoder, inputs: Tensor, lengths: Tensor | None = None,
                  initial: Tensor | tuple[Tensor, Tensor] | None = None,
                  on_step: StepHook | None = None) -> Trace:
    """``trace`` for a ``RecurrentEncoder``: its torch module, or the single-layer modules of
    its locked-dropout stack one after another (layers numbered across the stack, locked
    dropout between them when training).

    Shape: inputs (B, T, I) embedded tokens, lengths (B,), initial (L*D, B, H).
    """
    stack = list(encoder.rnn.layers) if hasattr(encoder.rnn, "layers") else None
    if stack is None:
        return trace(encoder.rnn, inputs, lengths, initial, on_step)
    directions = encoder.num_directions
    h0, c0 = initial if isinstance(initial, tuple) else (initial, None)
    traces = []
    layer_input = inputs
    for layer, module in enumerate(stack):
        if layer > 0:
            layer_input = encoder.rnn.dropout(layer_input)
        rows = slice(layer * directions, (layer + 1) * directions)
        start = None if h0 is None else (h0[rows] if c0 is None else (h0[rows], c0[rows]))
        hook = None if on_step is None else (
            lambda _, direction, t, h, layer=layer: on_step(layer, direction, t, h))
        traces.append(trace(module, layer_input, lengths, start, hook))
        layer_input = traces[-1].outputs
    combined = Trace(outputs=layer_input, mask=traces[0].mask,
                     final_hidden=torch.cat([t.final_hidden for t in traces]),
                     final_cell=(torch.cat([t.final_cell for t in traces])
                                 if traces[0].final_cell is not None else None))
    for layer, part in enumerate(traces):
        for (_, direction), gates in part.gates.items():
            combined.gates[(layer, direction)] = gates
        for (_, direction), cells in part.cells.items():
            combined.cells[(layer, direction)] = cells
    return combined
