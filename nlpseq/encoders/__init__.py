"""Sequence encoders: padded, embedded tokens in, an `EncoderOutput` every head can read."""

from nlpseq.encoders.recurrent import (
    EncoderOutput,
    RecurrentEncoder,
    count_parameters,
    expected_parameter_count,
    matched_hidden_size,
)

__all__ = ["EncoderOutput", "RecurrentEncoder", "count_parameters", "expected_parameter_count",
           "matched_hidden_size"]
