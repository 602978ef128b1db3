"""Start a run from another run's weights: ``encoder.init_from=RUN`` (the embedding and
the encoder, and a language model's output layer) and, for translation,
``task.decoder.init_from=RUN`` (the target embedding and the decoder's recurrent layers
from a target-side language model).

The pretrained checkpoint is read with the safe reader (``read_checkpoint``), and its task
is rebuilt as ``load_task`` does; its parts are then copied, by role, into the new task's
(``RecurrentTask.transfer_parts``). The settings that shape those parts — the cell, the
encoder sizes, the embedding size and the tokenizer — come from the pretrained run unless
the command line sets them; a setting that differs from the checkpoint's is refused.
A checkpoint of the new run holds all its weights: loading it never reads ``init_from``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from torch import nn

from nlpseq.errors import NlpseqError
from nlpseq.tasks.checkpoint import checkpoint_file, read_checkpoint, task_from_checkpoint
from nlpseq.tasks.finetune import canonical_name

log = logging.getLogger("nlpseq.transfer")

ABSENT = object()
SIDES = {"encoder": "encoder.init_from", "decoder": "task.decoder.init_from"}
# this run's key -> the pretrained config's key, per side (the settings that shape the parts)
ENCODER_SETTINGS = {
    "encoder.cell": "encoder.cell",
    "encoder.hidden_size": "encoder.hidden_size",
    "encoder.num_layers": "encoder.num_layers",
    "encoder.bidirectional": "encoder.bidirectional",
    "encoder.nonlinearity": "encoder.nonlinearity",
    "encoder.match_params": "encoder.match_params",
    "encoder.match_reference": "encoder.match_reference",
    "task.embedding_dim": "task.embedding_dim",
}
DECODER_SETTINGS = {  # a target-side language model's encoder becomes the decoder's RNN
    "task.decoder.cell": "encoder.cell",
    "task.decoder.hidden_size": "encoder.hidden_size",
    "task.decoder.num_layers": "encoder.num_layers",
    "task.embedding_dim": "task.embedding_dim",
}


@dataclass
class Pretrained:
    """A pretrained run as read for one side: its checkpoint file and its rebuilt task."""

    side: str
    path: Path
    task: object  # a RecurrentTask, in eval mode on the CPU
    config: dict


def read_pretrained(cfg: DictConfig, trusted: Sequence[str] = ()) -> dict[str, Pretrained]:
    """The pretrained runs ``cfg`` names, by side (none: an empty dict)."""
    found = {}
    for side, key in SIDES.items():
        value = OmegaConf.select(cfg, key, default=None)
        if not value:
            continue
        path = checkpoint_file(value)
        checkpoint = read_checkpoint(path, trusted)
        task, _, _ = task_from_checkpoint(checkpoint, path)
        found[side] = Pretrained(side, path, task, checkpoint["nlpseq"]["config"])
        log.info("%s=%s: a %s run (%s encoder)", key, path, task.task_name,
                 checkpoint["nlpseq"]["config"]["encoder"]["cell"])
    return found


def command_line_keys(overrides: Sequence[str]) -> set[str]:
    """The keys a command line sets: ``encoder=gru`` sets ``encoder.cell``,
    ``tokenizer=bpe`` ``tokenizer``, ``encoder.hidden_size=8`` itself."""
    keys = set()
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        keys.add({"encoder": "encoder.cell"}.get(key, key))
        if key.startswith("tokenizer"):
            keys.add("tokenizer")
    return keys


def apply_pretrained_settings(cfg: DictConfig, pretrained: dict[str, Pretrained],
                              user_keys: set[str], one_tokenizer: bool) -> None:
    """Set in ``cfg`` the pretrained runs' cell, sizes and tokenizer; refuse one the
    command line set to another value. ``one_tokenizer``: the task reads text with the
    pretrained run's tokenizer (translation trains its other side's itself)."""
    for side, run in pretrained.items():
        settings = ENCODER_SETTINGS if side == "encoder" else DECODER_SETTINGS
        if side == "decoder" and run.config["encoder"].get("bidirectional"):
            raise NlpseqError(f"{SIDES[side]}={run.path} has a bidirectional encoder; a "
                              "decoder starts from a left-to-right language model")
        for ours, theirs in settings.items():
            value = OmegaConf.select(OmegaConf.create(run.config), theirs, default=None)
            current = OmegaConf.select(cfg, ours, default=ABSENT)
            if current is ABSENT:  # a setting this task does not have (a probe's embedding)
                continue
            if ours in user_keys and current != value:
                raise NlpseqError(f"{ours}={current!r} does not match {SIDES[side]}: the "
                                  f"checkpoint has {theirs}={value!r}")
            with open_dict(cfg):
                OmegaConf.update(cfg, ours, value, merge=False)
        if side == "encoder" and one_tokenizer:
            theirs = run.config["tokenizer"]
            if "tokenizer" in user_keys:
                mine = OmegaConf.to_container(cfg.tokenizer, resolve=True)
                changed = sorted((k for k in mine.keys() | theirs.keys()
                                  if mine.get(k) != theirs.get(k)),
                                 key=lambda k: (k not in ("model", "_target_"), k))
                if changed:
                    key = changed[0]
                    raise NlpseqError(f"tokenizer.{key}={mine.get(key)!r} does not match "
                                      f"{SIDES[side]}: the checkpoint has tokenizer.{key}="
                                      f"{theirs.get(key)!r} (its tokenizer is used)")
            with open_dict(cfg):
                cfg.tokenizer = theirs


def pretrained_tokenizers(pretrained: dict[str, Pretrained]) -> dict:
    """Each side's tokenizer: the pretrained task's for that side."""
    return {side: run.task.transfer_tokenizer(side) for side, run in pretrained.items()}


def canonical_state(module: nn.Module) -> dict[str, tuple[str, torch.Tensor]]:
    """canonical name -> (the module's own name, tensor), for parameters and buffers."""
    return {canonical_name(name): (name, value) for name, value in module.state_dict().items()}


def copy_part(target: nn.Module, source: nn.Module, role: str, where: str,
              required: bool = True) -> int:
    """Copy ``source``'s weights into ``target`` by canonical name; return how many
    tensors were copied. A name or shape that does not fit is refused (``required``) or
    leaves the part as it is, logged."""
    ours, theirs = canonical_state(target), canonical_state(source)
    problem = None
    if ours.keys() != theirs.keys():
        odd = sorted(ours.keys() ^ theirs.keys())
        problem = f"its {role} has other weights ({', '.join(odd[:3])})"
    else:
        for key, (_, value) in ours.items():
            if theirs[key][1].shape != value.shape:
                problem = (f"{role} weight {key} has shape {tuple(theirs[key][1].shape)} "
                           f"there and {tuple(value.shape)} here")
                break
    if problem is not None:
        if required:
            raise NlpseqError(f"{where} does not fit this model: {problem}")
        log.info("%s: the %s is not copied (%s)", where, role, problem)
        return 0
    state = {name: theirs[key][1] for key, (name, _) in ours.items()}
    target.load_state_dict(state)
    return len(state)
