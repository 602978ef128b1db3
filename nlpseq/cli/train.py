"""``nlpseq-train``: config -> tokenizer -> data -> model -> trainer -> metrics.json.

Reads top to bottom in the order objects are built. The best checkpoint is evaluated on
the validation and test splits at the end, and the run directory gets ``metrics.json``.
"""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import (
    EarlyStopping,
    LearningRateMonitor,
    ModelCheckpoint,
    ProgressBar,
)
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.utilities import rank_zero_only

from nlpseq.cli import entry
from nlpseq.cli.common import (
    class_of,
    run_command,
    write_atomic,
    write_hypotheses,
    write_metrics,
)
from nlpseq.cli.ddp import ddp_job, launch_ranks_in_this_job
from nlpseq.cli.rundir import refuse_finished_run
from nlpseq.cli.stopping import continue_command, stop_requests_to_lightning, training_stopped
from nlpseq.cli.sweep import in_multirun, run_sweep_job, sweep_objective
from nlpseq.config import TrainConfig, validate_config
from nlpseq.config.targets import run_targets
from nlpseq.data.sources import pin_relative_paths
from nlpseq.errors import NlpseqError
from nlpseq.tasks.callbacks import LastCheckpoint, PeakMemory, TrainingThroughput
from nlpseq.tasks.checkpoint import (
    build_task,
    check_generator_state,
    checkpoint_extras,
    read_checkpoint,
    task_from_checkpoint,
)
from nlpseq.tasks.transfer import (
    apply_pretrained_settings,
    command_line_keys,
    pretrained_tokenizers,
    read_pretrained,
)
from nlpseq.tokenization import tokenizer_from_state

log = logging.getLogger("nlpseq.train")


def train(cfg: DictConfig) -> dict:
    """Train one model as ``cfg`` says; return the final metrics."""
    check_task_and_data(cfg)
    validate_config(cfg, TrainConfig)
    check_validation_off(cfg)
    pin_relative_paths(cfg.data)  # the stored config reads these files from anywhere
    pretrained = start_from_pretrained(cfg)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    resume_from, resumed = checkpoint_to_resume(cfg, run_dir)
    if resume_from is None or resume_from.resolve().parents[1] != run_dir.resolve():
        # only a run resumed in place writes over checkpoints; the entry point checked this
        # before Hydra wrote .hydra/, where it could resolve the run directory's pattern
        refuse_finished_run(run_dir, "hydra.run.dir", resume_hint=True)
    pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)

    datamodule, tokenizer = prepare_data(cfg, resumed["tokenizer"] if resumed else None,
                                         pretrained_tokenizers(pretrained))
    if tokenizer is not None and rank_zero_only.rank == 0:  # DDP: ranks share rank 0's dir
        log.info("Tokenizer saved to %s", tokenizer.save(run_dir))

    log.info("Instantiating task <%s> with encoder cell '%s'", cfg.task._target_,
             cfg.encoder.cell)
    if resumed and list(datamodule.label_names or []) != resumed.get("label_names", []):
        raise NlpseqError(f"The training data's labels are {datamodule.label_names}; {resume_from} "
                          f"was trained with {resumed.get('label_names')}: resume with the "
                          "run's own data, or start a new run")
    task = build_task(cfg, tokenizer, datamodule.label_names)
    task.checkpoint_extras = checkpoint_extras(cfg, tokenizer, datamodule.label_names)
    if pretrained and resume_from is None:  # a resumed run restores all its own weights
        task.init_from_pretrained(pretrained)

    trainer, throughput, memory = build_trainer(cfg)
    if resume_from is not None:  # before a logger opens its folder (which empties it)
        keep_earlier_log_rows(trainer, resumed["global_step"])
    for logger in trainer.loggers:  # TensorBoard's HParams tab, the CSV logger's hparams.yaml
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
    if resume_from is not None:
        log.info("Resuming from %s (weights, optimizer, schedule, loops, generators)",
                 resume_from)
    fit(trainer, task, datamodule, resume_from, run_dir)
    if trainer.global_rank != 0:  # DDP: rank 0 evaluates and writes metrics.json
        return {}

    metrics = {
        "params": sum(p.numel() for p in task.model.parameters()),
        "train/epochs": trainer.current_epoch,
        "train/time_s": round(throughput.seconds, 3),
        # DDP: rank 0 counted its share; every rank trains on as many tokens at once
        "train/tokens_per_s": round(throughput.tokens_per_second * trainer.world_size, 1),
        **({"train/steady_tokens_per_s":  # the first batches' one-off set-up left out
            round(throughput.steady_tokens_per_second * trainer.world_size, 1)}
           if throughput.steady_tokens_per_second else {}),
        "train/peak_rss_mib": round(memory.rss_mib, 1),
        **({"train/peak_gpu_mib": round(memory.gpu_mib, 1)} if memory.gpu_mib else {}),
    }
    metrics.update({("init_from" if side == "encoder" else f"{side}_init_from"): str(run.path)
                    for side, run in pretrained.items()})
    best_path = best_checkpoint(trainer, resume_from)
    best = read_checkpoint(best_path, run_targets(cfg)) if best_path else None  # read once
    if best is not None:
        metrics.update(best_checkpoint_position(best, trainer))
    if cfg.test and not trainer.fast_dev_run:
        if best is None:
            log.warning("No best checkpoint was saved; skipping the final evaluation")
        else:
            log.info("Evaluating the best checkpoint %s", best_path)
            metrics.update(evaluate_best(task_from_checkpoint(best, best_path)[0],
                                         datamodule, run_dir))
    path = write_metrics(run_dir, metrics)
    log.info("Metrics written to %s", path)
    return metrics


