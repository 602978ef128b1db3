"""Benchmark: nlpseq's Lightning training step against a plain PyTorch loop.

Both train the same model (built from the same config) on the same pre-built batches,
with the same optimizer, schedule and gradient clipping. Each round runs both loops (which
one goes first alternates); the median tokens/s of each is reported with their ratio and
the figures of every round. Works for sentiment classification and for language models
(stream blocks carry the recurrent state in both loops). Also reports, for the data:
tokenizer training time, encoding time, padding efficiency of the length-bucketed
batches, and the process's peak memory.

With ``--baseline packed`` the second loop is nlpseq's own Lightning loop again with the
encoder's ``execution`` set to ``packed`` (the execution before dense became the CPU's
default): the same batches, weights and arithmetic, so the ratio is dense over packed. This
works for translation too. With ``--baseline bf16-mixed`` the second loop is nlpseq's own
loop under ``trainer.precision=bf16-mixed`` (autocast to bfloat16; on a CPU with AVX-512
BF16 the matrix products run in bf16): the ratio is fp32 over bf16-mixed.

    python scripts/bench_train_step.py                       # embedded sample
    python scripts/bench_train_step.py --shipped             # + logger, callbacks, progress bar
    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_train_step.py experiment=sst2
    python scripts/bench_train_step.py experiment=sst2 encoder=gru --rounds 10  # steadier
    python scripts/bench_train_step.py experiment=sst2 --accelerator gpu   # on a CUDA GPU
    python scripts/bench_train_step.py experiment=sst2 --accelerator gpu --sync-debug  # + syncs
    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_train_step.py \
        experiment=tiny_shakespeare encoder.num_layers=2 encoder.hidden_size=256 --batches 60
    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_train_step.py experiment=sst2 \
        --baseline bf16-mixed
    NLPSEQ_DATA_DIR=../shared/data python scripts/bench_train_step.py experiment=multi30k \
        --baseline packed
"""

from __future__ import annotations

import os
import tempfile

# A fresh datasets cache, so the encoding time below is a cold one (set before import).
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="nlpseq-bench-cache-")

import argparse  # noqa: E402
import copy
import json
import logging
import resource
import statistics
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import open_dict

from nlpseq.cli.common import CONFIG_DIR
from nlpseq.cli.train import build_trainer
from nlpseq.data.batching import padding_efficiency
from nlpseq.encoders import RecurrentEncoder
from nlpseq.tasks.callbacks import TrainingThroughput
from nlpseq.tasks.checkpoint import build_task


def compose_train(overrides: list[str]):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = tempfile.mkdtemp(prefix="nlpseq-bench-")
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def plain_loss(task, batch, state):
    """The loss a hand-written loop computes, and the recurrent state to carry (LMs).

    Sentiment takes the task's own training loss (plain, mixup or adversarial: pure torch
    on the model, no Lightning), so that both loops do the same arithmetic."""
    if "targets" not in batch:  # sentiment: one label per example
        return task.training_loss(batch), None
    model = task.model
    stream = "block" in batch
    if stream and int(batch["block"]) == 0:
        state = None
    logits, state = model(batch["tokens"], None if stream else batch["lengths"],
                          state if stream else None)
    if state is not None:
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
    loss = F.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(),
                           ignore_index=task.pad_id)
    return loss, state


def plain_loop(task, batches, cfg, device: torch.device) -> float:
    """Train task.model with a hand-written loop; return real tokens per second.

    Each batch is moved to the device inside the loop, as Lightning does; tokens are
    counted from the batch before the move, so counting never waits for the GPU.
    """
    model = task.model.to(device)
    model.train()
    optimizer = instantiate(cfg.optimizer)(model.parameters())
    schedule = instantiate(cfg.scheduler)(optimizer, total_steps=len(batches))["scheduler"]
    clip = cfg.trainer.gradient_clip_val
    tokens, state, started = 0, None, time.perf_counter()
    for batch in batches:
        tokens += int(batch["lengths"].sum())
        batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
        loss, state = plain_loss(task, batch, state)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        schedule.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return tokens / (time.perf_counter() - started)


def lightning_loop(task, batches, cfg, accelerator: str, shipped: bool = False,
                   precision: str = "32-true") -> float:
    """Train with nlpseq's task under a Lightning Trainer; return tokens/s. ``shipped``:
    the Trainer ``nlpseq-train`` builds, with the config's logger, callbacks (last.ckpt at
    the end, learning-rate monitor, ...) and progress bar — what a real run pays — less
    validation, which is a cost of its own."""
    if shipped:
        with open_dict(cfg):
            cfg.trainer.update(max_epochs=1, limit_val_batches=0, num_sanity_val_steps=0,
                               accelerator=accelerator, devices=1,
                               use_distributed_sampler=False)
        trainer, monitor, _ = build_trainer(cfg)
        trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(
            batches, batch_size=None, shuffle=False))
        return monitor.tokens_per_second
    monitor = TrainingThroughput()
    trainer = pl.Trainer(
        max_epochs=1, accelerator=accelerator, devices=1, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        num_sanity_val_steps=0, gradient_clip_val=cfg.trainer.gradient_clip_val,
        precision=precision,
        use_distributed_sampler=False, callbacks=[monitor],
    )
    trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(
        batches, batch_size=None, shuffle=False))
    return monitor.tokens_per_second


