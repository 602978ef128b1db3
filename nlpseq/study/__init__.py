"""The cell study, runnable from an installed nlpseq (``python -m nlpseq.study.<name>``):
``long_range`` trains every cell on a long-range probe over a range of lengths and plots
the scores; ``bench_cells`` measures what each cell costs."""
