"""Fine-tuning a pretrained encoder behind any head: freezing, gradual unfreezing and
discriminative learning rates (ULMFiT: Howard & Ruder 2018).

A task's parameters fall into layer groups, bottom first: the embedding, each encoder
layer (both directions of a layer together), then everything else — the head, and for
translation the decoder side. ``RecurrentTask.transfer_parts`` says which module is the
embedding and which the encoder; a part a task lacks (a probe has no embedding) is skipped.
"""

from __future__ import annotations

import re
from typing import Literal

from torch import nn

from nlpseq.errors import NlpseqError

SCHEDULES = ("gradual",)


class FineTuning:
    """How a task trains its pretrained layers (``task.finetune`` in conf/task/*.yaml).

    Args:
        freeze_encoder: never train the embedding and the encoder: only the head learns.
        unfreeze_schedule: ``gradual``: only the head trains in the first epoch; every
            ``unfreeze_every`` epochs the next group down starts training (the top encoder
            layer, ..., the bottom layer, then the embedding). None: all train from the start.
        unfreeze_every: epochs between two unfreezing steps.
        layer_lr_decay: each group gets the learning rate of the group above it times this
            factor (the head gets the optimizer's ``lr``); ULMFiT divides by 2.6 (0.385).
            1.0: one learning rate for all.
    """

    def __init__(self, freeze_encoder: bool = False,
                 unfreeze_schedule: Literal["gradual"] | None = None,
                 unfreeze_every: int = 1, layer_lr_decay: float = 1.0) -> None:
        if unfreeze_schedule is not None and unfreeze_schedule not in SCHEDULES:
            raise NlpseqError(f"task.finetune.unfreeze_schedule={unfreeze_schedule!r} is not "
                              "valid: expected 'gradual' or null")
        if freeze_encoder and unfreeze_schedule is not None:
            raise NlpseqError("task.finetune.freeze_encoder=true keeps the encoder frozen; "
                              "it cannot be combined with task.finetune.unfreeze_schedule="
                              f"{unfreeze_schedule}")
        if not isinstance(unfreeze_every, int) or unfreeze_every < 1:
            raise NlpseqError(f"task.finetune.unfreeze_every must be an integer >= 1; got "
                              f"{unfreeze_every!r}")
        if not 0.0 < layer_lr_decay <= 1.0:
            raise NlpseqError(f"task.finetune.layer_lr_decay must be in (0, 1]; got "
                              f"{layer_lr_decay}")
        self.freeze_encoder, self.unfreeze_schedule = freeze_encoder, unfreeze_schedule
        self.unfreeze_every, self.layer_lr_decay = unfreeze_every, layer_lr_decay

    @property
    def groups_by_layer(self) -> bool:
        """Whether the optimizer needs one parameter group per layer."""
        return self.layer_lr_decay != 1.0

    def trainable_groups(self, epoch: int, num_groups: int) -> int:
        """How many layer groups, counted from the top (the head is one), train in
        ``epoch`` (0-based)."""
        if self.freeze_encoder:
            return 1
        if self.unfreeze_schedule is None:
            return num_groups
        return min(num_groups, 1 + epoch // self.unfreeze_every)

    def learning_rate_scales(self, num_groups: int) -> list[float]:
        """Each group's share of the base learning rate, bottom first (the head's is 1)."""
        return [self.layer_lr_decay ** (num_groups - 1 - i) for i in range(num_groups)]


def canonical_name(name: str) -> str:
    """A recurrent parameter's name whatever module holds it: ``rnn.`` dropped,
    ``layers.i.*_l0`` (locked dropout) as ``*_li``, weight-drop's
    ``parametrizations.X.original`` as ``X``."""
    name = re.sub(r"parametrizations\.(\w+)\.original", r"\1", name).removeprefix("rnn.")
    stacked = re.fullmatch(r"layers\.(\d+)\.(\w+)_l0(_reverse)?", name)
    if stacked:
        index, weight, reverse = stacked.groups()
        name = f"{weight}_l{index}{reverse or ''}"
    return name


def encoder_layer(name: str) -> int:
    """The layer index of a ``RecurrentEncoder`` parameter name: ``rnn.weight_ih_l1``,
    ``rnn.layers.1.weight_ih_l0`` (locked dropout) and weight-drop's
    ``rnn.parametrizations.weight_hh_l1.original`` are all layer 1."""
    return int(re.search(r"_l(\d+)", canonical_name(name)).group(1))


def layer_groups(model: nn.Module, parts: dict[str, nn.Module]) -> list[list[nn.Parameter]]:
    """``model``'s parameters in layer groups, bottom first: the embedding
    (``parts['embedding']``), one group per layer of ``parts['recurrent']`` (a
    ``RecurrentEncoder``), then every other parameter (the head). Empty groups are left out;
    a parameter shared by two parts (tied weights) belongs to the lowest."""
    groups: list[list[nn.Parameter]] = []
    seen: set[int] = set()

    def take(params) -> list[nn.Parameter]:
        fresh = [p for p in params if id(p) not in seen]
        seen.update(id(p) for p in fresh)
        return fresh

    if "embedding" in parts:
        groups.append(take(parts["embedding"].parameters()))
    if "recurrent" in parts:
        encoder = parts["recurrent"]
        by_layer: list[list[nn.Parameter]] = [[] for _ in range(encoder.num_layers)]
        for name, param in encoder.named_parameters():
            by_layer[encoder_layer(name)].append(param)
        groups.extend(take(layer) for layer in by_layer)
    groups.append(take(model.parameters()))
    return [group for group in groups if group]
