"""Plain torch.nn assemblies of embedding, encoder and head, one per task."""

from nlpseq.models.classifier import RecurrentClassifier
from nlpseq.models.language_model import RecurrentLanguageModel

__all__ = ["RecurrentClassifier", "RecurrentLanguageModel"]
