"""Greedy and sampled decoding over a step function, one step per new token.

Top-k sampling follows Fan et al. 2018 (Hierarchical Neural Story Generation); top-p
(nucleus) sampling follows Holtzman et al. 2020 (The Curious Case of Neural Text
Degeneration). Shapes: B batch, V vocab, N new tokens.
"""

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from nlpseq.checks import is_int, is_number
from nlpseq.errors import NlpseqError

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]
"""`step_fn(tokens (B,) long, state) -> (logits (B, V), new_state)`; state is opaque."""

OnToken = Callable[[Tensor], None]

# Cumulative mass within this of top_p counts as reaching it (float rounding of softmax).
_TOP_P_TOLERANCE = 1e-6


def check_sampling_options(
    max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None, top_p: float = 1.0
) -> None:
    """Raise `NlpseqError` naming the first invalid option and its value."""
    if not is_int(max_new_tokens) or max_new_tokens <= 0:
        raise NlpseqError(f"max_new_tokens must be a positive integer; got {max_new_tokens!r}")
    if not is_number(temperature) or not 0 < temperature < math.inf:
        raise NlpseqError(
            f"temperature must be a finite number > 0; got {temperature!r} "
            "(use greedy=true for the most likely token)"
        )
    if top_k is not None and (not is_int(top_k) or top_k <= 0):
        raise NlpseqError(f"top_k must be a positive integer or null; got {top_k!r}")
    if not is_number(top_p) or not 0 < top_p <= 1:
        raise NlpseqError(f"top_p must be in (0, 1]; got {top_p!r}")


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float = 1.0) -> Tensor:
    """Set every token outside the top-k and/or the top-p nucleus to -inf.

    The nucleus is the smallest set of most likely tokens whose probability (softmax of
    `logits`, before top-k) reaches `top_p`. A token survives only if it is in both sets,
    and the most likely token always survives. Ties are ranked by token id (lower first).

    Args:
        logits: scores per token.
        top_k: keep at most this many tokens per row; None keeps all.
        top_p: nucleus mass in (0, 1]; 1.0 keeps all.

    Returns:
        A filtered copy of `logits` (`logits` itself when nothing is filtered).

    Shape:
        logits: (B, V) -> (B, V)
    """
    if top_k is None and top_p >= 1.0:
        return logits  # nothing to filter: skip the per-step sort over the vocabulary
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)  # (B, V)
    remove = torch.zeros_like(sorted_logits, dtype=torch.bool)  # (B, V) in sorted order
    if top_k is not None:
        remove[:, top_k:] = True
    if top_p < 1.0:
        probs = sorted_logits.float().softmax(dim=-1)  # (B, V)
        mass_before = probs.cumsum(dim=-1) - probs  # (B, V) mass of the more likely tokens
        remove |= mass_before >= top_p - _TOP_P_TOLERANCE
    remove[:, 0] = False
    mask = torch.empty_like(remove).scatter_(-1, order, remove)  # (B, V) in token order
    return logits.masked_fill(mask, -math.inf)


@torch.no_grad()
def _generate(
    step_fn: StepFn,
    tokens: Tensor,
    state: Any,
    max_new_tokens: int,
    choose: Callable[[Tensor], Tensor],
    eos_id: int | None,
    on_token: OnToken | None,
) -> Tensor:
    """Feed each chosen token back through `step_fn`; `choose` maps (B, V) logits to (B,)."""
    new_tokens = []
    done = torch.zeros_like(tokens, dtype=torch.bool)  # (B,)
    for _ in range(max_new_tokens):
        logits, state = step_fn(tokens, state)  # (B, V)
        tokens = choose(logits)  # (B,)
        if eos_id is not None:
            tokens = tokens.masked_fill(done, eos_id)  # finished rows keep emitting eos
            done |= tokens == eos_id
        new_tokens.append(tokens)
        if on_token is not None:
            on_token(tokens)
        if eos_id is not None and bool(done.all()):
            break
    return torch.stack(new_tokens, dim=1)  # (B, N)


