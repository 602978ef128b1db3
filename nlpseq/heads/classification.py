"""Sequence classification: pool an encoder's outputs over time, then predict a class.

Poolings: the final state ('last'), masked mean and max over real tokens, and learned
attention pooling (Yang et al. 2016, "Hierarchical Attention Networks"; Lin et al. 2017,
"A Structured Self-attentive Sentence Embedding"). Shape legend: B batch, T time,
F features (the encoder's output_size), C classes.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from nlpseq.checks import check_positive_int
from nlpseq.encoders.recurrent import EncoderOutput
from nlpseq.errors import NlpseqError


def masked_mean(outputs: Tensor, mask: Tensor) -> Tensor:
    """Mean over real tokens only.

    Shape:
        outputs (B, T, F), mask (B, T) bool -> (B, F).
    """
    weights = mask.unsqueeze(-1).to(outputs.dtype)  # (B, T, 1)
    total = (outputs * weights).sum(dim=1)  # (B, F)
    return total / weights.sum(dim=1).clamp(min=1.0)  # (B, F)


def masked_max(outputs: Tensor, mask: Tensor) -> Tensor:
    """Max over real tokens only; a padded position is never picked.

    Shape:
        outputs (B, T, F), mask (B, T) bool -> (B, F).
    """
    filled = outputs.masked_fill(~mask.unsqueeze(-1), float("-inf"))  # (B, T, F)
    return filled.max(dim=1).values  # (B, F)


def attention_pool(outputs: Tensor, scores: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """Softmax the scores over real tokens and take the weighted sum of the outputs.

    Returns:
        The pooled vector and the attention weights (zero at pads, summing to 1).

    Shape:
        outputs (B, T, F), scores (B, T), mask (B, T) bool -> (B, F), (B, T).
    """
    scores = scores.masked_fill(~mask, float("-inf"))  # (B, T)
    weights = torch.softmax(scores, dim=-1)  # (B, T)
    pooled = torch.bmm(weights.unsqueeze(1), outputs).squeeze(1)  # (B, F)
    return pooled, weights


# Parameter-free poolings, by name; 'attention' has parameters and lives in AttentionPool.
_POOLERS = {
    "last": lambda encoded: encoded.last_hidden,
    "mean": lambda encoded: masked_mean(encoded.outputs, encoded.mask),
    "max": lambda encoded: masked_max(encoded.outputs, encoded.mask),
}
POOLINGS = (*_POOLERS, "attention")
Pooling = Literal["last", "mean", "max", "attention"]


class AttentionPool(nn.Module):
    """Score each position against a learned query through a tanh layer (Yang et al. 2016).

    score_t = q . tanh(W h_t + b); the weights are a masked softmax of the scores.

    Args:
        input_size: features per position (F).
        attention_size: width of the tanh layer; defaults to input_size.
    """

    def __init__(self, input_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = attention_size or input_size
        self.proj = nn.Linear(input_size, attention_size)
        self.query = nn.Linear(attention_size, 1, bias=False)

    def forward(self, outputs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Shape: outputs (B, T, F), mask (B, T) -> pooled (B, F), weights (B, T)."""
        scores = self.query(torch.tanh(self.proj(outputs))).squeeze(-1)  # (B, T)
        return attention_pool(outputs, scores, mask)


class ClassificationHead(nn.Module):
    """Pool the encoder's outputs over time, then dropout + linear to class logits.

    Args:
        input_size: the encoder's output_size (F).
        num_classes: number of classes (C).
        pooling: 'last' (top layer's final state, both directions), 'mean', 'max'
            (over real tokens) or 'attention' (learned, Yang et al. 2016).
        dropout: dropout on the pooled vector, in [0, 1).
    """

    def __init__(
        self,
        input_size: int,
        num_classes: int,
        pooling: Pooling = "max",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            choices = ", ".join(repr(p) for p in POOLINGS)
            raise NlpseqError(f"Unknown pooling {pooling!r}; choose one of {choices}")
        for name, value in (("input_size", input_size), ("num_classes", num_classes)):
            check_positive_int(name, value)
        if not 0.0 <= dropout < 1.0:
            raise NlpseqError(f"dropout must be in [0, 1); got {dropout!r}")

        self.pooling = pooling
        self.output_size = num_classes
        self.attention = AttentionPool(input_size) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(input_size, num_classes)

    def pool(self, encoded: EncoderOutput) -> Tensor:
        """One vector per sequence. Shape: (B, F)."""
        if self.attention is not None:
            return self.attention(encoded.outputs, encoded.mask)[0]
        return _POOLERS[self.pooling](encoded)

    def forward(self, encoded: EncoderOutput) -> Tensor:
        """Logits for each sequence.

        Args:
            encoded: any encoder's output; outputs (B, T, F), mask (B, T).

        Returns:
            Unnormalised class scores. Shape (B, C).
        """
        return self.classify(self.pool(encoded))  # (B, C)

    def classify(self, pooled: Tensor) -> Tensor:
        """Logits from pooled vectors (B, F) -> (B, C); mixup calls it on mixed vectors."""
        return self.linear(self.dropout(pooled))
