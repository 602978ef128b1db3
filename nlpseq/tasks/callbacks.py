"""Training callbacks: atomic checkpoints, a throughput counter, a per-epoch log line.

Checkpointing never leaves a half-written file behind.

Lightning writes a checkpoint in place; a run killed during the write would leave a
corrupt ``best.ckpt``. Here every checkpoint is written to a temporary file in the same
folder and moved over the old one with an atomic rename. ``best.ckpt`` and ``last.ckpt``
come from two callbacks: ``AtomicModelCheckpoint`` watching the task's metric, and
``LastCheckpoint`` writing the latest state at every validation.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import sys
import time
from pathlib import Path

import torch
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.utilities.exceptions import SIGTERMException
from torch import Tensor

from nlpseq.compat import AtomicWriteCheckpoint
from nlpseq.diagnostics.gradient_flow import GradientProbe, first_to_last_ratio
from nlpseq.errors import NlpseqError

log = logging.getLogger("nlpseq.train")


class AtomicModelCheckpoint(AtomicWriteCheckpoint):
    """``ModelCheckpoint`` whose files are replaced atomically (write temp, then rename)."""


class LastCheckpoint(AtomicModelCheckpoint):
    """``last.ckpt``: the latest state, written at every validation and when training ends.

    Lightning's own ``save_last`` writes last.ckpt only when it saves a new best checkpoint:
    in a run whose score stopped improving at epoch 31 of 60, last.ckpt kept epoch 31, and
    ``resume=true`` silently went back to it. This is a ``ModelCheckpoint`` that watches no
    metric, which Lightning saves at every validation (at the end of every training epoch
    when there is no validation); ``on_train_end`` adds the final state when training ends
    between two validations (``max_steps``), and ``on_exception`` the state at the step a
    stop request (SIGTERM, Ctrl-C) ended training on. The training command lists it after
    the best checkpoint's callback, so the state it saves holds that callback's newest best.
    """

    def __init__(self, dirpath: str) -> None:
        super().__init__(dirpath=dirpath, filename="last", monitor=None, save_top_k=1,
                         save_last=False, enable_version_counter=False,
                         auto_insert_metric_name=False)
        self.saved_at: tuple[int, int] | None = None  # (epoch, step) of this run's last save

    def after_save(self, trainer) -> None:
        self.saved_at = (trainer.current_epoch, trainer.global_step)

    def on_train_end(self, trainer, pl_module) -> None:
        self._save_unsaved_step(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        """At SIGTERM (nlpseq turns a first Ctrl-C into one) Lightning finishes the current
        batch and raises ``SIGTERMException``: the state between two steps, which resumes
        exactly, so a scheduler's time limit shorter than an epoch still makes progress.
        Any other exception may have struck in the middle of a step: nothing is saved."""
        if isinstance(exception, SIGTERMException):
            self._save_unsaved_step(trainer)

    def _save_unsaved_step(self, trainer) -> None:
        """Save the current state unless this run has saved this step already."""
        if trainer.fast_dev_run or trainer.global_step == 0 or (
                self.saved_at and self.saved_at[1] == trainer.global_step):
            return
        self.best_model_path = self.format_checkpoint_name({})  # saved in the state: first
        self.save_now(trainer, self.best_model_path)


class TrainingThroughput(Callback):
    """Count real (non-pad) training tokens and the time spent training on them.

    The clock runs from the start of a run's, an epoch's or a validation's first following
    training batch to the end of each batch, and on from there: the loading of every later
    batch counts, validation (also mid-epoch, ``val_check_interval`` < 1) does not, nor
    what a process does before its first batch (start-up, restoring a checkpoint — a run
    resumed mid-epoch gets no ``on_train_epoch_start``). The count is summed where the
    batch lives and read only when asked for: reading a GPU tensor after every step would
    make the CPU wait for the GPU to finish that step before it could queue the next one.
    (Lightning's own ``ThroughputMonitor`` logs per-step rates; this one is the run's
    total for ``metrics.json``.)

    The first ``warmup_batches`` batches of each process also pay for one-off set-up
    (kernel selection for new shapes, allocator growth, worker start): the ``steady_*``
    figures leave them out, so a short run's rate can be read beside the steady one.
    """

    def __init__(self, warmup_batches: int = 10) -> None:
        self.warmup_batches = warmup_batches
        self.seconds = self.steady_seconds = 0.0
        self._mark: float | None = None  # None: the next batch's start restarts the clock
        self._count: Tensor | int = 0  # a tensor on the batches' device once training ran
        self._steady_count: Tensor | int = 0
        self._batches = 0  # trained in this process

    @property
    def tokens(self) -> int:
        return int(self._count)

    def _pause(self, *_) -> None:
        self._mark = None

    on_train_start = on_train_epoch_start = on_validation_end = _pause

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self._mark is None:
            self._mark = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        seconds = 0.0 if self._mark is None else now - self._mark  # None: no batch start seen
        tokens = batch["lengths"].sum()
        self._mark = now
        self.seconds += seconds
        self._count = self._count + tokens
        self._batches += 1
        if self._batches > self.warmup_batches:
            self.steady_seconds += seconds
            self._steady_count = self._steady_count + tokens

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    @property
    def steady_tokens_per_second(self) -> float | None:
        """Tokens/s after each process's first ``warmup_batches`` (None: no batch after)."""
        return int(self._steady_count) / self.steady_seconds if self.steady_seconds else None

    @property
    def state_key(self) -> str:
        return "ThroughputMonitor"  # its name in checkpoints: older ones resume too

    def state_dict(self) -> dict:  # saved in checkpoints: a resumed run counts both parts
        return {"tokens": self.tokens, "seconds": self.seconds,
                "steady_tokens": int(self._steady_count), "steady_seconds": self.steady_seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self._count, self.seconds = state_dict["tokens"], state_dict["seconds"]
        self._steady_count = state_dict.get("steady_tokens", 0)  # older checkpoints: none
        self.steady_seconds = state_dict.get("steady_seconds", 0.0)


class PeakMemory(Callback):
    """The most memory this training run held: the process's resident memory, sampled every
    ``every_n_batches`` training and validation batches, and the GPU's peak allocation.

    Sampled rather than read from the process's lifetime peak: a sweep runs its jobs one
    after another in one process, and each job must report its own peak. Sampling every
    batch would add a /proc read to every step of the training loop.
    """

    def __init__(self, every_n_batches: int = 10) -> None:
        self.every_n_batches = every_n_batches
        self.rss_mib = 0.0
        self.gpu_mib: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        if pl_module.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(pl_module.device)
        self._sample()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if batch_idx % self.every_n_batches == 0:
            self._sample()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx,
                                dataloader_idx=0) -> None:
        if batch_idx % self.every_n_batches == 0:
            self._sample()

    def on_train_end(self, trainer, pl_module) -> None:
        self._sample()
        if pl_module.device.type == "cuda":
            self.gpu_mib = torch.cuda.max_memory_allocated(pl_module.device) / 2**20

    def _sample(self) -> None:
        self.rss_mib = max(self.rss_mib, resident_mib())


