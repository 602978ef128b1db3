"""Batched beam search over a step function, with the GNMT length penalty.

The length penalty follows Wu et al. 2016 (Google's Neural Machine Translation System).
Shapes: B batch rows, K beams per row, V vocab, N best hypotheses returned, T tokens.
Rows leave the batch as soon as they are done, so `step_fn` sees M = B' * K rows, B' <= B.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from nlpseq.checks import is_int
from nlpseq.decoding.sampling import StepFn
from nlpseq.errors import NlpseqError

ReorderState = Callable[[Any, Tensor], Any]
"""`reorder_state(state, index (B', K) long) -> the state of rows index.flatten() of state`.

Row b' of `index` holds the K hypotheses of one input row (all from the same one), so a
state may keep per-input data (an encoder's memory) once per row of `index`."""


@dataclass
class BeamResult:
    """The n_best finished hypotheses of each row, best first.

    tokens: (B, N, T) long, without eos, padded with pad_id after each length.
    lengths: (B, N) long, real tokens of each hypothesis (eos not counted).
    scores: (B, N) float, log-probability (eos step included) / length_penalty(steps).
        A row with fewer than N possible hypotheses (a tiny vocabulary) is padded with
        empty hypotheses scored -inf.
    """

    tokens: Tensor
    lengths: Tensor
    scores: Tensor


def length_penalty(length: Tensor | int, alpha: float) -> Tensor:
    """GNMT: ((5 + length) / 6) ** alpha; alpha = 0 gives 1 (plain log-probability)."""
    return ((5.0 + torch.as_tensor(length, dtype=torch.float)) / 6.0) ** alpha


def _check_options(batch: int, beam_size: Any, n_best: Any, alpha: float, max_lengths: Any):
    if not is_int(beam_size) or beam_size < 1:
        raise NlpseqError(f"beam_size must be an integer >= 1; got {beam_size!r}")
    if not is_int(n_best) or not 1 <= n_best <= beam_size:
        raise NlpseqError(f"n_best must be an integer in [1, beam_size={beam_size}]; got {n_best}")
    if not alpha >= 0:  # also rejects nan
        raise NlpseqError(
            f"alpha must be >= 0; got {alpha!r} (a negative length penalty favours short "
            "hypotheses and breaks the stopping bound)"
        )
    if isinstance(max_lengths, Tensor):
        if max_lengths.shape != (batch,) or max_lengths.is_floating_point():
            raise NlpseqError(
                f"max_lengths must be an int or a ({batch},) integer tensor; "
                f"got a {max_lengths.dtype} tensor of shape {tuple(max_lengths.shape)}"
            )
        if batch and int(max_lengths.min()) < 1:
            raise NlpseqError(f"max_lengths must be >= 1; got {max_lengths.tolist()}")
    elif not is_int(max_lengths) or max_lengths < 1:
        raise NlpseqError(f"max_lengths must be >= 1; got {max_lengths!r}")


@torch.no_grad()
def beam_search(
    step_fn: StepFn,
    tokens: Tensor,
    state: Any,
    *,
    beam_size: int,
    max_lengths: Tensor | int,
    eos_id: int,
    pad_id: int = 0,
    alpha: float = 0.0,
    n_best: int = 1,
    reorder_state: ReorderState,
) -> BeamResult:
    """Keep the beam_size most likely unfinished hypotheses per row, step by step.

    Each step scores the K * V extensions of a row and takes its 2K best. An extension that
    ends in eos and ranks in the K best is finished (as in fairseq, so beam_size=1 is greedy
    decoding); the K best that do not end in eos stay alive, so the beam never shrinks.
    Hypotheses still alive at the row's max length are finished as they are, without eos.

    A row is done once it has n_best finished hypotheses and no alive one can beat the
    n_best-th: with alpha >= 0, log-probabilities only fall and the penalty only grows, so
    logprob / length_penalty(max_length) bounds an alive hypothesis's final score. Stopping
    when the best hypothesis ends would miss longer ones that the penalty favours.

    Args:
        step_fn: `(tokens (M,), state) -> (logits (M, V), new_state)`.
        tokens: the start tokens (e.g. <bos>) of each row.
        state: the state of the B rows before `tokens`; opaque, handled by `reorder_state`.
        beam_size: K, the hypotheses kept alive per row.
        max_lengths: the most tokens (eos included) per hypothesis; an int or one per row.
        eos_id: end-of-sequence id; it is not part of the returned tokens.
        pad_id: fills `tokens` after each hypothesis.
        alpha: GNMT length penalty exponent, >= 0; 0 ranks by plain log-probability.
        n_best: N, the hypotheses returned per row, 1 <= N <= K.
        reorder_state: `(state, index (B', K)) -> state of rows index.flatten()`; called
            after each step to follow the surviving hypotheses (after the first step, which
            reads each row once, it expands B rows to B * K). Each row of index holds the
            hypotheses of one input row.

    Returns:
        A `BeamResult`.

    Shape:
        tokens: (B,) -> BeamResult.tokens (B, N, T)
    """
    batch, k, device = tokens.shape[0], beam_size, tokens.device
    _check_options(batch, beam_size, n_best, alpha, max_lengths)
    max_len = torch.as_tensor(max_lengths, dtype=torch.long, device=device).expand(batch)
    rows = torch.arange(batch, device=device)  # (B',) original row of each active row
    logp = torch.zeros(batch, 1, device=device)  # (B', K'): one hypothesis per row at first
    seqs = tokens.new_empty(batch, 1, 0)  # (B', K', t)
    finished: list[list[tuple[float, list[int]]]] = [[] for _ in range(batch)]  # best first
    nth_best = torch.full((batch,), -math.inf, device=device)  # (B,) score to beat
    in_top_k = torch.arange(2 * k, device=device) < k  # (2K,)
    t = 0
    while rows.numel() > 0:
        t += 1
        logits, state = step_fn(tokens, state)  # (B' * K', V)
        live, vocab = logp.shape[1], logits.shape[-1]
        cand = logits.float().log_softmax(-1).view(-1, live, vocab)  # (B', K', V)
        cand.add_(logp.unsqueeze(-1))  # in place: no second (B', K', V) buffer
        top_logp, top = cand.flatten(1).topk(min(2 * k, live * vocab), dim=-1)  # (B', 2K)
        parent, token = top // vocab, top % vocab  # (B', 2K)
        is_eos = token == eos_id  # (B', 2K)
        last = max_len == t  # (B',)

        # Finish eos extensions in the K best, and the K best of rows at their max length.
        finish = is_eos | last.unsqueeze(1)
        finish &= in_top_k[: finish.shape[1]] & torch.isfinite(top_logp)  # (B', 2K)
        if finish.any():
            i, j = finish.nonzero(as_tuple=True)
            new = torch.cat([seqs[i, parent[i, j]], token[i, j].unsqueeze(1)], dim=1)  # (F, t)
            scores = top_logp[i, j] / length_penalty(t, alpha)  # every candidate has t steps
            for row, seq, eos, score in zip(
                rows[i].tolist(), new.tolist(), is_eos[i, j].tolist(), scores.tolist(), strict=True
            ):
                finished[row].append((score, seq[:-1] if eos else seq))
            for row in set(rows[i].tolist()):
                finished[row] = sorted(finished[row], key=lambda h: -h[0])[:n_best]
                if len(finished[row]) == n_best:
                    nth_best[row] = finished[row][-1][0]

        # The K best extensions that do not end in eos stay alive (stable: in score order).
        keep = is_eos.int().argsort(dim=1, stable=True)[:, :k]  # (B', K)
        logp = top_logp.masked_fill(is_eos, -math.inf).gather(1, keep)  # (B', K)
        parent, token = parent.gather(1, keep), token.gather(1, keep)  # (B', K)
        parents = seqs.gather(1, parent.unsqueeze(-1).expand(-1, -1, t - 1))  # (B', K, t - 1)
        seqs = torch.cat([parents, token.unsqueeze(-1)], dim=-1)  # (B', K, t)

        bound = logp.max(dim=1).values / length_penalty(max_len, alpha)  # (B',)
        active = ~(last | (bound <= nth_best[rows]))  # (B',)
        if not active.any():
            break
        beams = parent + live * torch.arange(len(rows), device=device).unsqueeze(1)  # (B', K)
        state = reorder_state(state, beams[active])  # (B'', K)
        tokens = token[active].flatten()
        logp, seqs, rows, max_len = logp[active], seqs[active], rows[active], max_len[active]

    width = max((len(seq) for hyps in finished for _, seq in hyps), default=0)
    out = torch.full((batch, n_best, width), pad_id, dtype=torch.long)
    lengths = torch.zeros(batch, n_best, dtype=torch.long)
    scores = torch.full((batch, n_best), -math.inf)
    for row, hyps in enumerate(finished):
        for n, (score, seq) in enumerate(hyps):
            out[row, n, : len(seq)] = torch.tensor(seq, dtype=torch.long)
            lengths[row, n], scores[row, n] = len(seq), score
    return BeamResult(out.to(device), lengths.to(device), scores.to(device))
