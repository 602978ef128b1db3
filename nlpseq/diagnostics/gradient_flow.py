"""How much gradient reaches each hidden state: the vanishing-gradient curve.

The fused RNN kernels compute every h_t inside one operation, so no gradient for an
individual h_t exists. ``GradientProbe`` runs one forward pass of a ``RecurrentEncoder``
through the written-out cell equations (``nlpseq.diagnostics.cells``: same weights, same
math, differentiable step by step) and records ||dL/dh_t|| of the top layer's forward
direction during backward. ``curve`` gives its mean by distance from each sequence's last
token: index 0 is h_T, index k is h_{T-k}. A vanilla RNN's curve falls geometrically with k;
a gated cell's stays up much longer.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nlpseq.diagnostics.cells import trace_encoder
from nlpseq.encoders.recurrent import EncoderOutput


class GradientProbe:
    """Install with ``encoder.diagnostic_forward = probe.forward`` for one training step."""

    def __init__(self) -> None:
        self.norms: Tensor | None = None  # (B, T) ||dL/dh_t||, filled in backward
        self.mask: Tensor | None = None  # (B, T)

    def forward(self, encoder, inputs: Tensor, lengths: Tensor | None,
                initial_state=None) -> EncoderOutput:
        top = encoder.num_layers - 1
        # float64: a float32 norm squares its entries and reads 0 once they are ~1e-23, long
        # before the gradient itself leaves float32's range (MPS has no float64)
        dtype = torch.float32 if inputs.device.type == "mps" else torch.float64
        self.norms = torch.zeros(inputs.shape[:2], dtype=dtype, device=inputs.device)  # (B, T)

        def record(t: int, grad: Tensor) -> None:
            self.norms[:, t] = grad.detach().to(dtype).norm(dim=-1)

        def watch(layer: int, direction: int, t: int, h: Tensor) -> None:
            if layer == top and direction == 0 and h.requires_grad:
                h.register_hook(lambda grad, t=t: record(t, grad))

        traced = trace_encoder(encoder, inputs, lengths, initial_state, on_step=watch)
        self.mask = traced.mask
        return EncoderOutput(outputs=traced.outputs, mask=traced.mask,
                             final_state=traced.final_hidden, final_cell=traced.final_cell)

    def curve(self) -> Tensor:
        """Mean ||dL/dh_t|| by distance from each row's last real token. Shape (T,)."""
        return norms_by_distance(self.norms, self.mask)


def norms_by_distance(norms: Tensor, mask: Tensor) -> Tensor:
    """Mean over the rows of ``norms`` (B, T) by distance k = length - 1 - t from each row's
    last real token (rows shorter than k + 1 do not count at k), for k up to the longest
    row's length - 1. A 0 is a gradient that left float32's range (below ~1e-38: it
    vanished), never a distance no row reached. Shape: (longest length,)."""
    lengths = mask.sum(dim=1, keepdim=True)  # (B, 1)
    steps = torch.arange(mask.shape[1], device=mask.device)[None, :]  # (1, T)
    distance = (lengths - 1 - steps)[mask]  # (N,) over real tokens
    sums = norms.new_zeros(mask.shape[1]).index_add_(0, distance, norms[mask])
    counts = norms.new_zeros(mask.shape[1]).index_add_(0, distance, torch.ones_like(norms[mask]))
    return (sums / counts.clamp(min=1))[: int(lengths.max())]


def first_to_last_ratio(curve: Tensor) -> float:
    """||dL/dh_1|| / ||dL/dh_T||: the farthest distance (the longest row's first token)
    against distance 0; 0.0 when the gradient vanished below float32's range on the way."""
    if curve.numel() == 0 or curve[0] == 0:
        return float("nan")
    return float(curve[-1] / curve[0])
