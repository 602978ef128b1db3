"""Plain torch.nn assemblies of embedding, encoder and head, one per task."""

from nlpseq.models.classifier import RecurrentClassifier
from nlpseq.models.language_model import RecurrentLanguageModel
from nlpseq.models.probe import ProbeModel
from nlpseq.models.translation import RecurrentTranslator

__all__ = ["ProbeModel", "RecurrentClassifier", "RecurrentLanguageModel", "RecurrentTranslator"]
