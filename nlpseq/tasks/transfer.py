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

``encoder.init_from_backward=RUN`` adds a backward language model (``data.reverse=true``)
to a forward one: the new encoder is bidirectional, its forward direction the forward
model's, its reverse direction the backward model's, and its embedding the two embeddings
side by side (ULMFiT and ELMo pretrain both directions). The input weights of each
direction read only its own half (the other half starts at zero), so before fine-tuning
the encoder computes exactly what the two language models compute (``combine_directions``).
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
SIDES = {"encoder": "encoder.init_from", "decoder": "task.decoder.init_from",
         "backward": "encoder.init_from_backward"}
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
# encoder.init_from_backward: the settings of the encoder made of two, from a forward model's
TWO_DIRECTIONS = {"encoder.bidirectional": lambda _: True,
                  "task.embedding_dim": lambda size: 2 * size}


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
        try:
            path = checkpoint_file(value)
        except NlpseqError as err:
            raise NlpseqError(f"{key}: {err} (train the run to start from first, or give a run "
                              "directory or .ckpt that exists)") from None
        checkpoint = read_checkpoint(path, trusted)
        task, _, _ = task_from_checkpoint(checkpoint, path)
        found[side] = Pretrained(side, path, task, checkpoint["nlpseq"]["config"])
        log.info("%s=%s: a %s run (%s encoder)", key, path, task.task_name,
                 checkpoint["nlpseq"]["config"]["encoder"]["cell"])
    if "backward" in found:
        check_directions(found.get("encoder"), found["backward"])
    for side in ("encoder", "decoder"):
        run = found.get(side)
        continues = side == "encoder" and OmegaConf.select(cfg, "data.reverse", default=False)
        if run is not None and reads_backward(run) and "backward" not in found and not continues:
            raise NlpseqError(f"{SIDES[side]}={run.path} reads text right to left "
                              "(data.reverse=true): give it as encoder.init_from_backward "
                              "beside a forward model (or continue it with data.reverse=true)")
    return found


def reads_backward(run: Pretrained) -> bool:
    return bool(run.config.get("data", {}).get("reverse", False))


def check_directions(forward: Pretrained | None, backward: Pretrained) -> None:
    """``encoder.init_from_backward`` needs a forward and a backward language model of the
    same shape and vocabulary."""
    where = f"{SIDES['backward']}={backward.path}"
    if forward is None:
        raise NlpseqError(f"{SIDES['backward']} needs {SIDES['encoder']}: the forward "
                          "language model whose encoder starts the forward direction")
    if not reads_backward(backward):
        raise NlpseqError(f"{where} reads text left to right; train the backward model "
                          "with data.reverse=true")
    if reads_backward(forward):
        raise NlpseqError(f"{SIDES['encoder']}={forward.path} reads text right to left "
                          "(data.reverse=true); it must be the forward model")
    for run in (forward, backward):
        if run.config["encoder"].get("bidirectional"):
            raise NlpseqError(f"{run.path} has a bidirectional encoder; "
                              f"{SIDES['backward']} combines two left-to-right ones")
    theirs = OmegaConf.create(backward.config)
    ours = OmegaConf.create(forward.config)
    for key in ENCODER_SETTINGS.values():
        mine, other = OmegaConf.select(ours, key), OmegaConf.select(theirs, key)
        if mine != other:
            raise NlpseqError(f"{where} does not fit {SIDES['encoder']}: {key}={other!r} "
                              f"there and {mine!r} in the forward model")
    if (forward.task.transfer_tokenizer().to_state()
            != backward.task.transfer_tokenizer().to_state()):
        raise NlpseqError(f"{where} has another tokenizer than {SIDES['encoder']}: train "
                          "both language models on the same text with the same tokenizer")


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
    both_directions = "backward" in pretrained
    for side, run in pretrained.items():
        if side == "backward":  # its settings are the forward model's (check_directions)
            continue
        settings = ENCODER_SETTINGS if side == "encoder" else DECODER_SETTINGS
        if side == "decoder" and run.config["encoder"].get("bidirectional"):
            raise NlpseqError(f"{SIDES[side]}={run.path} has a bidirectional encoder; a "
                              "decoder starts from a left-to-right language model")
        stored = OmegaConf.create(run.config)
        for ours, theirs in settings.items():
            value = OmegaConf.select(stored, theirs, default=None)
            why = f"{SIDES[side]}: the checkpoint has {theirs}={value!r}"
            if side == "encoder" and both_directions and ours in TWO_DIRECTIONS:
                value = TWO_DIRECTIONS[ours](value)
                why = (f"{SIDES[side]} and {SIDES['backward']}: two left-to-right models "
                       f"side by side make {ours}={value!r}")
            current = OmegaConf.select(cfg, ours, default=ABSENT)
            if current is ABSENT:  # a setting this task does not have (a probe's embedding)
                continue
            if ours in user_keys and current != value:
                raise NlpseqError(f"{ours}={current!r} does not match {why}")
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
    return {side: run.task.transfer_tokenizer(side) for side, run in pretrained.items()
            if side != "backward"}  # the backward model has the forward model's tokenizer


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


def combine_directions(target: dict[str, nn.Module], forward: dict[str, nn.Module],
                       backward: dict[str, nn.Module], where: str) -> list[str]:
    """Start a bidirectional encoder (``target``'s ``embedding`` and ``recurrent``) from a
    forward and a backward left-to-right model's parts. The embedding is the two side by
    side, ``[forward | backward]``; each direction of each layer takes its model's weights,
    its input weights on its own half of the input (the embedding's half, or its direction's
    half of the layer below) and zero on the other half. Returns the roles copied."""
    embedding = torch.cat([forward["embedding"].weight, backward["embedding"].weight], dim=1)
    if embedding.shape != target["embedding"].weight.shape:
        raise NlpseqError(f"{where} does not fit this model: the two embeddings make "
                          f"{tuple(embedding.shape)}, this model has "
                          f"{tuple(target['embedding'].weight.shape)}")
    target["embedding"].load_state_dict({"weight": embedding})
    sources = (canonical_state(forward["recurrent"]), canonical_state(backward["recurrent"]))
    state = {}
    for key, (name, value) in canonical_state(target["recurrent"]).items():
        reverse = key.endswith("_reverse")
        source = sources[reverse].get(key.removesuffix("_reverse"))
        if source is None:
            raise NlpseqError(f"{where} does not fit this model: no weight for {key}")
        weight = source[1]
        if weight.shape != value.shape:  # an input weight: (G*H, half) into (G*H, 2*half)
            half = weight.shape[-1]
            if value.shape != (*weight.shape[:-1], 2 * half):
                raise NlpseqError(f"{where} does not fit this model: {key} has shape "
                                  f"{tuple(weight.shape)} there and {tuple(value.shape)} here")
            zeros = torch.zeros_like(weight)
            weight = torch.cat([zeros, weight] if reverse else [weight, zeros], dim=-1)
        state[name] = weight
    target["recurrent"].load_state_dict(state)
    return ["embedding", "recurrent"]
