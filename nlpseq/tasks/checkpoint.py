"""Build a task from a config and rebuild it from a self-contained checkpoint.

A checkpoint holds the weights and, under the key ``"nlpseq"``, the task name, the
resolved config, the tokenizer state (None for the generated probes) and the label names,
so evaluating or predicting needs nothing but its path. Loading never runs code from the
file: ``torch.load(weights_only=True)`` reads only tensors and plain containers, and the
stored config is checked, whole, before anything it names is imported or called
(``nlpseq.config.targets``): only what nlpseq's conf/ builds, or what the command's
``allowed_targets`` admits. A section of the wrong shape is refused with one line.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Sequence
from pathlib import Path

import torch
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from nlpseq.config.targets import check_stored_config
from nlpseq.errors import NlpseqError, first_line
from nlpseq.tasks.base import RecurrentTask
from nlpseq.tasks.rng import rng_state, set_rng_state
from nlpseq.tokenization import tokenizer_from_state

FORMAT_VERSION = 1


def build_task(cfg: DictConfig, tokenizer, label_names: list[str] | None) -> RecurrentTask:
    """The task ``cfg.task`` names, built by its own ``build`` (see ``RecurrentTask``)."""
    task_class = get_class(cfg.task._target_)
    if not (isinstance(task_class, type) and issubclass(task_class, RecurrentTask)):
        raise NlpseqError(f"task._target_={cfg.task._target_} is not an nlpseq task (a "
                          "subclass of nlpseq.tasks.RecurrentTask)")
    return task_class.build(cfg, tokenizer, label_names)


def checkpoint_extras(cfg: DictConfig, tokenizer, label_names: list[str] | None) -> dict:
    """What a task stores beside its weights (all plain, weights_only-safe values)."""
    return {
        "format_version": FORMAT_VERSION,
        "config": OmegaConf.to_container(
            OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]), resolve=True),
        "tokenizer": None if tokenizer is None else tokenizer.to_state(),
        "label_names": list(label_names or []),
    }


def read_checkpoint(path: str | Path, trusted: Sequence[str] = ()) -> dict:
    """Load a checkpoint file safely and check its nlpseq section (``check_section``);
    raise NlpseqError if it is missing, not ours, of the wrong shape, or names a target
    neither conf/ nor ``trusted`` (the command's ``allowed_targets``) admits."""
    path = checkpoint_file(path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # weights_only runs no code: any failure is a damaged file
        raise NlpseqError(f"'{path}' is not a readable checkpoint ({unreadable(err)})"
                          ) from None
    if not isinstance(checkpoint, dict) or "nlpseq" not in checkpoint:
        raise NlpseqError(f"'{path}' is not an nlpseq checkpoint (no 'nlpseq' section)")
    check_section(checkpoint, path, trusted)
    upgrade_config(checkpoint["nlpseq"]["config"])
    return checkpoint


def upgrade_config(config: dict) -> None:
    """Bring a config stored by an earlier nlpseq to today's keys, in place: a stream-mode
    language model's streams were ``data.batch_size`` and ``data.eval_batch_size``."""
    data = config["data"]
    if data.get("mode") == "stream" and "num_streams" not in data:
        data["num_streams"] = data.get("batch_size", 32)
        data["eval_num_streams"] = data.get("eval_batch_size", 32)


def unreadable(err: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` failed, in one line (without torch's advice
    to load the file unsafely)."""
    found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    if found:
        return (f"it holds a pickled object ('{found.group(1)}'); nlpseq reads tensors and "
                "plain values only")
    if str(err).startswith("Weights only load failed"):
        return "it holds something other than tensors and plain values"
    return first_line(err)[:160]


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file ``path`` names: itself, or a run directory's best.ckpt."""
    path = Path(path).expanduser()
    if not path.exists():
        raise NlpseqError(f"Checkpoint not found: '{path}'")
    if path.is_dir():
        best = path / "checkpoints" / "best.ckpt"
        if not best.is_file() and (path / "best.ckpt").is_file():  # RUN/checkpoints itself
            best = path / "best.ckpt"
        if not best.is_file():
            raise NlpseqError(f"'{path}' is a directory without checkpoints/best.ckpt (give a "
                              "run directory or a .ckpt file)")
        path = best
    return path


SECTION = {  # what check_section wants under "nlpseq": key -> (types, description)
    "task": ((str,), "a task name"),
    "config": ((dict,), "the run's config (a dict)"),
    "tokenizer": ((dict, type(None)), "a tokenizer state (a dict) or None"),
    "label_names": ((list,), "a list of strings"),
}
BUILT_ON_LOADING = ("task", "encoder", "optimizer", "data")  # config nodes load_task builds


def check_section(checkpoint: dict, path: Path, trusted: Sequence[str] = ()) -> None:
    """Refuse a checkpoint whose nlpseq section, stored config or weights have the wrong
    shape, or whose config names a target that is not an nlpseq component. Only reads."""
    meta = checkpoint["nlpseq"]
    if not isinstance(meta, dict):
        malformed(path, f"its 'nlpseq' section is a {type(meta).__name__}, not a dict")
    for key, (types, wanted) in SECTION.items():
        if key not in meta:
            malformed(path, f"nlpseq.{key} is missing")
        if not isinstance(meta[key], types):
            malformed(path, f"nlpseq.{key} should be {wanted}, got {describe(meta[key])}")
    version = meta.get("format_version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        malformed(path, f"nlpseq.format_version is {version!r}; this nlpseq reads "
                        f"{FORMAT_VERSION}")
    check_stored_config(meta["config"], str(path), trusted)
    for key in BUILT_ON_LOADING:
        node = meta["config"].get(key)
        if not isinstance(node, dict) or not isinstance(node.get("_target_"), str):
            malformed(path, f"nlpseq.config.{key} should be a dict with a _target_, got "
                            f"{describe(node)}")
    if not isinstance(meta["config"].get("scheduler"), (dict, type(None))):
        malformed(path, "nlpseq.config.scheduler should be a dict or None, got "
                        f"{describe(meta['config']['scheduler'])}")
    if not all(isinstance(name, str) for name in meta["label_names"]):
        malformed(path, f"nlpseq.label_names should be a list of strings, got "
                        f"{describe(meta['label_names'])}")
    weights = checkpoint.get("state_dict")
    if not isinstance(weights, dict) or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor)
            for key, value in weights.items()):
        malformed(path, f"state_dict should map parameter names to tensors, got "
                        f"{describe(weights)}")


def malformed(path: Path, what: str):
    raise NlpseqError(f"{path}: malformed checkpoint: {what}")


def describe(value) -> str:
    """A value's type and a short view of it (of a value of any size), for one line."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = 60
    return f"{type(value).__name__} {short.repr(value)}"


def check_task(name: str, path, expected_task: str) -> None:
    """A checkpoint of another task fails with a message naming both tasks."""
    if name != expected_task:
        raise NlpseqError(
            f"'{path}' is a '{name}' checkpoint; this command needs a '{expected_task}' one"
        )


def load_task(path: str | Path, expected_task: str | None = None,
              trusted: Sequence[str] = ()):
    """Rebuild ``(task, tokenizer, config)`` from a checkpoint, in eval mode on the CPU.
    ``trusted``: the command's ``allowed_targets`` patterns (none by default)."""
    path = checkpoint_file(path)
    return task_from_checkpoint(read_checkpoint(path, trusted), path, expected_task)


def task_from_checkpoint(checkpoint: dict, path: str | Path, expected_task: str | None = None):
    """``load_task`` for a checkpoint ``read_checkpoint`` has read and checked (``path``
    only names it in errors)."""
    meta = checkpoint["nlpseq"]
    name = meta["task"]
    if expected_task is not None:
        check_task(name, path, expected_task)
    try:
        tokenizer = None if meta["tokenizer"] is None else tokenizer_from_state(meta["tokenizer"])
    except Exception as err:  # a state of the wrong shape: whatever the backend raised
        raise NlpseqError(f"{path}: its tokenizer cannot be rebuilt ({first_line(err)})"
                          ) from None
    try:
        cfg = OmegaConf.create(meta["config"])
        task = build_task(cfg, tokenizer, meta["label_names"])
    except Exception as err:  # checked targets, but arguments of any shape: one line
        raise NlpseqError(f"{path}: its config does not build a model ({first_line(err)})"
                          ) from None
    if getattr(task, "task_name", None) != name:
        malformed(path, f"a '{name}' checkpoint whose config builds "
                        f"{cfg.task._target_}")
    load_weights(task, checkpoint["state_dict"], path)
    task.checkpoint_extras = {key: meta[key] for key in meta if key != "task"}
    task.eval()
    return task, tokenizer, cfg


def load_weights(task: RecurrentTask, weights: dict, path: str | Path) -> None:
    """Load ``weights`` into ``task``, or refuse in one line when their names or shapes
    are not the model's."""
    expected = task.state_dict()
    missing = [key for key in expected if key not in weights]
    unexpected = [key for key in weights if key not in expected]
    if missing or unexpected:
        parts = [f"{label} {', '.join(keys[:3])}" + (f" (+{len(keys) - 3} more)"
                                                   if len(keys) > 3 else "")
                 for label, keys in (("missing", missing), ("unexpected", unexpected)) if keys]
        raise NlpseqError(f"{path}: its weights do not fit the model its config describes "
                          f"({'; '.join(parts)})")
    for key, value in weights.items():
        if value.shape != expected[key].shape:
            raise NlpseqError(f"{path}: its weights do not fit the model its config describes "
                              f"({key} has shape {tuple(value.shape)}, the model "
                              f"{tuple(expected[key].shape)})")
    task.load_state_dict(weights)


def check_generator_state(checkpoint: dict, path: str | Path) -> None:
    """Refuse a checkpoint to resume whose generator state (``nlpseq_rng``) cannot be
    restored: it is tried here, and the generators are put back as they were."""
    state = checkpoint.get("nlpseq_rng")
    if state is None:
        return
    current = rng_state()
    try:
        set_rng_state(state)
    except Exception as err:  # a state of any shape: whatever random/numpy/torch raised
        malformed(path, f"nlpseq_rng is not the generators' state ({first_line(err)})")
    finally:
        set_rng_state(current)
