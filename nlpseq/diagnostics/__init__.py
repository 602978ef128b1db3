"""Looking inside trained models: attention maps (and, later, gradient flow and gates)."""

from nlpseq.diagnostics.attention import save_attention

__all__ = ["save_attention"]
