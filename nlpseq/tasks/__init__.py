"""Tasks: one LightningModule per task on the protocol of ``RecurrentTask``, plus building
and loading them from checkpoints."""

import inspect

from nlpseq.tasks.base import RecurrentTask
from nlpseq.tasks.generation import GenerationTask
from nlpseq.tasks.probe import ProbeTask
from nlpseq.tasks.sentiment import SentimentTask
from nlpseq.tasks.translation import TranslationTask

BUILT_IN = (SentimentTask, GenerationTask, TranslationTask, ProbeTask)


def tasks_reading(option: str) -> list[str]:
    """The built-in tasks that read an ``nlpseq-predict`` or ``nlpseq-eval`` option, for
    an error that says which checkpoint the option needs."""
    return [task.task_name for task in BUILT_IN
            if option == task.text_option or option in task.predict_options
            or option in inspect.signature(task.eval_options).parameters]


__all__ = ["BUILT_IN", "GenerationTask", "ProbeTask", "RecurrentTask", "SentimentTask",
           "TranslationTask", "tasks_reading"]
