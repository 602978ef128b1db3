"""Data: raw splits from files or named datasets, tokenized and batched by length."""

from nlpseq.data.batching import BucketBatchSampler, PadCollator, padding_efficiency
from nlpseq.data.language_model import LanguageModelDataModule
from nlpseq.data.sentiment import SentimentDataModule

__all__ = [
    "BucketBatchSampler",
    "LanguageModelDataModule",
    "PadCollator",
    "SentimentDataModule",
    "padding_efficiency",
]
