"""Plain torch.nn assemblies of embedding, encoder and head, one per task."""

from nlpseq.models.classifier import RecurrentClassifier

__all__ = ["RecurrentClassifier"]
