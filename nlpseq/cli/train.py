"""``nlpseq-train``: config -> tokenizer -> data -> model -> trainer -> metrics.json.

Reads top to bottom in the order objects are built. The best checkpoint is evaluated on
the validation and test splits at the end, and the run directory gets ``metrics.json``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint, ProgressBar

from nlpseq.cli.common import (
    CONFIG_DIR,
    check_data_fits_task,
    check_overrides,
    class_of,
    run_command,
    write_hypotheses,
    write_metrics,
)
from nlpseq.cli.report import print_report
from nlpseq.config import TrainConfig, validate_config
from nlpseq.errors import NlpseqError
from nlpseq.tasks.callbacks import ThroughputMonitor
from nlpseq.tasks.checkpoint import build_task, checkpoint_extras, load_task
from nlpseq.tokenization import train_tokenizer_pair

log = logging.getLogger("nlpseq.train")


def train(cfg: DictConfig) -> dict:
    """Train one model as ``cfg`` says; return the final metrics."""
    check_task_and_data(cfg)
    validate_config(cfg, TrainConfig)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    refuse_to_overwrite(run_dir)
    pl.seed_everything(cfg.seed, workers=True)
    torch.set_float32_matmul_precision(cfg.float32_matmul_precision)

    datamodule, tokenizer = prepare_data(cfg)
    log.info("Tokenizer saved to %s", tokenizer.save(run_dir))

    log.info("Instantiating task <%s> with encoder cell '%s'", cfg.task._target_,
             cfg.encoder.cell)
    task = build_task(cfg, tokenizer, datamodule.label_names)
    task.checkpoint_extras = checkpoint_extras(cfg, tokenizer, datamodule.label_names)

    loggers = [instantiate(c) for c in (cfg.get("logger") or {}).values()]
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values()]
    if not cfg.trainer.get("enable_progress_bar", True):
        callbacks = [c for c in callbacks if not isinstance(c, ProgressBar)]
    if not loggers:  # nothing to log learning rates to
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    if cfg.trainer.get("fast_dev_run"):  # a smoke test leaves no checkpoints behind
        callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
    throughput = ThroughputMonitor()
    log.info("Instantiating trainer <%s>", cfg.trainer._target_)
    trainer = instantiate(cfg.trainer, callbacks=[*callbacks, throughput], logger=loggers)
    trainer.fit(task, datamodule=datamodule)
    if trainer.interrupted:
        raise NlpseqError("Training was interrupted; checkpoints written so far are kept")

    metrics = {
        "params": sum(p.numel() for p in task.model.parameters()),
        "train/epochs": trainer.current_epoch,
        "train/time_s": round(throughput.seconds, 3),
        "train/tokens_per_s": round(throughput.tokens_per_second, 1),
    }
    if cfg.test and not trainer.fast_dev_run:
        metrics.update(evaluate_best(trainer, datamodule, run_dir))
    path = write_metrics(run_dir, metrics)
    log.info("Metrics written to %s", path)
    return metrics


def check_task_and_data(cfg: DictConfig) -> None:
    """What the task refuses (a bidirectional language model) and data of another task
    (``data=sst2`` with ``task=generation``) fail before anything runs."""
    task_class = class_of(cfg.task)
    if not hasattr(task_class, "check_config"):  # not an nlpseq task: validation says so
        return
    task_class.check_config(cfg)
    check_data_fits_task(cfg.data, task_class.task_name, f"train task={task_class.task_name}")


def prepare_data(cfg: DictConfig):
    """Load the raw splits, train the tokenizer on train, encode every split."""
    log.info("Instantiating data <%s>", cfg.data._target_)
    datamodule = instantiate(cfg.data)
    datamodule.load()
    log.info("Training tokenizer <%s> on the training split", cfg.tokenizer._target_)
    started = time.perf_counter()
    factory = instantiate(cfg.tokenizer)
    if datamodule.task_name == "translation":  # a tokenizer per language, or one joint
        tokenizer = train_tokenizer_pair(factory, datamodule.train_texts("source"),
                                         datamodule.train_texts("target"),
                                         joint=cfg.task.get("joint_vocabulary", False))
    else:
        tokenizer = factory(datamodule.train_texts())
    log.info("Tokenizer %r trained in %.1fs", tokenizer, time.perf_counter() - started)
    datamodule.encode(tokenizer)
    return datamodule, tokenizer


def refuse_to_overwrite(run_dir: Path) -> None:
    """A run never replaces checkpoints of an earlier run in the same directory."""
    existing = sorted((run_dir / "checkpoints").glob("*.ckpt"))
    if existing:
        raise NlpseqError(
            f"{run_dir} already holds checkpoints ({', '.join(p.name for p in existing)}); "
            f"pick another hydra.run.dir or remove them first"
        )


def evaluate_best(trainer: pl.Trainer, datamodule, run_dir: Path) -> dict:
    """Reload the best checkpoint from disk and evaluate it on validation and test."""
    checkpoint = trainer.checkpoint_callback
    if checkpoint is None or not checkpoint.best_model_path:
        log.warning("No best checkpoint was saved; skipping the final evaluation")
        return {}
    log.info("Evaluating the best checkpoint %s", checkpoint.best_model_path)
    task, _, _ = load_task(checkpoint.best_model_path)
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
        print_report(task, report, prefix)
        metrics.update(report)
    (run_dir / "eval_report.json").write_text(json.dumps(reports, indent=2) + "\n")
    return metrics


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def hydra_main(cfg: DictConfig) -> float | None:
    metrics = run_command(train, cfg)
    monitor = cfg.task.get("monitor")
    return metrics.get(monitor) if isinstance(metrics, dict) and monitor else None


def main() -> None:
    """Console entry point: one-line errors for bad overrides, then Hydra."""
    check_overrides("train", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
