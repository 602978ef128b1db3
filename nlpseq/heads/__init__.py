"""Task heads: read an `EncoderOutput` and never ask which cell produced it."""

from nlpseq.heads.attention import ATTENTIONS, Attention
from nlpseq.heads.classification import (
    POOLINGS,
    AttentionPool,
    ClassificationHead,
    attention_pool,
    masked_max,
    masked_mean,
)
from nlpseq.heads.decoder import Bridge, RecurrentDecoder
from nlpseq.heads.language_model import LanguageModelHead

__all__ = [
    "ATTENTIONS",
    "Attention",
    "Bridge",
    "RecurrentDecoder",
    "POOLINGS",
    "AttentionPool",
    "ClassificationHead",
    "LanguageModelHead",
    "attention_pool",
    "masked_max",
    "masked_mean",
]
