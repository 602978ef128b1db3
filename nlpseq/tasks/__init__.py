"""Tasks: one LightningModule per task, plus building and loading them from checkpoints."""

from nlpseq.tasks.generation import GenerationTask
from nlpseq.tasks.probe import ProbeTask
from nlpseq.tasks.sentiment import SentimentTask
from nlpseq.tasks.translation import TranslationTask

__all__ = ["GenerationTask", "ProbeTask", "SentimentTask", "TranslationTask"]
