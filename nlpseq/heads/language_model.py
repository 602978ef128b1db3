"""Language-model head: the encoder's output at each step -> logits over the vocabulary.

With ``embedding`` given, the output layer reuses the input embedding matrix (weight
tying: Press & Wolf 2017; Inan et al. 2017), which saves V*E parameters and regularises
the model. When the encoder's output size differs from the embedding size, a linear
projection to the embedding size comes first. Shape legend: B batch, T time, F features,
E embedding size, V vocabulary.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class LanguageModelHead(nn.Module):
    """Logits over the vocabulary for every position.

    Args:
        input_size: features per step of the encoder's outputs (F).
        vocab_size: number of output classes (V).
        embedding: the input embedding to tie the output weights to, or None for an
            untied ``Linear(F, V)``.

    Shape:
        features (..., F) -> logits (..., V)
    """

    def __init__(self, input_size: int, vocab_size: int, embedding: nn.Embedding | None = None):
        super().__init__()
        self.output_size = vocab_size
        self.embedding = embedding
        if embedding is None:
            self.projection, self.output = None, nn.Linear(input_size, vocab_size)
            return
        dim = embedding.embedding_dim
        self.projection = nn.Linear(input_size, dim) if input_size != dim else None
        self.output = None
        self.bias = nn.Parameter(embedding.weight.new_zeros(vocab_size))

    @property
    def tied(self) -> bool:
        return self.embedding is not None

    def forward(self, features: Tensor) -> Tensor:
        if self.output is not None:
            return self.output(features)  # (..., V)
        if self.projection is not None:
            features = self.projection(features)  # (..., E)
        return F.linear(features, self.embedding.weight, self.bias)  # (..., V)
