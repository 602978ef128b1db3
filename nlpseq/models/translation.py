"""Encoder-decoder translation model in plain torch.nn: source embedding -> recurrent
encoder (any cell, bidirectional allowed) -> recurrent decoder with attention (any cell)
-> vocabulary projection tied to the target embedding.

``forward`` trains with teacher forcing, optionally scheduled sampling (Bengio et al.
2015: with probability 1 - ratio a row reads its own previous prediction); ``start`` and
``step`` are what greedy and beam search call, and ``reorder_state`` lets beam search
follow its beams. Shape legend: B batch, S source length, T target length, V target
vocabulary, E embedding, H decoder hidden.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from nlpseq.checks import check_probability
from nlpseq.encoders import RecurrentEncoder
from nlpseq.heads.decoder import DecoderState, RecurrentDecoder, SourceMemory
from nlpseq.heads.language_model import LanguageModelHead

State = tuple[DecoderState, SourceMemory]


class RecurrentTranslator(nn.Module):
    """Translate token sequences with any encoder cell and any decoder cell.

    Args:
        encoder: builds the encoder given ``input_size`` (a Hydra partial of
            ``RecurrentEncoder``).
        decoder: builds the decoder given ``input_size`` and ``encoder`` (a Hydra partial of
            ``RecurrentDecoder``).
        source_vocab_size, target_vocab_size, pad_id: fixed by the tokenizers.
        embedding_dim: size of source and target token vectors (E).
        embedding_dropout: dropout on both embeddings.
        tie_embeddings: the output layer reuses the target embedding (a projection to E
            first when the decoder's size is not E).
        share_embeddings: one embedding for both languages (a joint vocabulary).
    """

    def __init__(
        self,
        encoder: Callable[..., RecurrentEncoder],
        decoder: Callable[..., RecurrentDecoder],
        source_vocab_size: int,
        target_vocab_size: int,
        pad_id: int = 0,
        embedding_dim: int = 256,
        embedding_dropout: float = 0.0,
        tie_embeddings: bool = True,
        share_embeddings: bool = False,
    ) -> None:
        super().__init__()
        self.source_embedding = nn.Embedding(source_vocab_size, embedding_dim, padding_idx=pad_id)
        self.target_embedding = (self.source_embedding if share_embeddings else
                                 nn.Embedding(target_vocab_size, embedding_dim,
                                              padding_idx=pad_id))
        self.embedding_dropout = nn.Dropout(check_probability("embedding_dropout",
                                                              embedding_dropout))
        self.encoder = encoder(input_size=embedding_dim)
        self.decoder = decoder(input_size=embedding_dim, encoder=self.encoder)
        self.head = LanguageModelHead(self.decoder.output_size, target_vocab_size,
                                      self.target_embedding if tie_embeddings else None)

    def start(self, source: Tensor, source_lengths: Tensor) -> State:
        """Encode the sources: the decoder's initial state and the memory it attends to.

        Shape: source (B, S), source_lengths (B,)
        """
        embedded = self.embedding_dropout(self.source_embedding(source))  # (B, S, E)
        return self.decoder.start(self.encoder(embedded, source_lengths))

    def forward(self, source: Tensor, source_lengths: Tensor, target_inputs: Tensor,
                teacher_forcing: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """Logits for every target position given the gold previous tokens.

        With ``teacher_forcing`` < 1 (training only), each row reads its own previous
        greedy prediction instead of the gold token with probability 1 - teacher_forcing.

        Shape: target_inputs (B, T) = <bos> y_1 .. y_{T-1} -> logits (B, T, V),
            attention weights (B, T, S) or None
        """
        state, memory = self.start(source, source_lengths)
        if teacher_forcing >= 1.0 or not self.training:
            embedded = self.embedding_dropout(self.target_embedding(target_inputs))  # (B, T, E)
            outputs, _, weights = self.decoder(embedded, state, memory)  # (B, T, H)
            return self.head(outputs), weights
        logits, weights = [], []
        tokens = target_inputs[:, 0]  # (B,)
        for t in range(target_inputs.size(1)):
            if t > 0:
                gold = torch.rand(tokens.shape, device=tokens.device) < teacher_forcing
                tokens = torch.where(gold, target_inputs[:, t], logits[-1].argmax(-1))
            step_logits, (state, memory), weight = self._step(tokens, (state, memory))
            logits.append(step_logits)
            weights.append(weight)
        stacked = torch.stack(weights, dim=1) if weights[0] is not None else None
        return torch.stack(logits, dim=1), stacked

    def _step(self, tokens: Tensor, state: State) -> tuple[Tensor, State, Tensor | None]:
        decoder_state, memory = state
        embedded = self.embedding_dropout(self.target_embedding(tokens))  # (B, E)
        output, decoder_state, weights = self.decoder.step(embedded, decoder_state, memory)
        return self.head(output), (decoder_state, memory), weights  # (B, V)

    def step(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """One decoding step: the ``step_fn`` of ``nlpseq.decoding``.

        Shape: tokens (B,) -> logits (B, V)
        """
        logits, state, _ = self._step(tokens, state)
        return logits, state

    @staticmethod
    def reorder_state(state: State, index: Tensor) -> State:
        """The state of rows ``index.flatten()``: beam search follows and expands its beams.

        A 2-D ``index`` (B', K) holds in each row the hypotheses of one sentence, so the
        source memory keeps one row per sentence, which the K hypotheses attend to
        together, instead of K copies of it; a 1-D index gives each row its own copy.
        """
        decoder_state, memory = state
        if index.dim() == 1:
            index = index[:, None]
        flat = index.flatten()
        hidden = decoder_state.hidden
        rows = (hidden[0] if isinstance(hidden, tuple) else hidden).size(1)
        if isinstance(hidden, tuple):
            hidden = tuple(h.index_select(1, flat) for h in hidden)
        else:
            hidden = hidden.index_select(1, flat)  # (L, B' * K, H)
        feed = decoder_state.feed.index_select(0, flat) if decoder_state.feed is not None else None
        sentences = index[:, 0] // (rows // memory.mask.size(0))  # (B',) memory row of each
        if not (len(sentences) == memory.mask.size(0)
                and torch.equal(sentences, torch.arange(len(sentences), device=flat.device))):
            memory = SourceMemory(*(None if part is None else part.index_select(0, sentences)
                                    for part in memory))
        return DecoderState(hidden, feed), memory