def greedy(
    step_fn: StepFn,
    tokens: Tensor,
    state: Any,
    max_new_tokens: int,
    eos_id: int | None = None,
    on_token: OnToken | None = None,
) -> Tensor:
    """Decode by taking the most likely token at each step (lowest id on ties).

    Each new token costs one `step_fn` call on a (B,) tensor; the prefix is never re-run.
    Decoding stops after `max_new_tokens` tokens, or once every row has produced `eos_id`.
    The eos token is part of the output, and rows that finished early keep emitting
    `eos_id` so the result stays rectangular.

    Args:
        step_fn: `(tokens (B,), state) -> (logits (B, V), new_state)`.
        tokens: the last tokens already read, e.g. the last prompt token of each row.
        state: the state after the tokens before `tokens` (None, a tensor, a tuple...).
        max_new_tokens: the most tokens to generate per row.
        eos_id: end-of-sequence id; None decodes exactly `max_new_tokens` tokens.
        on_token: called after each step with that step's tokens (B,), e.g. to stream.

    Returns:
        The new tokens, long.

    Shape:
        tokens: (B,) -> (B, N), N <= max_new_tokens
    """
    check_sampling_options(max_new_tokens)
    return _generate(
        step_fn, tokens, state, max_new_tokens, lambda x: x.argmax(dim=-1), eos_id, on_token
    )


_greedy = greedy  # `decode` shadows the name with its `greedy` flag


def sample(
    step_fn: StepFn,
    tokens: Tensor,
    state: Any,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float = 1.0,
    eos_id: int | None = None,
    generator: torch.Generator | None = None,
    on_token: OnToken | None = None,
) -> Tensor:
    """Decode by sampling from softmax(logits / temperature) after `filter_logits`.

    Stepping, stopping and eos padding are as in `greedy`. With `generator` seeded the same,
    the samples repeat exactly.

    Args:
        step_fn, tokens, state, max_new_tokens, eos_id, on_token: as in `greedy`.
        temperature: > 0; below 1 sharpens the distribution, above 1 flattens it.
        top_k: sample among the k most likely tokens only; None for all.
        top_p: sample within the nucleus of this probability mass; 1.0 for all.
        generator: random source; the caller creates it on the logits' device.
            None uses the global RNG.

    Returns:
        The new tokens, long.

    Shape:
        tokens: (B,) -> (B, N), N <= max_new_tokens
    """
    check_sampling_options(max_new_tokens, temperature, top_k, top_p)

    def choose(logits: Tensor) -> Tensor:
        scaled = filter_logits(logits.float() / temperature, top_k, top_p)  # (B, V)
        probs = scaled.softmax(dim=-1)  # (B, V)
        try:
            return torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
        except RuntimeError:  # checked only on failure: no sync per token
            if torch.isfinite(logits).all():
                raise
            raise NlpseqError("the model's outputs are not finite numbers, so there is "
                              "nothing to sample from (did its training diverge?)") from None

    return _generate(step_fn, tokens, state, max_new_tokens, choose, eos_id, on_token)


def decode(
    step_fn: StepFn,
    tokens: Tensor,
    state: Any,
    max_new_tokens: int,
    *,
    greedy: bool = False,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float = 1.0,
    eos_id: int | None = None,
    seed: int | None = None,
    on_token: OnToken | None = None,
) -> Tensor:
    """Greedy decoding if `greedy`, else `sample` seeded by `seed` on the device of `tokens`.

    With `greedy=True` the sampling options and `seed` are ignored. See `greedy` for the
    arguments and the shape of the result: (B,) -> (B, N).
    """
    if greedy:
        return _greedy(step_fn, tokens, state, max_new_tokens, eos_id, on_token)
    generator = None
    if seed is not None:
        if not is_int(seed):
            raise NlpseqError(f"seed must be an integer or null; got {seed!r}")
        generator = torch.Generator(device=tokens.device).manual_seed(seed)
    return sample(
        step_fn,
        tokens,
        state,
        max_new_tokens,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        eos_id=eos_id,
        generator=generator,
        on_token=on_token,
    )
