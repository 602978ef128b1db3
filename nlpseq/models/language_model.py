"""Embedding -> unidirectional recurrent encoder -> tied vocabulary projection.

A recurrent language model in plain torch.nn, with the regularisers of AWD-LSTM
(Merity et al. 2018) as options: locked (variational) dropout on the embeddings and the
outputs, and — set on the encoder — locked dropout between layers and weight-drop. The
recurrent state goes in and comes out, so training can carry it across consecutive
blocks (truncated BPTT) and generation reads a prompt once, then pays one step a token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from nlpseq.checks import check_probability
from nlpseq.encoders import RecurrentEncoder
from nlpseq.encoders.regularization import LockedDropout
from nlpseq.errors import NlpseqError
from nlpseq.heads.language_model import LanguageModelHead

State = Any  # h (L, B, H), or (h, c) for an LSTM; None means zeros
UNIDIRECTIONAL_ONLY = ("A language model needs a unidirectional encoder (a bidirectional one "
                       "would read the token it has to predict); set encoder.bidirectional=false")


class RecurrentLanguageModel(nn.Module):
    """Predict the next token with any recurrent cell.

    Args:
        encoder: builds the encoder given ``input_size`` (a Hydra partial of
            ``RecurrentEncoder``); it must be unidirectional.
        vocab_size, pad_id: fixed by the tokenizer.
        embedding_dim: size of the token vectors (E).
        embedding_dropout: dropout on the embedded inputs.
        output_dropout: dropout on the encoder's outputs, before the vocabulary projection.
        locked_dropout: use one dropout mask per sequence for both (variational dropout).
        tie_weights: share the input embedding with the output layer (a projection to E
            first when the encoder's output size is not E).
    """

    def __init__(
        self,
        encoder: Callable[..., RecurrentEncoder],
        vocab_size: int,
        pad_id: int = 0,
        embedding_dim: int = 256,
        embedding_dropout: float = 0.0,
        output_dropout: float = 0.0,
        locked_dropout: bool = False,
        tie_weights: bool = True,
    ) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
        self.encoder = encoder(input_size=embedding_dim)
        if self.encoder.num_directions != 1:
            raise NlpseqError(UNIDIRECTIONAL_ONLY)
        dropout = LockedDropout if locked_dropout else nn.Dropout
        self.embedding_dropout = dropout(check_probability("embedding_dropout", embedding_dropout))
        self.output_dropout = dropout(check_probability("output_dropout", output_dropout))
        self.head = LanguageModelHead(self.encoder.output_size, vocab_size,
                                      self.embedding if tie_weights else None)

    def forward(
        self, tokens: Tensor, lengths: Tensor | None = None, state: State = None
    ) -> tuple[Tensor, State]:
        """Logits for the next token at every position, and the state after the last one.

        Args:
            tokens: token ids; padding only after each sequence's end.
            lengths: true lengths, or None when no row is padded (contiguous blocks).
            state: the state to start from, e.g. the one the previous block returned.

        Shape:
            tokens (B, T), lengths (B,) -> logits (B, T, V), state (L, B, H)
        """
        embedded = self.embedding_dropout(self.embedding(tokens))  # (B, T, E)
        encoded = self.encoder(embedded, lengths, state)  # outputs (B, T, H)
        features = self.output_dropout(encoded.outputs)  # (B, T, H)
        return self.head(features), encoded.state()  # (B, T, V)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """One decoding step: the ``step_fn`` that ``nlpseq.decoding`` functions call.

        Shape:
            tokens (B,) -> logits (B, V), state (L, B, H)
        """
        logits, state = self(tokens[:, None], None, state)  # (B, 1, V)
        return logits[:, 0], state
