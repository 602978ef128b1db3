"""The one config resolver nlpseq adds to OmegaConf's: defaults that follow another choice.

``${nlpseq.line_end:${oc.select:tokenizer.model,''}}`` in conf/data/base/generation.yaml:
a character-level language model reads its text exactly as written, line breaks and blank
lines included (``newline``); a word or subword model reads one sentence a line, each
ended by ``<eos>`` (``eos``). Stored configs are saved resolved, so a checkpoint keeps the
value its run used.
"""

from omegaconf import OmegaConf


def line_end_for(tokenizer_model: str) -> str:
    """``newline`` for a character tokenizer, ``eos`` for any other."""
    return "newline" if tokenizer_model == "char" else "eos"


if not OmegaConf.has_resolver("nlpseq.line_end"):
    OmegaConf.register_new_resolver("nlpseq.line_end", line_end_for)
