"""Tasks: one LightningModule per task, plus building and loading them from checkpoints."""

from nlpseq.tasks.sentiment import SentimentTask

__all__ = ["SentimentTask"]
