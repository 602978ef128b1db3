"""Dropout variants that make recurrent language models strong (Merity et al. 2018, AWD-LSTM).

``LockedDropout`` is variational dropout (Gal & Ghahramani 2016): one mask per sequence,
reused at every time step. ``DropConnect`` (Wan et al. 2013) drops entries of a weight
matrix; registered as a parametrization on the hidden-to-hidden matrices it is the
"weight-drop" of AWD-LSTM, and the fused cuDNN / CPU kernels still run.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils import parametrize

from nlpseq.checks import check_probability


class LockedDropout(nn.Module):
    """Drop the same features at every time step of a sequence.

    Shape:
        inputs (B, T, F) -> (B, T, F); the mask is (B, 1, F).
    """

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = check_probability("dropout", p)

    def forward(self, inputs: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return inputs
        keep = 1.0 - self.p
        mask = inputs.new_empty(inputs.size(0), 1, inputs.size(2)).bernoulli_(keep)  # (B, 1, F)
        return inputs * mask / keep

    def extra_repr(self) -> str:
        return f"p={self.p}"


class DropConnect(nn.Module):
    """A parametrization that drops weight entries while training (identity in eval)."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, weight: Tensor) -> Tensor:
        return F.dropout(weight, self.p, self.training)


def apply_weight_drop(rnn: nn.RNNBase, p: float) -> None:
    """Register DropConnect on every hidden-to-hidden matrix (``weight_hh_l*``) of ``rnn``."""
    if p == 0.0:
        return
    for name in [n for n, _ in rnn.named_parameters() if n.startswith("weight_hh")]:
        parametrize.register_parametrization(rnn, name, DropConnect(p))
