"""The task protocol: what every nlpseq task implements, and what ``RecurrentTask`` builds
once on top of it (validation, test, ``nlpseq-eval``, reports, optimizers, checkpoints).

A task is a plug like the encoder: the commands in ``nlpseq.cli`` only call the methods
below and never ask which task they hold. docs/adding-a-task.md walks through a new one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator

import pytorch_lightning as pl
import torch
from hydra.utils import get_class, instantiate
from rich.console import Console
from rich.table import Table
from torch import Tensor

from nlpseq.data.batching import BucketBatchSampler, PadCollator
from nlpseq.errors import NlpseqError
from nlpseq.tasks.finetune import FineTuning, layer_groups
from nlpseq.tasks.rng import rng_state, set_rng_state

log = logging.getLogger("nlpseq.task")


class RecurrentTask(pl.LightningModule):
    """Base LightningModule of every task.

    A task implements:

    - ``build(cfg, tokenizer, label_names)`` (classmethod): the task a run's config
      describes. The default instantiates ``cfg.task`` with the configured encoder,
      optimizer and schedule and the keyword arguments of ``runtime_arguments``.
    - ``train_tokenizer(factory, datamodule, cfg)`` (classmethod): the tokenizer trained on
      the training split (default: one tokenizer over ``datamodule.train_texts()``).
    - ``training_step``: the loss (log it with ``log_train``).
    - ``eval_step(batch, **options) -> sums``: what one evaluation batch adds up to. Tensors
      and numbers are summed over the split, lists are concatenated.
    - ``summarize(sums, **options) -> metrics``: the split's metrics from the sums, keyed
      without a prefix (``acc``, ``loss``, ``precision/pos``). Those named in
      ``logged_metrics`` are logged at every validation as ``val/<key>``; the whole dict
      is the report of ``nlpseq-eval`` and of the final evaluation after training.
    - ``eval_options(**options)``: the evaluation options a user gave ``nlpseq-eval``
      (e.g. ``beam_size``), checked and completed with the task's defaults.
    - ``predict(texts, **options) -> rows``: one JSON-able dict per input;
      ``predict_options`` names the ``nlpseq-predict`` keys it reads, and
      ``prediction_lines(rows, **options)`` how rows are written out.
    - ``report_tables(report, prefix)``: what a report prints (default: one table).
    - ``reading_order(ids)``, ``encoder_inputs(batch)``, ``text_batch(ids)`` and
      ``text_loss(ids)``: what ``nlpseq-inspect`` traces and differentiates;
      ``split_example(batch)`` for a task that reads no text (``text_option = None``).

    - ``transfer_parts(side)`` and ``transfer_tokenizer(side)``: what another run can start
      from (``encoder.init_from``) and what this task starts from another's
      (``init_from_pretrained``); the default: the model's ``embedding`` and ``encoder``.

    Args:
        optimizer: a Hydra partial ``params -> Optimizer`` from ``conf/optimizer``.
        scheduler: a partial ``(optimizer, total_steps) -> lr_scheduler dict`` from
            ``conf/scheduler``, or None for a constant learning rate.
        finetune: freezing, gradual unfreezing and discriminative learning rates of the
            embedding and encoder (``nlpseq.tasks.finetune.FineTuning``), or None.
    """

    task_name = ""  # set by each subclass; stored in checkpoints and checked on loading
    text_option = "text"  # the nlpseq-predict key that gives this task its inputs
    predict_options: tuple[str, ...] = ("batch_size",)  # the other nlpseq-predict keys read
    keeps_empty_lines = False  # nlpseq-predict answers an input file line for line
    example_data = ", data=sample or data=files"  # datasets to suggest in an error
    streams_text = False  # predict(..., on_text=f) shows one input, then its answer as made
    logged_metrics: tuple[str, ...] = ("loss",)  # logged at every validation (+ monitor)
    progress_bar: tuple[str, ...] | None = None  # of those, shown on the bar (None: all)
    one_tokenizer = True  # encoder.init_from: the task reads all its text with the run's tokenizer

    def __init__(
        self,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., dict] | None = None,
        finetune: FineTuning | None = None,
    ) -> None:
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.finetune = finetune
        self._frozen_epoch: int | None = None  # the epoch task.finetune last froze for
        self.checkpoint_extras: dict = {}
        self._resumed_rng: dict | None = None  # generator state of a resumed checkpoint
        self._sums: dict = {}  # what the running validation or test has added up

    # ------------------------------------------------------------------ building
    @classmethod
    def build(cls, cfg, tokenizer, label_names: list[str] | None) -> RecurrentTask:
        """The task ``cfg.task`` describes, with its encoder, optimizer and schedule."""
        scheduler = instantiate(cfg.scheduler) if cfg.get("scheduler") else None
        task = instantiate(cfg.task, encoder=instantiate(cfg.encoder),
                           optimizer=instantiate(cfg.optimizer), scheduler=scheduler,
                           **cls.runtime_arguments(cfg, tokenizer, label_names))
        task.tokenizer = tokenizer  # predict and inspect read raw text with it
        return task

    @classmethod
    def runtime_arguments(cls, cfg, tokenizer, label_names: list[str] | None) -> dict:
        """Constructor arguments fixed by the tokenizer and the data, not by the config."""
        if tokenizer is None:
            return {}
        return {"vocab_size": tokenizer.vocab_size, "pad_id": tokenizer.pad_id}

    @classmethod
    def train_tokenizer(cls, factory, datamodule, cfg):
        """A tokenizer trained on the training split's texts."""
        return factory(datamodule.train_texts())

    @classmethod
    def check_config(cls, cfg) -> None:
        """Refuse a config this task cannot train, before any data is read (override)."""

    @classmethod
    def check_data_config(cls, data_cfg, action: str) -> None:
        """Refuse data made for another task (``data=sst2`` for a language model)."""
        try:
            data_class = get_class(data_cfg._target_)
        except Exception:  # a bad _target_: the config validation names it
            return
        data_task = getattr(data_class, "task_name", None)
        if data_task and data_task != cls.task_name:
            generated = not getattr(data_class, "uses_tokenizer", True)  # no text to read
            raise NlpseqError(f"data={data_cfg.get('name', 'this')} is a {data_task} dataset "
                              f"and cannot {action}; pick a {cls.task_name} dataset"
                              + (f" (task={data_task} trains on it)" if generated
                                 else cls.example_data))

    def check_data(self, data_cfg) -> None:
        """Refuse evaluation data this trained model cannot read (override)."""

    # ------------------------------------------------------------------ transfer
    def transfer_parts(self, side: str = "encoder") -> dict[str, torch.nn.Module]:
        """The parts of this task's model that another run's start from or give, by role:
        ``embedding``, ``recurrent`` (a ``RecurrentEncoder``, or a decoder's torch RNN) and
        optionally ``output``. ``side``: ``encoder``, or ``decoder`` for a translation
        model's target side; a model with one side gives the same parts for both."""
        parts = {"embedding": getattr(self.model, "embedding", None),
                 "recurrent": getattr(self.model, "encoder", None)}
        return {role: part for role, part in parts.items() if part is not None}

    def transfer_tokenizer(self, side: str = "encoder"):
        """The tokenizer that reads the text of ``side``'s parts."""
        return getattr(self, "tokenizer", None)

    @classmethod
    def pretrained_tokenizer(cls, tokenizers: dict, factory, datamodule, cfg):
        """The tokenizer of a run started from pretrained parts: the pretrained encoder
        run's (``tokenizers``: side -> tokenizer), so its embedding rows keep their tokens."""
        return tokenizers["encoder"]

    def init_from_pretrained(self, pretrained: dict) -> dict[str, list[str]]:
        """Copy each pretrained run's parts (``nlpseq.tasks.transfer.Pretrained`` by side)
        into this model's: embedding and recurrent weights must fit (else NlpseqError), an
        output layer is copied where both have one of the same shape. Returns the roles
        copied per side."""
        from nlpseq.tasks.transfer import SIDES, combine_directions, copy_part

        copied = {}
        sides = dict(pretrained)
        if "backward" in sides:  # two left-to-right models, one direction each
            forward, backward = sides.pop("encoder"), sides.pop("backward")
            where = f"{SIDES['backward']}={backward.path}"
            copied["encoder"] = combine_directions(
                self.transfer_parts("encoder"), forward.task.transfer_parts("encoder"),
                backward.task.transfer_parts("encoder"), where)
            log.info("%s=%s and %s: copied %s, one direction each", SIDES["encoder"],
                     forward.path, where, ", ".join(copied["encoder"]))
        for side, run in sides.items():
            ours, theirs = self.transfer_parts(side), run.task.transfer_parts(side)
            where = f"{SIDES[side]}={run.path}"
            copied[side] = []
            for role in ("embedding", "recurrent", "output"):
                if role in ours and role in theirs and copy_part(
                        ours[role], theirs[role], role, where, required=role != "output"):
                    copied[side].append(role)
            log.info("%s: copied %s", where, ", ".join(copied[side]))
        return copied

    # ------------------------------------------------------------------ training
    def layer_groups(self) -> list[list[torch.nn.Parameter]]:
        """The model's parameters by layer, bottom first: embedding, each encoder layer,
        the rest (``nlpseq.tasks.finetune.layer_groups``)."""
        return layer_groups(self.model, self.transfer_parts("encoder"))

    def on_train_batch_start(self, batch, batch_idx: int) -> None:
        """Freeze the layer groups ``task.finetune`` leaves frozen this epoch (checked at
        each batch: a run resumed mid-epoch starts with no epoch start)."""
        if self.finetune is None or self._frozen_epoch == self.current_epoch:
            return
        self._frozen_epoch = self.current_epoch
        groups = self.layer_groups()
        trainable = self.finetune.trainable_groups(self.current_epoch, len(groups))
        for i, group in enumerate(groups):
            for param in group:
                param.requires_grad_(i >= len(groups) - trainable)
        if trainable < len(groups):
            log.info("Epoch %d: the top %d of %d layer groups train", self.current_epoch,
                     trainable, len(groups))

    def optimizer_parameters(self) -> list:
        """What the optimizer gets: all parameters, or with ``task.finetune.layer_lr_decay``
        one group per layer, each with its share of the learning rate (``lr_scale``)."""
        if self.finetune is None or not self.finetune.groups_by_layer:
            return list(self.parameters())
        groups = self.layer_groups()
        scales = self.finetune.learning_rate_scales(len(groups))
        return [{"params": group, "lr_scale": scale}
                for group, scale in zip(groups, scales, strict=True)]

    def configure_optimizers(self):
        parameters = self.optimizer_parameters()
        scales = [p.pop("lr_scale") for p in parameters if isinstance(p, dict)]
        options = {}
        if (getattr(self.optimizer_factory, "keywords", {}).get("fused") and self._trainer
                and "mixed" in str(self.trainer.precision)):
            # Lightning clips gradients under mixed precision only for an optimizer that
            # leaves unscaling to it, which a fused one does not
            log.info("trainer.precision=%s: the optimizer runs unfused (fused=false)",
                     self.trainer.precision)
            options["fused"] = False
        optimizer = self.optimizer_factory(parameters, **options)
        for group, scale in zip(optimizer.param_groups, scales or [1.0], strict=True):
            group["lr"] *= scale  # before the schedule reads each group's initial lr
        if self.scheduler_factory is None:
            return optimizer
        total_steps = int(self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer,
                "lr_scheduler": self.scheduler_factory(optimizer, total_steps=total_steps)}

    def log_train(self, name: str, value: Tensor, batch_size: int | Tensor,
                  prog_bar: bool = True) -> None:
        """Log a training-step value, but only on the steps Lightning writes to the loggers.

        Lightning keeps step metrics only every ``log_every_n_steps``; a ``self.log`` call
        on the other steps still costs about a millisecond, which is 15 % of a small
        model's training step on a GPU (measured with scripts/bench_train_step.py). A tensor
        ``batch_size`` is read (a GPU sync) only on the steps that are logged.
        """
        trainer = self._trainer
        if trainer is None:  # a step called by hand (tests): nothing to log to
            return
        every = max(1, trainer.log_every_n_steps)
        if (trainer.global_step + 1) % every and not trainer.should_stop:
            return
        self.log(name, value, prog_bar=prog_bar, batch_size=int(batch_size))

    # ---------------------------------------------------------------- evaluation
    def eval_step(self, batch: dict, **options) -> dict:
        raise NotImplementedError

    def summarize(self, sums: dict, **options) -> dict:
        raise NotImplementedError

    def eval_options(self, **options) -> dict:
        """Check the evaluation options a user gave; this task takes none."""
        if options:
            raise NlpseqError(f"{', '.join(options)} does not apply to a {self.task_name} "
                              "checkpoint")
        return {}

    def on_validation_epoch_start(self) -> None:
        self._sums = {}

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        add_up(self._sums, self.eval_step(batch))

    def on_validation_epoch_end(self) -> None:
        self._log_summary("val")

    def on_test_epoch_start(self) -> None:
        self._sums, self._test_options = {}, self.eval_options()  # the task's defaults

    def test_step(self, batch: dict, batch_idx: int) -> None:
        add_up(self._sums, self.eval_step(batch, **self._test_options))

    def on_test_epoch_end(self) -> None:
        self._log_summary("test", **self._test_options)

    def _log_summary(self, prefix: str, **options) -> None:
        """Log the split's ``logged_metrics``. Under DDP every rank evaluates the whole
        split (evaluation loaders are not shared out), so rank 0's sums are the split's."""
        sums, self._sums = self._sums, {}
        if not sums:
            return
        metrics = self.summarize(sums, **options)
        monitor = str(getattr(self, "monitor", "")).removeprefix("val/")  # always logged
        for key in dict.fromkeys([*self.logged_metrics, monitor]):
            if key in metrics:
                self.log(f"{prefix}/{key}", float(metrics[key]),
                         prog_bar=self.progress_bar is None or key in self.progress_bar)

    @torch.no_grad()
    def evaluate(self, loader: Iterable[dict], prefix: str, **options) -> dict:
        """The report of a whole split: ``summarize`` over every batch's ``eval_step``,
        the same computation as validation during training, keyed ``<prefix>/<metric>``."""
        options = self.eval_options(**options)
        self.eval()
        sums: dict = {}
        for batch in loader:
            add_up(sums, self.eval_step(to_device(batch, self.device), **options))
        metrics = self.summarize(sums, **options)
        return {f"{prefix}/{key}": plain(value) for key, value in metrics.items()}

    def report_tables(self, report: dict, prefix: str) -> list:
        """What a report prints: one table of the scalar metrics (override for more)."""
        scalars = {key.removeprefix(f"{prefix}/"): value for key, value in report.items()
                   if key.startswith(f"{prefix}/") and isinstance(value, float)}
        table = Table(title=prefix)
        for key in scalars:
            table.add_column(key, justify="right")
        table.add_row(*(f"{value:.4f}" for value in scalars.values()))
        return [table]

    def print_report(self, report: dict, prefix: str) -> None:
        console = Console()
        for table in self.report_tables(report, prefix):  # a line of text is never cut
            console.print(table, soft_wrap=isinstance(table, str))

    # ---------------------------------------------------------------- prediction
    def predict(self, texts: list[str], **options) -> list[dict]:
        raise NlpseqError(f"a {self.task_name} checkpoint makes no predictions from text")

    def prediction_options(self, given: dict) -> dict:
        """The ``nlpseq-predict`` options this task reads, from those given (unset ones are
        left to ``predict``'s defaults)."""
        return {key: given[key] for key in self.predict_options if given.get(key) is not None}

    def prediction_lines(self, rows: list[dict], **options) -> list[str]:
        """How ``nlpseq-predict`` writes rows: one JSON object a line."""
        return [json.dumps(row, ensure_ascii=False) for row in rows]

    # ---------------------------------------------------------------- inspection
    def encoder_inputs(self, batch: dict) -> tuple[Tensor, Tensor | None]:
        """What the encoder reads from a batch, and the lengths (None: nothing padded).
        Shape: (B, T, I), (B,)."""
        lengths = None if "block" in batch else batch["lengths"]  # a language model's stream
        return self.model.embedding(batch["tokens"]), lengths

    def reading_order(self, ids: list[int]) -> list[int]:
        """A text's token ids in the order the model reads them (a backward language model
        reads them reversed)."""
        return ids

    def text_batch(self, ids: list[int]) -> dict[str, Tensor]:
        """One tokenized text as a batch of one."""
        return {"tokens": torch.tensor([ids]), "lengths": torch.tensor([len(ids)])}

    def split_example(self, batch: dict):
        """For a task that reads no text: a batch's first sequence as encoder inputs
        (1, T, I), its lengths, step labels, and a loss over the batch (or None)."""
        raise NotImplementedError

    def text_loss(self, ids: list[int]) -> Callable[[], Tensor] | None:
        """A loss the model's own output defines on a text, for its gradient flow; None
        when it has none (say why in the log)."""
        log.info("No gradient-flow curve: a %s model defines no loss on a text alone",
                 self.task_name)
        return None

    # ---------------------------------------------------------------- checkpoints
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["nlpseq"] = {"task": self.task_name, **self.checkpoint_extras}
        checkpoint["nlpseq_rng"] = rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Keep the saved generator state for ``on_train_start``: the sanity-check
        validation that runs first when training resumes draws from the generators too."""
        self._resumed_rng = checkpoint.get("nlpseq_rng")

    def on_train_start(self) -> None:
        if self._resumed_rng is not None:
            set_rng_state(self._resumed_rng)
            self._resumed_rng = None


def add_up(sums: dict, step: dict) -> None:
    """Add one batch's ``eval_step`` to the running sums: numbers and tensors add (floating
    tensors in float32, whatever the training precision), lists concatenate."""
    for key, value in step.items():
        if isinstance(value, Tensor) and value.is_floating_point():
            value = value.float()
        if key not in sums:
            sums[key] = list(value) if isinstance(value, list) else value
        elif isinstance(value, list):
            sums[key].extend(value)
        else:
            sums[key] = sums[key] + value


def length_batches(ids: list[list[int]], batch_size: int,
                   tokenizer) -> Iterator[tuple[list[int], dict[str, Tensor]]]:
    """Token-id sequences as padded batches of similar lengths: ``(rows, batch)`` where
    ``rows`` are the sequences' positions in ``ids`` (an empty one reads as ``<unk>``)."""
    examples = [{"input_ids": seq or [tokenizer.unk_id], "index": i} for i, seq in enumerate(ids)]
    sampler = BucketBatchSampler([len(e["input_ids"]) for e in examples], batch_size,
                                 shuffle=False)
    collate = PadCollator(tokenizer.pad_id)
    for rows in sampler:
        yield rows, collate([examples[i] for i in rows])


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch with its tensors on ``device`` (other values as they are)."""
    return {key: value.to(device) if isinstance(value, Tensor) else value
            for key, value in batch.items()}


def plain(value):
    """A metric as a JSON value: a 0-d tensor as a float, a tensor as nested lists."""
    if isinstance(value, Tensor):
        return value.item() if value.dim() == 0 else value.tolist()
    return value
