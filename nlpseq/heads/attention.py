"""Attention over the encoder's outputs for a recurrent decoder.

Three scores, one interface: ``Bahdanau`` (additive, Bahdanau et al. 2015:
``v^T tanh(W_q q + W_k k)``), ``Luong`` ``dot`` (``q^T k``) and ``general`` (``q^T W k``)
(Luong et al. 2015). The keys are prepared once per source batch (``prepare``), so each
decoding step pays only for its query. Padding positions of the source get zero weight.
Shape legend: B batch, T decoder steps, S source positions, Q query size, M memory size.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from nlpseq.errors import NlpseqError

AttentionKind = Literal["none", "bahdanau", "luong_dot", "luong_general"]
ATTENTIONS = ("none", "bahdanau", "luong_dot", "luong_general")


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis where ``mask`` is True; masked positions get exactly 0.

    Shape: scores (B, T, S), mask (B, 1, S) or (B, T, S) -> weights (B, T, S)
    """
    return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


class Attention(nn.Module):
    """Score a query against every source position and return the weighted memory.

    Args:
        kind: ``bahdanau``, ``luong_dot`` or ``luong_general``.
        query_size: features of the decoder state that asks (Q).
        memory_size: features of each encoder output (M); ``luong_dot`` needs Q == M.
        hidden_size: the additive score's inner size (``bahdanau`` only; default Q).
    """

    def __init__(self, kind: AttentionKind, query_size: int, memory_size: int,
                 hidden_size: int | None = None) -> None:
        super().__init__()
        if kind not in ATTENTIONS or kind == "none":
            raise NlpseqError(f"Unknown attention {kind!r}; choose one of "
                              f"{', '.join(map(repr, ATTENTIONS[1:]))}")
        if kind == "luong_dot" and query_size != memory_size:
            raise NlpseqError(
                f"attention=luong_dot needs the decoder's hidden size ({query_size}) to equal "
                f"the encoder's output size ({memory_size}); use luong_general or bahdanau")
        self.kind = kind
        if kind == "bahdanau":
            hidden_size = hidden_size or query_size
            self.key_layer = nn.Linear(memory_size, hidden_size, bias=False)
            self.query_layer = nn.Linear(query_size, hidden_size, bias=False)
            self.energy = nn.Linear(hidden_size, 1, bias=False)
        elif kind == "luong_general":
            self.key_layer = nn.Linear(memory_size, query_size, bias=False)

    def prepare(self, memory: Tensor) -> Tensor:
        """The keys, computed once per source batch: (B, S, M) -> (B, S, K)."""
        return memory if self.kind == "luong_dot" else self.key_layer(memory)

    def forward(self, query: Tensor, keys: Tensor, memory: Tensor,
                mask: Tensor) -> tuple[Tensor, Tensor]:
        """Context vectors and attention weights for one or many decoder steps.

        ``query`` may hold G rows per memory row (G consecutive rows read memory row b:
        beam search's hypotheses of one sentence), so the memory is never copied per row.

        Shape:
            query (B * G, T, Q), keys (B, S, K) from ``prepare``, memory (B, S, M),
            mask (B, S) True at real source tokens -> context (B * G, T, M),
            weights (B * G, T, S)
        """
        rows, steps = query.shape[:2]
        sources = keys.size(0)
        if rows % sources:
            raise ValueError(f"{rows} query rows do not divide among {sources} memory rows")
        query = query.reshape(sources, rows // sources * steps, -1)  # (B, G * T, Q)
        if self.kind == "bahdanau":
            hidden = torch.tanh(self.query_layer(query)[:, :, None] + keys[:, None])  # (B,GT,S,K)
            scores = self.energy(hidden).squeeze(-1)  # (B, G * T, S)
        else:
            scores = torch.bmm(query, keys.transpose(1, 2))  # (B, G * T, S)
        weights = masked_softmax(scores, mask[:, None, :])  # (B, G * T, S)
        context = torch.bmm(weights, memory)  # (B, G * T, M)
        return context.view(rows, steps, -1), weights.view(rows, steps, -1)
