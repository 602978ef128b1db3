"""Data: raw splits from files or named datasets, tokenized and batched by length, and
generated long-range probes."""

from nlpseq.data.batching import BucketBatchSampler, PadCollator, padding_efficiency
from nlpseq.data.language_model import LanguageModelDataModule
from nlpseq.data.probe_data import ProbeDataModule
from nlpseq.data.sentiment import SentimentDataModule
from nlpseq.data.translation import ParallelCollator, TranslationDataModule

__all__ = [
    "BucketBatchSampler",
    "LanguageModelDataModule",
    "PadCollator",
    "ParallelCollator",
    "ProbeDataModule",
    "SentimentDataModule",
    "TranslationDataModule",
    "padding_efficiency",
]
