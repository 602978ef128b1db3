"""Task heads: read an `EncoderOutput` and never ask which cell produced it."""

from nlpseq.heads.classification import (
    POOLINGS,
    AttentionPool,
    ClassificationHead,
    attention_pool,
    masked_max,
    masked_mean,
)
from nlpseq.heads.language_model import LanguageModelHead

__all__ = [
    "POOLINGS",
    "AttentionPool",
    "ClassificationHead",
    "LanguageModelHead",
    "attention_pool",
    "masked_max",
    "masked_mean",
]
