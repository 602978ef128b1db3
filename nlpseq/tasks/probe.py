"""Long-range probes as a LightningModule: how far back can each cell remember?

Trains a ``ProbeModel`` on a generated probe (``nlpseq.data.probes``): mean squared error
for the adding problem, cross-entropy and accuracy for the copy task (on the recalled
symbols) and first-token classification. Every report carries the probe's chance level,
so a score reads at a glance as learnt or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from rich.table import Table
from torch import Tensor

from nlpseq.data.probes import ProbeKind, chance_level
from nlpseq.encoders import RecurrentEncoder
from nlpseq.errors import NlpseqError
from nlpseq.models.probe import ProbeModel
from nlpseq.tasks.base import RecurrentTask
from nlpseq.tasks.finetune import FineTuning

# the data settings a trained probe model depends on (its input size and readout)
SHAPING_KEYS = {"adding": ("kind",), "first_token": ("kind", "num_symbols"),
                "copy": ("kind", "num_symbols", "copy_length")}


class ProbeTask(RecurrentTask):
    """Train and evaluate one cell on one probe.

    Args:
        encoder, optimizer, scheduler: Hydra partials from ``conf/encoder``,
            ``conf/optimizer`` and ``conf/scheduler``.
        kind, num_symbols, copy_length: the probe, taken from the data config
            (``conf/task/probe.yaml`` interpolates them).
        monitor, monitor_mode: the validation metric that picks the best checkpoint.
        finetune: how pretrained layers train (``nlpseq.tasks.finetune.FineTuning``).
    """

    task_name = "probe"
    example_data = ": data=adding, copy or first_token"
    text_option = None  # reads generated sequences: nlpseq-inspect traces one of its split
    logged_metrics = ("loss", "acc", "mse")

    def __init__(
        self,
        encoder: Callable[..., RecurrentEncoder],
        optimizer: Callable[..., torch.optim.Optimizer],
        kind: ProbeKind,
        num_symbols: int = 8,
        copy_length: int = 10,
        scheduler: Callable[..., dict] | None = None,
        monitor: str = "val/loss",
        monitor_mode: Literal["min", "max"] = "min",
        finetune: FineTuning | None = None,
    ) -> None:
        super().__init__(optimizer, scheduler, finetune)
        self.kind, self.num_symbols = kind, num_symbols
        self.chance = chance_level(kind, num_symbols)
        self.model = ProbeModel(encoder, kind, num_symbols, copy_length)
        self.monitor, self.monitor_mode = monitor, monitor_mode

    @classmethod
    def check_config(cls, cfg) -> None:
        if cfg.encoder.get("bidirectional"):
            raise NlpseqError("task=probe measures memory over time; a bidirectional encoder "
                              "reads the first steps last. Set encoder.bidirectional=false")

    def check_data(self, data_cfg) -> None:
        """Refuse evaluation data of another probe, or another alphabet or copy length (any
        ``length`` is fine: that measures how far the learnt memory generalises)."""
        trained = {"kind": self.kind, "num_symbols": self.num_symbols,
                   "copy_length": self.model.copy_length}
        relevant = SHAPING_KEYS[self.kind]
        wanted = {key: trained[key] for key in relevant}
        for key in relevant:
            if data_cfg.get(key) != wanted[key]:
                raise NlpseqError(
                    f"this checkpoint was trained on the {self.kind} probe with "
                    f"{', '.join(f'data.{k}={v}' for k, v in wanted.items())}; the evaluation "
                    f"data has data.{key}={data_cfg.get(key)} (data.length may differ)")

    def forward(self, inputs: Tensor, lengths: Tensor | None = None) -> Tensor:
        return self.model(inputs, lengths)

    def loss_and_score(self, batch: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The training loss and, per sequence, the squared error (adding) or the fraction
        of correct answers (symbol tasks). Shapes: () and (B,)."""
        outputs = self(batch["inputs"])
        targets = batch["targets"]
        if self.kind == "adding":
            errors = (outputs - targets) ** 2  # (B,)
            return errors.mean(), errors.detach()
        classes = targets - 1  # symbols 1..K -> classes 0..K-1; (B,) or (B, M)
        loss = F.cross_entropy(outputs.flatten(0, -2), classes.flatten())
        correct = (outputs.argmax(-1) == classes).float()  # (B,) or (B, M)
        return loss, correct.reshape(len(classes), -1).mean(-1).detach()

    @property
    def score_name(self) -> str:
        return "mse" if self.kind == "adding" else "acc"

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, _ = self.loss_and_score(batch)
        self.log_train("train/loss", loss, batch_size=len(batch["targets"]))
        return loss

    # ---------------------------------------------------------------- evaluation
    def eval_step(self, batch: dict[str, Tensor], **options) -> dict:
        """The summed loss and score (squared error or share of correct answers)."""
        loss, score = self.loss_and_score(batch)
        return {"loss": loss * len(score), "score": score.sum(), "examples": len(score)}

    def summarize(self, sums: dict, **options) -> dict:
        """Loss, MSE or accuracy, and the chance level."""
        examples = max(1, int(sums["examples"]))
        return {"loss": float(sums["loss"]) / examples,
                self.score_name: float(sums["score"]) / examples,
                "chance": self.chance, "examples": int(sums["examples"])}

    def report_tables(self, report: dict, prefix: str) -> list:
        """The probe's loss and score beside the chance level."""
        score = self.score_name
        table = Table(title=f"{prefix}: {report[f'{prefix}/examples']} sequences")
        for column in ("loss", score, f"{score} at chance"):
            table.add_column(column, justify="right")
        table.add_row(*(f"{report[f'{prefix}/{key}']:.4f}" for key in ("loss", score, "chance")))
        return [table]

    # ---------------------------------------------------------------- prediction
    def prediction_options(self, given: dict) -> dict:
        raise NlpseqError("this is a probe checkpoint: it reads generated sequences, not text; "
                          "score it with nlpseq-eval or trace it with nlpseq-inspect")

    # ---------------------------------------------------------------- inspection
    def encoder_inputs(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        return self.model.encoder_inputs(batch["inputs"]), None

    def split_example(self, batch: dict[str, Tensor]):
        """A batch's first sequence as encoder inputs (1, T, I) with readable step labels,
        and the probe's own loss over the whole batch (with its true targets)."""
        first = batch["inputs"][:1]
        with torch.no_grad():
            inputs = self.model.encoder_inputs(first)
        if self.kind == "adding":
            labels = [f"{value:.2f}" + ("*" if marker else "")
                      for value, marker in first[0].tolist()]
        else:
            delimiter = self.model.input_size - 1 if self.kind == "copy" else None
            labels = ["_" if s == 0 else "|" if s == delimiter else str(s)
                      for s in first[0].tolist()]
        return inputs, None, labels, lambda: self.loss_and_score(batch)[0]