def fit(trainer: pl.Trainer, task, datamodule, resume_from: Path | None, run_dir: Path) -> None:
    """``trainer.fit``; a run Lightning stopped at SIGTERM or Ctrl-C (it exits through
    ``SystemExit``, after ``LastCheckpoint`` saved the step it stopped at) ends with
    ``RunStopped``: where it stopped, what last.ckpt holds and how to continue."""
    try:
        with ddp_job(), stop_requests_to_lightning() as request:
            trainer.fit(task, datamodule=datamodule, ckpt_path=resume_from, weights_only=True)
    except SystemExit:
        if not trainer.interrupted:
            raise
        last = next((c for c in trainer.checkpoint_callbacks if isinstance(c, LastCheckpoint)),
                    None)
        raise training_stopped(
            trainer, request.ctrl_c or not trainer.received_sigterm,
            last.saved_at if last else None,
            Path(last.format_checkpoint_name({})) if last else None,
            continue_command("nlpseq-train", list(HydraConfig.get().overrides.task), run_dir),
        ) from None


def build_trainer(cfg: DictConfig) -> tuple[pl.Trainer, TrainingThroughput, PeakMemory]:
    """The Trainer with the configured loggers and callbacks (less those this run cannot
    use), plus the callbacks that measure throughput and memory for metrics.json."""
    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values() if c is not None]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c is not None]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not loggers:  # nothing to log learning rates to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if cfg.trainer.get("fast_dev_run"):  # a smoke test leaves no checkpoints behind
        callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
    if validation_off(cfg):
        callbacks = [c for c in callbacks if not watches_validation(c)]
        log.info("Validation is off (trainer.limit_val_batches=0): no early stopping, and "
                 "checkpoints/best.ckpt will be the final weights, as last.ckpt")
    callbacks.sort(key=lambda c: isinstance(c, LastCheckpoint))  # saves after the best one
    throughput, memory = TrainingThroughput(), PeakMemory()
    launch_ranks_in_this_job()
    log.info("Instantiating trainer <%s>", cfg.trainer._target_)
    trainer = instantiate(cfg.trainer, callbacks=[*callbacks, throughput, memory],
                          logger=loggers)
    return trainer, throughput, memory


def validation_off(cfg: DictConfig) -> bool:
    return cfg.trainer.get("limit_val_batches", 1.0) == 0


def watches_validation(callback) -> bool:
    """Early stopping, or a best checkpoint on a validation metric: nothing to watch when
    validation is off (``LastCheckpoint`` watches nothing and stays)."""
    return (isinstance(callback, (EarlyStopping, ModelCheckpoint))
            and str(getattr(callback, "monitor", None) or "").startswith("val/"))


def check_validation_off(cfg: DictConfig) -> None:
    """A learning-rate schedule driven by a validation metric needs validation."""
    monitor = str((cfg.get("scheduler") or {}).get("monitor") or "")
    if validation_off(cfg) and monitor.startswith("val/"):
        raise NlpseqError(f"scheduler watches {monitor}, but trainer.limit_val_batches=0 turns "
                          "validation off; pick another scheduler (e.g. scheduler=constant) "
                          "or turn validation on")


