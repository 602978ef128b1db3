"""Embedding -> recurrent encoder -> pooled classification head, in plain torch.nn.

The same module trains under Lightning (``nlpseq.tasks.SentimentTask``) and in a plain
PyTorch loop (``scripts/bench_train_step.py``), so the two can be timed on equal terms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from nlpseq.checks import check_probability
from nlpseq.encoders import RecurrentEncoder
from nlpseq.heads import ClassificationHead
from nlpseq.heads.classification import Pooling


class RecurrentClassifier(nn.Module):
    """Classify token sequences with any recurrent cell.

    Args:
        encoder: builds the encoder given ``input_size`` (a Hydra partial of
            ``RecurrentEncoder``), so the cell is chosen by config alone.
        vocab_size, num_classes, pad_id, unk_id: fixed by the tokenizer and the labels.
        embedding_dim: size of the learnt word vectors.
        embedding_dropout: dropout on the embedded inputs.
        word_dropout: probability of replacing a real input token by ``unk_id`` while
            training (a regulariser for small data; Iyyer et al. 2015).
        pooling, dropout: see ``ClassificationHead``.
    """

    def __init__(
        self,
        encoder: Callable[..., RecurrentEncoder],
        vocab_size: int,
        num_classes: int,
        pad_id: int = 0,
        unk_id: int = 1,
        embedding_dim: int = 300,
        embedding_dropout: float = 0.0,
        word_dropout: float = 0.0,
        pooling: Pooling = "max",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.pad_id, self.unk_id = pad_id, unk_id
        self.word_dropout = check_probability("word_dropout", word_dropout)
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.embedding_dropout = nn.Dropout(check_probability("embedding_dropout",
                                                              embedding_dropout))
        self.encoder = encoder(input_size=embedding_dim)
        self.head = ClassificationHead(self.encoder.output_size, num_classes, pooling=pooling,
                                       dropout=dropout)

    def forward(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """Args: tokens (B, T) ids, lengths (B,). Returns: logits (B, C)."""
        return self.head.classify(self.sentence_vectors(tokens, lengths))  # (B, C)

    def sentence_vectors(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """The pooled encoder outputs the head classifies. Shape: (B, F)."""
        return self.pool_embedded(self.embed(tokens), lengths)

    def embed(self, tokens: Tensor) -> Tensor:
        """Word vectors (B, T, E), with word dropout while training. Adversarial training
        perturbs these, so embedding dropout comes after, in ``pool_embedded``."""
        if self.training and self.word_dropout > 0:
            drop = torch.rand(tokens.shape, device=tokens.device) < self.word_dropout
            tokens = tokens.masked_fill(drop & (tokens != self.pad_id), self.unk_id)
        return self.embedding(tokens)  # (B, T, E)

    def pool_embedded(self, embedded: Tensor, lengths: Tensor) -> Tensor:
        """Embedding dropout, encoder and pooling over word vectors (B, T, E) -> (B, F)."""
        encoded = self.encoder(self.embedding_dropout(embedded), lengths)  # (B, T, D*H)
        return self.head.pool(encoded)  # (B, F)
