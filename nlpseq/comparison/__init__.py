"""Compare training runs: find them, summarise them by cell, plot them (nlpseq-report)."""
