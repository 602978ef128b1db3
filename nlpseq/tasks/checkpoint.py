"""Build a task from a config and rebuild it from a self-contained checkpoint.

A checkpoint holds the weights and, under the key ``"nlpseq"``, the task name, the
resolved config, the tokenizer state (None for the generated probes) and the label names,
so evaluating or predicting needs nothing but its path. Loading uses
``torch.load(weights_only=True)``: only tensors and plain containers are read, never code.
"""

from __future__ import annotations

import inspect
import pickle
import zipfile
from pathlib import Path

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf

from nlpseq.errors import NlpseqError
from nlpseq.tasks.base import RecurrentTask
from nlpseq.tasks.generation import GenerationTask, start_token_id
from nlpseq.tasks.probe import ProbeTask
from nlpseq.tasks.sentiment import SentimentTask
from nlpseq.tasks.translation import TranslationTask
from nlpseq.tokenization import tokenizer_from_state

TASKS = {task.task_name: task
         for task in (SentimentTask, GenerationTask, TranslationTask, ProbeTask)}
FORMAT_VERSION = 1


def build_task(cfg: DictConfig, tokenizer, label_names: list[str] | None) -> RecurrentTask:
    """Instantiate ``cfg.task`` with the encoder, optimizer and schedule it names, and the
    run-time values (vocabulary, labels, ...) that its signature asks for."""
    scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
    runtime = {} if tokenizer is None else {  # None: generated probes, no vocabulary
        "vocab_size": tokenizer.vocab_size,
        "target_vocab_size": getattr(tokenizer, "target", tokenizer).vocab_size,
        "pad_id": tokenizer.pad_id,
        "unk_id": tokenizer.unk_id,
        "label_names": list(label_names or []),
        "char_level": tokenizer.kind == "char",
        "tokenizer": tokenizer,
        "start_id": start_token_id(cfg.data, tokenizer),
    }
    wanted = inspect.signature(get_class(cfg.task._target_)).parameters
    return instantiate(
        cfg.task,
        encoder=instantiate(cfg.encoder),
        optimizer=instantiate(cfg.optimizer),
        scheduler=scheduler,
        **{key: value for key, value in runtime.items() if key in wanted},
    )


def checkpoint_extras(cfg: DictConfig, tokenizer, label_names: list[str] | None) -> dict:
    """What a task stores beside its weights (all plain, weights_only-safe values)."""
    return {
        "format_version": FORMAT_VERSION,
        "config": OmegaConf.to_container(
            OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True),
        "tokenizer": None if tokenizer is None else tokenizer.to_state(),
        "label_names": list(label_names or []),
    }


def read_checkpoint(path: str | Path) -> dict:
    """Load a checkpoint file safely; raise NlpseqError if it is missing or not ours."""
    path = Path(path).expanduser()
    if not path.exists():
        raise NlpseqError(f"Checkpoint not found: '{path}'")
    if path.is_dir():
        best = path / "checkpoints" / "best.ckpt"
        if not best.is_file():
            raise NlpseqError(f"'{path}' is a directory without checkpoints/best.ckpt")
        path = best
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, zipfile.BadZipFile, RuntimeError, EOFError, ValueError,
            OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NlpseqError(f"'{path}' is not a readable checkpoint ({first[:160]})") from None
    if not isinstance(checkpoint, dict) or "nlpseq" not in checkpoint:
        raise NlpseqError(f"'{path}' is not an nlpseq checkpoint (no 'nlpseq' section)")
    return checkpoint


def check_task(name: str, path, expected_task: str) -> None:
    """A checkpoint of another task fails with a message naming both tasks."""
    if name != expected_task:
        raise NlpseqError(
            f"'{path}' is a '{name}' checkpoint; this command needs a '{expected_task}' one"
        )


def load_task(path: str | Path, expected_task: str | None = None):
    """Rebuild ``(task, tokenizer, config)`` from a checkpoint, in eval mode on the CPU."""
    return task_from_checkpoint(read_checkpoint(path), path, expected_task)


def task_from_checkpoint(checkpoint: dict, path: str | Path, expected_task: str | None = None):
    """``load_task`` for a checkpoint already read (``path`` only names it in errors)."""
    meta = checkpoint["nlpseq"]
    name = meta.get("task")
    if expected_task is not None:
        check_task(name, path, expected_task)
    if name not in TASKS:
        raise NlpseqError(f"'{path}' holds unknown task '{name}'; known: {', '.join(TASKS)}")
    cfg = OmegaConf.create(meta["config"])
    tokenizer = None if meta["tokenizer"] is None else tokenizer_from_state(meta["tokenizer"])
    task = build_task(cfg, tokenizer, meta.get("label_names"))
    task.load_state_dict(checkpoint["state_dict"])
    task.checkpoint_extras = {key: meta[key] for key in meta if key != "task"}
    task.eval()
    return task, tokenizer, cfg