def best_checkpoint(trainer: pl.Trainer, resume_from: Path | None) -> str:
    """The best checkpoint's path. With no metric to pick a best by (validation off, or no
    best-checkpoint callback), best.ckpt is written as a copy of last.ckpt: the final
    weights."""
    callback = trainer.checkpoint_callback
    if not isinstance(callback, LastCheckpoint):
        best = callback.best_model_path if callback else ""
        here = Path(callback.dirpath or "") if callback else None
        if best and here and Path(best).resolve().parent != here.resolve():
            # a run continued in a new directory that validated nothing new: Lightning kept
            # the path stored in the checkpoint (another copy of the run, maybe); the best
            # is the continued run's own best.ckpt beside the checkpoint it continued
            in_a_run = resume_from is not None and resume_from.parent.name == "checkpoints"
            return own_copy(resume_from.with_name("best.ckpt") if in_a_run else Path(best),
                            here)
        return best
    if not callback.best_model_path:
        return ""
    best = copy_atomic(Path(callback.best_model_path), Path(callback.best_model_path)
                       .with_name("best.ckpt"))
    log.info("Nothing picks a best checkpoint (validation is off, or no callback watches a "
             "metric): %s is a copy of last.ckpt, the final weights", best)
    return str(best)


def start_from_pretrained(cfg: DictConfig) -> dict:
    """``encoder.init_from`` / ``task.decoder.init_from``: read the pretrained runs and
    take their cell, sizes and tokenizer into ``cfg`` (a command-line setting that differs
    is refused); the checks of the task run again on the completed config."""
    pretrained = read_pretrained(cfg, run_targets(cfg))
    if pretrained:
        task_class = class_of(cfg.task)
        apply_pretrained_settings(cfg, pretrained,
                                  command_line_keys(HydraConfig.get().overrides.task),
                                  one_tokenizer=getattr(task_class, "one_tokenizer", True))
        check_task_and_data(cfg)
    return pretrained


def check_task_and_data(cfg: DictConfig) -> None:
    """What the task refuses (a bidirectional language model) and data of another task
    (``data=sst2`` with ``task=generation``) fail before anything runs."""
    if cfg.get("task") is None:  # removed (~task): validation says so
        return
    task_class = class_of(cfg.task)
    if not hasattr(task_class, "check_config"):  # not an nlpseq task: validation says so
        return
    task_class.check_config(cfg)
    task_class.check_data_config(cfg.data, f"train task={task_class.task_name}")


def keep_earlier_log_rows(trainer: pl.Trainer, before_step: int) -> None:
    """A resumed run's metrics.csv goes on from the rows its first part logged up to the
    checkpoint: Lightning's CSVLogger deletes the file when it opens its folder, so those
    rows are read first and written back ahead of the new ones (as they were written)."""
    if rank_zero_only.rank != 0:  # DDP: rank 0 writes the logs
        return
    for logger in trainer.loggers:
        if not isinstance(logger, CSVLogger):
            continue
        path = Path(logger.log_dir) / "metrics.csv"
        if not path.is_file():
            continue
        with path.open(newline="", encoding="utf-8") as file:
            rows = [{key: value for key, value in row.items() if value != ""}
                    for row in csv.DictReader(file) if int(row["step"]) < before_step]
        logger.experiment.metrics[:0] = rows  # the logger's write buffer, flushed on save


def checkpoint_to_resume(cfg: DictConfig, run_dir: Path) -> tuple[Path | None, dict | None]:
    """``resume=true``: this run directory's ``checkpoints/last.ckpt``; ``ckpt_path=P``: the
    checkpoint P (a run directory means its last.ckpt). It must come from a run with the
    same task, encoder, tokenizer and data settings. Returns its path and its nlpseq
    section (config, tokenizer), or (None, None) for a fresh run."""
    if cfg.get("ckpt_path"):
        path = Path(cfg.ckpt_path).expanduser()
        if path.is_dir():
            path = path / "checkpoints" / "last.ckpt"
    elif cfg.get("resume"):
        path = run_dir / "checkpoints" / "last.ckpt"
        if not path.is_file():
            raise NlpseqError(f"resume=true but {path} does not exist; set hydra.run.dir to "
                              "the directory of the run to continue")
    else:
        return None, None
    checkpoint = read_checkpoint(path, run_targets(cfg))
    check_generator_state(checkpoint, path)
    saved = {**checkpoint["nlpseq"], "global_step": int(checkpoint.get("global_step", 0))}
    stored = copy.deepcopy(saved["config"])
    if isinstance(stored.get("data"), dict):  # paths stored relative (an earlier nlpseq): read
        pin_relative_paths(stored["data"])     # from here, as this run reads its own
    changed = changed_settings(stored, OmegaConf.to_container(cfg, resolve=True))
    if changed:
        raise NlpseqError(f"{path} was trained with other settings ({'; '.join(changed[:4])}); "
                          "resume with the run's own overrides")
    return path, saved


MODEL_AND_DATA = ("task", "encoder", "tokenizer", "data")  # what a resumed run must share
HOW_IT_RUNS = ("encoder.execution",)  # settings that change the speed, never the numbers


