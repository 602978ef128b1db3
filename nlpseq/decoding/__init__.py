"""Decoding strategies as pure functions over a step function: tensors in, tensors out."""

from nlpseq.decoding.sampling import (
    StepFn,
    check_sampling_options,
    decode,
    filter_logits,
    greedy,
    sample,
)

__all__ = ["StepFn", "check_sampling_options", "decode", "filter_logits", "greedy", "sample"]
