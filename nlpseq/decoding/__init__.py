"""Decoding strategies as pure functions over a step function: tensors in, tensors out."""

from nlpseq.decoding.beam import BeamResult, beam_search, length_penalty
from nlpseq.decoding.sampling import (
    StepFn,
    check_sampling_options,
    decode,
    filter_logits,
    greedy,
    sample,
)

__all__ = [
    "BeamResult",
    "StepFn",
    "beam_search",
    "check_sampling_options",
    "decode",
    "filter_logits",
    "greedy",
    "length_penalty",
    "sample",
]
