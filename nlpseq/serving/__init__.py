"""``nlpseq-serve``: a checkpoint behind an HTTP JSON API and a page to try it."""
