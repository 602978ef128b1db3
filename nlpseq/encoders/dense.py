"""Exact recurrent encoding of right-padded batches without `PackedSequence`.

Why: on a CPU, torch runs a dense `(B, T, I)` batch through its fused kernels, but a packed
batch through a per-step path whose backward pass grows much faster than linearly with the
length (a bidirectional LSTM over 200-260 tokens: about 7x slower than dense; 40-70x at
1,000 tokens; pytorch/pytorch#149194). cuDNN on a GPU handles packing natively.

The same numbers as packing, from dense kernel calls, one layer and direction at a time:
- forward direction: a right-padded row's outputs at its real positions depend only on the
  steps before them, so the dense kernel gives them exactly;
- reverse direction: each row is reversed within its own length (a gather), run forward,
  and reversed back, so it starts at the row's true last token, never at padding;
- final h: the output at each row's true last step;
- final c (LSTM only, not in the outputs): the kernel runs to the shortest length, where
  every row is still real, and on from there; each longer row's c is then carried through
  its few remaining steps by the cell equation c_t = f_t * c_{t-1} + i_t * g_t, with the
  gates computed in one matrix product from the inputs and the outputs h_{t-1} the kernel
  already returned (length buckets keep that tail short).
Shape legend: B batch, T time, I input features, H hidden, L layers, D directions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# torch's single-call kernels behind nn.RNN / nn.GRU / nn.LSTM, by module class
_KERNELS = {"LSTM": torch.lstm, "GRU": torch.gru, "RNN_TANH": torch.rnn_tanh,
            "RNN_RELU": torch.rnn_relu}


def reverse_within_lengths(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse the first ``lengths[b]`` steps of every row; padding stays where it is.

    Its own inverse. Shape: x (B, T, F), lengths (B,) -> (B, T, F).
    """
    return _reorder(x, _reversal_index(lengths.to(x.device), x.size(1)))


def _reversal_index(lengths: Tensor, T: int) -> Tensor:
    """For ``x.flatten(0, 1)`` of a (B, T, F) batch: the row each position of the reversed
    batch reads. Shape: (B*T,)."""
    steps = torch.arange(T, device=lengths.device)  # (T,)
    ends = lengths[:, None]  # (B, 1)
    within = torch.where(steps < ends, ends - 1 - steps, steps)  # (B, T)
    return (within + T * torch.arange(len(lengths), device=lengths.device)[:, None]).flatten()


def dense_forward(
    layers: list[tuple[nn.RNNBase, int]],
    between_layers: Callable[[Tensor], Tensor],
    inputs: Tensor,
    lengths: Tensor,
    initial_state: Tensor | tuple[Tensor, Tensor] | None,
) -> tuple[Tensor, Tensor | tuple[Tensor, Tensor]]:
    """Run a (multi-layer, maybe bidirectional) recurrent stack over a right-padded batch.

    Args:
        layers: for each layer, the torch module holding its weights and the layer's
            index inside that module (``weight_ih_l{k}``).
        between_layers: what the stack does between layers (dropout), e.g. ``F.dropout``.
        inputs: left-aligned sequences, padding after each.
        lengths: true lengths, 1 <= length <= T, on the CPU.
        initial_state: h_0, or (h_0, c_0) for an LSTM; zeros when None.

    Returns:
        ``(outputs, state)`` as torch's module returns them for a packed batch: outputs
        (B, T, D*H), zero at padding; state h_n or (h_n, c_n), each (L*D, B, H), taken at
        each row's true end.
    """
    module = layers[0][0]
    is_lstm = module.mode == "LSTM"
    D = 1 + module.bidirectional
    B, T, _ = inputs.shape
    longest = int(lengths.max())
    h0, c0 = _split_state(initial_state, is_lstm)
    x = inputs[:, :longest]  # (B, T', I): steps past the longest row are padding everywhere
    reversal = _reversal_index(lengths.to(inputs.device), longest) if D > 1 else None
    finals_h, finals_c = [], []
    for depth, (rnn, k) in enumerate(layers):
        if depth:
            x = between_layers(x)
        directions = []
        for direction in range(D):
            slot = depth * D + direction
            start = [None if s is None else s[slot] for s in (h0, c0)]
            run_input = _reorder(x, reversal) if direction else x
            out, h_n, c_n = run_direction(rnn, k, direction, run_input, lengths, *start)
            directions.append(_reorder(out, reversal) if direction else out)
            finals_h.append(h_n)
            finals_c.append(c_n)
        x = torch.cat(directions, dim=-1) if D > 1 else directions[0]  # (B, T', D*H)
    mask = torch.arange(longest, device=x.device)[None, :] < lengths.to(x.device)[:, None]
    outputs = x * mask[:, :, None]  # (B, T', D*H)
    if longest < T:
        outputs = F.pad(outputs, (0, 0, 0, T - longest))  # (B, T, D*H)
    h_n = torch.stack(finals_h)  # (L*D, B, H)
    if is_lstm:
        return outputs, (h_n, torch.stack(finals_c))
    return outputs, h_n