def changed_settings(saved: dict, current: dict, prefix: str = "") -> list[str]:
    """'key: saved -> current' for each setting of the model and its data that differs."""
    changes = []
    keys = sorted(saved.keys() | current.keys()) if prefix else MODEL_AND_DATA
    for key in keys:
        old, new = saved.get(key), current.get(key)
        name = f"{prefix}{key}"
        if isinstance(old, dict) and isinstance(new, dict):
            changes += changed_settings(old, new, f"{name}.")
        elif old != new and name not in HOW_IT_RUNS:
            changes.append(f"{name}: {old!r} -> {new!r}")
    return sorted(changes)


def prepare_data(cfg: DictConfig, tokenizer_state: dict | None = None,
                 pretrained: dict | None = None):
    """Load the raw splits, train the tokenizer on train (or rebuild a resumed checkpoint's
    from its ``tokenizer_state``, or take the ``pretrained`` runs' tokenizers, by side),
    encode every split. Generated probes need no tokenizer (None)."""
    log.info("Instantiating data <%s>", cfg.data._target_)
    datamodule = instantiate(cfg.data)
    datamodule.load()
    if not datamodule.uses_tokenizer:
        return datamodule, None
    if tokenizer_state is not None:
        tokenizer = tokenizer_from_state(tokenizer_state)
        log.info("Tokenizer %r taken from the checkpoint resumed", tokenizer)
        datamodule.encode(tokenizer)
        return datamodule, tokenizer
    if pretrained:
        tokenizer = class_of(cfg.task).pretrained_tokenizer(
            pretrained, instantiate(cfg.tokenizer), datamodule, cfg)
        log.info("Tokenizer %r taken from the pretrained run", tokenizer)
        datamodule.encode(tokenizer)
        return datamodule, tokenizer
    log.info("Training tokenizer <%s> on the training split", cfg.tokenizer._target_)
    started = time.perf_counter()
    tokenizer = class_of(cfg.task).train_tokenizer(instantiate(cfg.tokenizer), datamodule, cfg)
    log.info("Tokenizer %r trained in %.1fs", tokenizer, time.perf_counter() - started)
    datamodule.encode(tokenizer)
    return datamodule, tokenizer


def own_copy(best: Path | None, checkpoints: Path) -> str:
    """``checkpoints/best.ckpt`` as a copy of ``best`` (the run this one continued), so the
    run's record holds its best checkpoint; "" when there is none to copy."""
    if best is None or not best.is_file():
        return ""
    checkpoints.mkdir(parents=True, exist_ok=True)
    own = copy_atomic(best, checkpoints / "best.ckpt")
    log.info("No new best check in this run: checkpoints/best.ckpt is a copy of %s, the best "
             "of the run it continued", best)
    return str(own)


def copy_atomic(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` through a temporary file renamed over it: a stop midway
    leaves the old file or the new one, never half of one."""
    temporary = target.with_name(f".{target.name}.partial")
    shutil.copyfile(source, temporary)
    os.replace(temporary, target)
    return target


def best_checkpoint_position(best: dict, trainer: pl.Trainer) -> dict:
    """When the best checkpoint was written: its training step, and the epochs trained by
    then (fractional when validation runs several times an epoch)."""
    step = int(best.get("global_step", 0))
    position = {"train/best_step": step}
    per_epoch = trainer.num_training_batches
    if per_epoch and math.isfinite(per_epoch):
        position["train/best_epoch"] = round(step / per_epoch, 2)
    return position


def evaluate_best(task, datamodule, run_dir: Path) -> dict:
    """Evaluate the best checkpoint's task on validation and test."""
    reports = {"val": task.evaluate(datamodule.split_loader("validation"), "val")}
    if datamodule.test_is_validation:
        log.info("test/* metrics are on the validation split (the dataset has no test split)")
        reports["test"] = {key.replace("val/", "test/", 1): value
                           for key, value in reports["val"].items()}
    else:
        reports["test"] = task.evaluate(datamodule.split_loader("test"), "test")
    metrics = {}
    for prefix, report in reports.items():
        write_hypotheses(run_dir, report, prefix)
        task.print_report(report, prefix)
        metrics.update(report)
    write_atomic(run_dir / "eval_report.json", json.dumps(reports, indent=2) + "\n")
    return metrics


def run(cfg: DictConfig) -> float | None:
    """What ``nlpseq-train`` runs on the composed config (``nlpseq.cli.entry``); a sweep job
    returns its objective."""
    if in_multirun():  # a failed job is recorded in its run directory; the sweep goes on
        return sweep_objective(run_sweep_job(train, cfg), cfg.task.get("monitor"))
    return sweep_objective(run_command(train, cfg), cfg.task.get("monitor"))


def main() -> None:
    entry.train()


if __name__ == "__main__":
    main()