def resident_mib() -> float:
    """This process's resident memory now (Linux), else its lifetime peak."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB; bytes on macOS
        return peak / (2**20 if sys.platform == "darwin" else 2**10)


class GradientFlow(Callback):
    """Measure the vanishing (or exploding) gradient while training; on by config
    (``callbacks=diagnostics``), and nothing runs when it is not configured.

    Every ``every_n_steps`` steps one training step runs the encoder through the cell
    equations (``GradientProbe``: same weights and math, differentiable per step) and
    records ||dL/dh_t|| of the top layer by distance from each sequence's last token. Every
    step it takes the total gradient norm before clipping and whether clipping fired. One
    JSON line per recorded step goes to ``<run dir>/gradient_flow.jsonl``; the norms, the
    first/last ratio and the epoch's clipping fraction are logged as ``diagnostics/*``.
    """

    def __init__(self, every_n_steps: int = 50, filename: str = "gradient_flow.jsonl") -> None:
        if every_n_steps < 1:
            raise NlpseqError(f"every_n_steps must be >= 1; got {every_n_steps}")
        self.every_n_steps, self.filename = every_n_steps, filename
        self._probe: GradientProbe | None = None
        self._probe_step = 0
        self._norm = 0.0
        self._clipped = self._steps = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._clipped = self._steps = 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self._probe, self._probe_step = GradientProbe(), trainer.global_step
            pl_module.model.encoder.diagnostic_forward = self._probe.forward

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        norms = [torch.linalg.vector_norm(p.grad) for p in pl_module.parameters()
                 if p.grad is not None]
        self._norm = float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0
        limit = trainer.gradient_clip_val
        self._steps += 1
        self._clipped += int(bool(limit) and self._norm > limit)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self._probe is None:
            return
        pl_module.model.encoder.diagnostic_forward = None
        curve, self._probe = self._probe.curve().cpu(), None
        ratio = first_to_last_ratio(curve)
        pl_module.log_dict({"diagnostics/grad_norm": self._norm,
                            "diagnostics/grad_first_over_last": ratio})
        if trainer.is_global_zero:
            record = {"step": self._probe_step, "grad_norm_before_clip": self._norm,
                      "first_over_last": ratio, "norm_by_distance": curve.tolist()}
            with open(Path(trainer.default_root_dir) / self.filename, "a") as handle:
                handle.write(json.dumps(record) + "\n")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self._steps:
            pl_module.log("diagnostics/clip_fraction", self._clipped / self._steps)


class EpochSummary(Callback):
    """Log one line of metrics per validation epoch, readable without a progress bar.

    Runs at ``on_validation_end``: after the task's own epoch-end hook has logged the
    metrics it computes there (callbacks' epoch-end hooks run before the task's).
    """

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        shown = "  ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()))
        log.info("epoch %d step %d: %s", trainer.current_epoch, trainer.global_step, shown)


class TextSample(Callback):
    """Log a short generated text after every validation, so a user sees what a language
    model has learnt so far (tasks with a ``complete`` method only)."""

    def __init__(self, prompt: str = "", max_new_tokens: int = 200, temperature: float = 0.8,
                 top_k: int | None = None, top_p: float = 1.0, seed: int = 0) -> None:
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self.options = {"temperature": temperature, "top_k": top_k, "top_p": top_p, "seed": seed}

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not hasattr(pl_module, "complete"):
            return
        if not all(math.isfinite(float(value)) for key, value in trainer.callback_metrics.items()
                   if key.startswith("val/") and value.numel() == 1):
            log.warning("No sample at step %d: the validation metrics are not finite (training "
                        "diverged? lower optimizer.lr)", trainer.global_step)
            return
        was_training = pl_module.training
        text = pl_module.complete(self.prompt, self.max_new_tokens, stop_at_eos=False,
                                  **self.options)
        pl_module.train(was_training)
        backward = " (a backward model: it reads right to left)" if getattr(
            pl_module, "reverse", False) else ""
        log.info("sample at epoch %d step %d%s:\n%s%s", trainer.current_epoch,
                 trainer.global_step, backward, self.prompt, text)