def run_direction(rnn: nn.RNNBase, k: int, direction: int, x: Tensor, lengths: Tensor,
                  h0: Tensor | None, c0: Tensor | None) -> tuple[Tensor, Tensor, Tensor | None]:
    """One layer ``k`` and direction of ``rnn`` over right-padded ``x``, read exactly.

    Returns:
        outputs (B, T, H), exact at real positions; h and c (LSTM, else None) after each
        row's last real step, each (B, H).
    """
    suffix = f"_l{k}" + ("_reverse" if direction else "")
    # read once: with weight drop each read draws a new mask, and every use below must
    # see the same weights
    weights = [getattr(rnn, name + suffix) for name in ("weight_ih", "weight_hh", "bias_ih",
                                                        "bias_hh")]
    B, H = x.size(0), rnn.hidden_size
    h0 = x.new_zeros(B, H) if h0 is None else h0
    kernel = _KERNELS[rnn.mode]
    if rnn.mode != "LSTM":
        out, _ = kernel(x, h0[None], weights, True, 1, 0.0, rnn.training, False, True)
        return out, _at_last_step(out, lengths), None
    c0 = x.new_zeros(B, H) if c0 is None else c0
    shortest = int(lengths.min())
    out, h_s, c_s = kernel(x[:, :shortest], [h0[None], c0[None]], weights, True, 1, 0.0,
                           rnn.training, False, True)  # every row is real up to here
    if shortest == x.size(1):
        return out, h_s[0], c_s[0]
    rest, _, _ = kernel(x[:, shortest:], [h_s, c_s], weights, True, 1, 0.0, rnn.training,
                        False, True)
    out = torch.cat([out, rest], dim=1)  # (B, T, H)
    c = _carry_cell(weights, x, out, lengths, shortest, c_s[0])
    return out, _at_last_step(out, lengths), c


def _carry_cell(weights: list[Tensor], x: Tensor, out: Tensor, lengths: Tensor,
                start: int, c: Tensor) -> Tensor:
    """Each row's LSTM cell state after its last real step, from c at ``start``: the cell
    equation over steps start..T-1 with gates from the inputs and the kernel's outputs."""
    w_ih, w_hh, b_ih, b_hh = weights
    h_prev = out[:, start - 1:-1]  # (B, T-start, H): h_{t-1} for t = start..T-1
    gates = F.linear(x[:, start:], w_ih, b_ih) + F.linear(h_prev, w_hh, b_hh)  # (B, T-s, 4H)
    i, f, g, _ = gates.chunk(4, dim=-1)  # torch's gate order: input, forget, cell, output
    i, f, g = i.sigmoid(), f.sigmoid(), g.tanh()  # (B, T-s, H)
    still_real = (torch.arange(start, x.size(1), device=x.device)[None, :]
                  < lengths.to(x.device)[:, None])  # (B, T-s)
    for t in range(x.size(1) - start):
        c = torch.where(still_real[:, t, None], f[:, t] * c + i[:, t] * g[:, t], c)  # (B, H)
    return c


def _reorder(x: Tensor, index: Tensor) -> Tensor:
    """``x`` (B, T, F) with its B*T positions read in ``index`` order. ``index`` must be its
    own inverse (a reversal within lengths): the backward pass reads the gradient with it."""
    return _Reversal.apply(x, index)


class _Reversal(torch.autograd.Function):
    """A reversal's gradient is the same reversal: it is a permutation that is its own
    inverse. Reading the gradient with it is a gather, where autograd's generic
    ``index_select`` backward zero-fills and scatter-adds (slower on a CPU)."""

    @staticmethod
    def forward(ctx, x: Tensor, index: Tensor) -> Tensor:
        ctx.save_for_backward(index)
        return x.reshape(-1, x.size(-1)).index_select(0, index).view_as(x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        (index,) = ctx.saved_tensors
        return _Reversal.apply(grad, index), None


def _at_last_step(out: Tensor, lengths: Tensor) -> Tensor:
    """The output at each row's last real step. Shape: out (B, T, H) -> (B, H)."""
    B, T, _ = out.shape
    rows = torch.arange(B, device=out.device) * T + lengths.to(out.device) - 1  # (B,)
    return out.reshape(B * T, -1).index_select(0, rows)


def _split_state(state, is_lstm: bool) -> tuple[Tensor | None, Tensor | None]:
    if state is None:
        return None, None
    return state if is_lstm else (state, None)
