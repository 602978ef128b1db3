"""nlpseq: interchangeable RNN, LSTM and GRU encoders behind NLP task heads."""

__version__ = "0.1.0"
