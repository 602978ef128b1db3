"""nlpseq: interchangeable RNN, LSTM and GRU encoders behind NLP task heads.

The Python API (``nlpseq.api``): ``train``, ``evaluate``, ``load`` (a ``Model`` with
``predict``, ``generate``, ``translate``) and ``NlpseqError``, the one exception a user's
mistake raises. They are imported on first use, so ``import nlpseq`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["Model", "NlpseqError", "Run", "evaluate", "load", "train"]

if TYPE_CHECKING:
    from nlpseq.api import Model, Run, evaluate, load, train
    from nlpseq.errors import NlpseqError


def __getattr__(name: str):
    if name == "NlpseqError":
        from nlpseq.errors import NlpseqError

        return NlpseqError
    if name in __all__:
        from nlpseq import api

        return getattr(api, name)
    raise AttributeError(f"module 'nlpseq' has no attribute {name!r}")