def report(result: dict, json_path: str | None) -> None:
    """Print the result as JSON, and write it to ``json_path`` too when given."""
    print(json.dumps(result, indent=2))
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(result, handle, indent=2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="config overrides, as for nlpseq-train")
    parser.add_argument("--batches", type=int, default=100, help="training batches per round")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds per loop")
    parser.add_argument("--baseline", choices=["plain", "packed", "bf16-mixed"],
                        default="plain",
                        help="what nlpseq is compared with: a hand-written loop over the same "
                             "model, nlpseq with encoder.execution=packed, or nlpseq under "
                             "trainer.precision=bf16-mixed")
    parser.add_argument("--shipped", action="store_true",
                        help="run nlpseq's loop with the shipped logger, callbacks and progress "
                             "bar, as nlpseq-train builds it (default: all of them off)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu",
                        help="where both loops train (gpu: the first CUDA device)")
    parser.add_argument("--sync-debug", action="store_true",
                        help="gpu: warn at each place a step makes the CPU wait for the GPU")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.ERROR)

    cfg = compose_train(args.overrides)
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    datamodule.load()
    started = time.perf_counter()
    tokenizer = get_class(cfg.task._target_).train_tokenizer(instantiate(cfg.tokenizer),
                                                              datamodule, cfg)
    tokenizer_s = time.perf_counter() - started
    started = time.perf_counter()
    datamodule.encode(tokenizer)
    encode_s = time.perf_counter() - started
    started = time.perf_counter()
    datamodule.encode(tokenizer)  # the same data and tokenizer again: read from the cache
    encode_cached_s = time.perf_counter() - started

    loader = datamodule.train_dataloader()
    sampler = loader.batch_sampler
    efficiency = (padding_efficiency(sampler.lengths, sampler.batches())
                  if hasattr(sampler, "lengths") else 1.0)  # stream blocks have no padding
    batches = [b for _, b in zip(range(args.batches), loader, strict=False)]
    if args.accelerator == "gpu":  # page-locked, as nlpseq's loaders give them on a GPU
        batches = [{key: value.pin_memory() for key, value in b.items()} for b in batches]
        if args.sync_debug:
            torch.cuda.set_sync_debug_mode("warn")

    initial = build_task(cfg, tokenizer, getattr(datamodule, "label_names", None))
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    plain, lightning = [], []
    for round_index in range(args.rounds):
        # Alternate which loop goes first, so that neither always meets a warmer machine.
        order = ("plain", "nlpseq") if round_index % 2 == 0 else ("nlpseq", "plain")
        for loop in order:
            task = copy.deepcopy(initial)
            if loop == "plain" and args.baseline == "packed":
                for module in task.modules():
                    if isinstance(module, RecurrentEncoder):
                        module.execution = "packed"
                plain.append(lightning_loop(task, batches, cfg, args.accelerator))
            elif loop == "plain" and args.baseline == "bf16-mixed":
                plain.append(lightning_loop(task, batches, cfg, args.accelerator,
                                            precision="bf16-mixed"))
            elif loop == "plain":
                plain.append(plain_loop(task, batches, cfg, device))
            else:
                lightning.append(lightning_loop(task, batches, cfg, args.accelerator,
                                                args.shipped))

    result = {
        "data": cfg.data.name, "cell": cfg.encoder.cell, "batches": len(batches),
        "baseline": args.baseline, "shipped_callbacks": args.shipped,
        "task": type(initial).task_name,
        "train_size": (f"{datamodule.num_tokens('train')} tokens"
                       if hasattr(datamodule, "num_tokens")
                       else f"{len(datamodule.encoded['train'])} examples"),
        "tokenizer_train_s": round(tokenizer_s, 2), "encode_s": round(encode_s, 2),
        "encode_cached_s": round(encode_cached_s, 2),
        "padding_efficiency": round(efficiency, 4),
        f"{args.baseline}_tokens_per_s": round(statistics.median(plain), 1),
        "nlpseq_tokens_per_s": round(statistics.median(lightning), 1),
        "ratio": round(statistics.median(lightning) / statistics.median(plain), 3),
        "ratio_by_round": [round(n / p, 3) for n, p in zip(lightning, plain, strict=True)],
        f"{args.baseline}_rounds": [round(x, 1) for x in plain],
        "nlpseq_rounds": [round(x, 1) for x in lightning],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
    }
    report(result, args.json)


if __name__ == "__main__":
    main()
