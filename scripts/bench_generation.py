"""Benchmark: text generation speed, and proof that a token's cost does not grow with the
prompt.

nlpseq generates by reading the prompt once and then taking one recurrent step per new
token. This script times, for each prompt length (10 and 1000 tokens by default):

- ``prompt_s``: reading the prompt (one forward pass over it);
- ``per_token_ms``: each of the ``--new-tokens`` sampled tokens after it;
- ``tokens_per_s``: new tokens per second, prompt included in the time;

and, as the baseline that shows what carrying the state saves, ``rerun_per_token_ms``:
a loop that re-runs the whole prefix for every new token (what a model without a carried
state must do). Medians of ``--repeats`` runs; batch size 1, on the CPU.

    python scripts/bench_generation.py ckpt_path=outputs/.../checkpoints/best.ckpt
    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_generation.py \\
        experiment=tiny_shakespeare encoder=gru       # untrained weights: speed only
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from bench_train_step import compose_train, report
from hydra.utils import instantiate

from nlpseq.tasks.checkpoint import build_task, load_task


def build_generation_task(overrides: list[str]):
    """A GenerationTask from a checkpoint (``ckpt_path=...``) or, untrained, from a config."""
    ckpt = [o.split("=", 1)[1] for o in overrides if o.startswith("ckpt_path=")]
    if ckpt:
        task, _, cfg = load_task(ckpt[0], expected_task="generation")
        return task, cfg
    cfg = compose_train(["task=generation", *overrides])
    torch.manual_seed(cfg.seed)
    datamodule = instantiate(cfg.data)
    datamodule.load(("train",))
    tokenizer = instantiate(cfg.tokenizer)(datamodule.train_texts())
    return build_task(cfg, tokenizer, None), cfg


def timed(fn, *args, **kwargs) -> float:
    """Seconds that ``fn(*args, **kwargs)`` takes."""
    started = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - started


@torch.no_grad()
def read_prompt(task, prompt: torch.Tensor) -> None:
    """What generation does with a prompt before its first new token: one forward pass."""
    task.model(prompt, None, None)


def rerun_prefix(task, prompt_ids: list[int], new_tokens: int) -> None:
    """The baseline: every new token re-reads the whole prefix from a zero state."""
    tokens = torch.tensor([prompt_ids])
    with torch.no_grad():
        for _ in range(new_tokens):
            logits, _ = task.model(tokens, None, None)
            nxt = torch.multinomial(torch.softmax(logits[:, -1], dim=-1), 1)
            tokens = torch.cat([tokens, nxt], dim=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*",
                        help="ckpt_path=PATH, or config overrides as for nlpseq-train")
    parser.add_argument("--prompt-lengths", type=int, nargs="+", default=[10, 1000])
    parser.add_argument("--new-tokens", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rerun-tokens", type=int, default=20,
                        help="new tokens for the re-run-the-prefix baseline (it is slow)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()

    task, cfg = build_generation_task(args.overrides)
    task.eval()
    generator = torch.Generator().manual_seed(0)
    rows = []
    for length in args.prompt_lengths:
        # Random ids (no specials) stand in for a prompt: only their number matters here.
        ids = torch.randint(4, task.tokenizer.vocab_size, (length,), generator=generator)
        prompt = [task.start_id, *ids.tolist()]
        prompt_tensor = torch.tensor([prompt[:-1]])
        read_prompt(task, prompt_tensor)  # warm-up
        reading, total = [], []
        for seed in range(args.repeats):
            reading.append(timed(read_prompt, task, prompt_tensor))
            total.append(timed(task.generate, prompt, args.new_tokens, stop_at_eos=False,
                               temperature=1.0, seed=seed))
        rerun = timed(rerun_prefix, task, prompt, args.rerun_tokens)
        prompt_s, total_s = statistics.median(reading), statistics.median(total)
        rows.append({
            "prompt_tokens": length,
            "new_tokens": args.new_tokens,
            "prompt_s": round(prompt_s, 4),
            "per_token_ms": round(1000 * (total_s - prompt_s) / args.new_tokens, 3),
            "tokens_per_s": round(args.new_tokens / total_s, 1),
            "rerun_per_token_ms": round(1000 * rerun / args.rerun_tokens, 3),
        })
    result = {
        "cell": cfg.encoder.cell, "layers": cfg.encoder.num_layers,
        "hidden_size": cfg.encoder.hidden_size, "vocab_size": task.tokenizer.vocab_size,
        "params": sum(p.numel() for p in task.parameters()),
        "torch_threads": torch.get_num_threads(),
        "runs": rows,
        "per_token_ratio_longest_vs_shortest_prompt":
            round(rows[-1]["per_token_ms"] / rows[0]["per_token_ms"], 3),
    }
    report(result, args.json)


if __name__ == "__main__":
    main()
