"""``nlpseq-eval ckpt_path=PATH``: metrics of a saved checkpoint on any data.

The checkpoint carries its config, tokenizer and label names; with no ``data=`` the data
it was trained on is used, ``data=files data.test_file=F`` evaluates on another file (read
the way the checkpoint's data was: its stored data config with the files changed).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from nlpseq.cli import entry
from nlpseq.cli.common import (
    pick_device,
    run_command,
    write_atomic,
    write_hypotheses,
    write_metrics,
)
from nlpseq.comparison.runs import natural_key
from nlpseq.comparison.summary import markdown_table, write_csv
from nlpseq.config import EvalConfig, validate_config
from nlpseq.config.targets import allowed_targets
from nlpseq.errors import NlpseqError
from nlpseq.tasks import tasks_reading
from nlpseq.tasks.checkpoint import load_task, read_checkpoint

log = logging.getLogger("nlpseq.eval")


def evaluate(cfg: DictConfig) -> dict:
    """Evaluate one checkpoint, or every run's best checkpoint under a (multirun) directory
    on the same data, with one table of them all."""
    if cfg.get("data") is not None and "seed" in cfg.data:
        with open_dict(cfg):  # a data= file's ${seed}: the held-out rows are the run's own
            if OmegaConf.is_interpolation(cfg.data, "seed"):  # unless seed= says otherwise
                cfg.data.pop("seed")
            elif cfg.seed is None:  # data.seed=N given on the command line: seed=N
                cfg.seed = cfg.data.seed
    validate_config(cfg, EvalConfig)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    root = Path(cfg.ckpt_path).expanduser()
    checkpoints = checkpoints_under(root)
    if len(checkpoints) == 1:
        return evaluate_checkpoint(cfg, checkpoints[0], run_dir)
    for checkpoint in checkpoints:  # any refusal comes before the first evaluation
        read_checkpoint(checkpoint, allowed_targets(cfg))
    log.info("Evaluating the best checkpoints of %d runs under %s", len(checkpoints), root)
    reports = {}
    for checkpoint in checkpoints:
        relative = checkpoint.parent.parent.relative_to(root)  # nested as the runs are
        reports[relative.as_posix()] = evaluate_checkpoint(cfg, checkpoint, run_dir / relative)
    table = write_table(run_dir, reports)
    print(table)
    log.info("One table of %d runs written to %s", len(reports), run_dir / "eval_table.md")
    return reports


def checkpoints_under(path: Path) -> list[Path]:
    """A checkpoint file or a run directory gives itself; any other directory gives the
    best checkpoint of every run below it (a multirun directory)."""
    if not path.is_dir() or (path / "checkpoints" / "best.ckpt").is_file():
        return [path]
    found = sorted(path.rglob("checkpoints/best.ckpt"), key=natural_key)
    if not found:
        raise NlpseqError(f"'{path}' holds no checkpoints/best.ckpt, neither as a run "
                          "directory nor in run directories below it")
    return found


def evaluate_checkpoint(cfg: DictConfig, checkpoint: Path, run_dir: Path) -> dict:
    """Metrics of one checkpoint, written to ``run_dir`` (metrics.json, eval_report.json)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    task, tokenizer, train_cfg = load_task(checkpoint, trusted=allowed_targets(cfg))
    task.to(pick_device(cfg.accelerator))

    options = evaluation_options(cfg, task)
    data_cfg = evaluation_data_config(cfg, train_cfg, type(task))
    task.check_data(data_cfg)
    log.info("Instantiating data <%s> (%s split)", data_cfg._target_, cfg.split)
    if cfg.batch_size is not None:
        data_cfg[get_class(data_cfg._target_).eval_batch_key(data_cfg)] = cfg.batch_size
    label_names = getattr(task, "label_names", None)
    datamodule = instantiate(data_cfg, **({} if label_names is None else
                                          {"label_names": label_names}))
    datamodule.load_for_evaluation(cfg.split)
    datamodule.encode(tokenizer, splits=(cfg.split,))

    prefix = {"validation": "val"}.get(cfg.split, cfg.split)
    report = task.evaluate(datamodule.split_loader(cfg.split), prefix, **options)
    write_hypotheses(run_dir, report, prefix)
    task.print_report(report, prefix)
    report["ckpt_path"] = str(checkpoint)
    report["task"], report["cell"] = task.task_name, train_cfg.encoder.cell
    report["params"] = sum(p.numel() for p in task.model.parameters())
    write_metrics(run_dir, report)
    write_atomic(run_dir / "eval_report.json", json.dumps(report, indent=2) + "\n")
    log.info("Metrics written to %s", run_dir / "metrics.json")
    return report


def write_table(run_dir: Path, reports: dict[str, dict]) -> str:
    """One row per run: its task, cell, parameters and scalar metrics, as
    ``eval_table.csv`` and ``eval_table.md``; returns the Markdown."""
    rows = [{"run": name} | {key: value for key, value in report.items()
                             if isinstance(value, (int, float, str)) and key != "ckpt_path"
                             and not key.endswith("signature")}
            for name, report in reports.items()]
    write_csv(run_dir / "eval_table.csv", rows)
    table = markdown_table([{k: row.get(k) for k in dict.fromkeys(c for r in rows for c in r)}
                            for row in rows])
    write_atomic(run_dir / "eval_table.md", table)
    return table


COMMAND_KEYS = ("ckpt_path", "data", "split", "batch_size", "accelerator", "seed",
                "allowed_targets")
EVAL_OPTIONS = [option.name for option in dataclasses.fields(EvalConfig)
                if option.name not in COMMAND_KEYS]  # read by the task (``eval_options``)


def evaluation_options(cfg: DictConfig, task) -> dict:
    """The options of conf/eval.yaml given (not null), checked by the task; one the task
    does not read fails naming the tasks that do."""
    given = {key: cfg[key] for key in EVAL_OPTIONS if cfg.get(key) is not None}
    for option in given:
        if option not in inspect.signature(task.eval_options).parameters:
            raise NlpseqError(f"{option} applies to {' or '.join(tasks_reading(option))} "
                              f"checkpoints; '{cfg.ckpt_path}' is a {task.task_name} one")
    task.eval_options(**given)  # refuses a bad value before any data is read
    return given


def evaluation_data_config(cfg: DictConfig, train_cfg: DictConfig, task_class):
    """The checkpoint's own data config, as stored, with what ``data=`` sets over it: a
    dataset's or file's keys change, the way the model was trained to read data stays.
    A ``data=`` that names a dataset (files, sample, sst2, ...) and no ``data.path``
    replaces a stored ``data=hub`` dataset."""
    data = OmegaConf.merge(train_cfg.data, cfg.data) if cfg.get("data") else train_cfg.data.copy()
    if cfg.get("data") and "name" in cfg.data and "path" not in cfg.data and "path" in data:
        data.path = None  # a stored data=hub path belongs to the dataset data= replaces
    run_seed = OmegaConf.select(train_cfg, "data.seed", default=None,  # the rows it held out
                                throw_on_resolution_failure=False)
    if run_seed is None:
        run_seed = OmegaConf.select(train_cfg, "seed", default=0)
    data.seed = run_seed if cfg.seed is None else cfg.seed
    task_class.check_data_config(data, f"evaluate a {task_class.task_name} checkpoint")
    validate_config(OmegaConf.create({"data": data}))
    return data


def run(cfg: DictConfig) -> None:
    """What ``nlpseq-eval`` runs on the composed config (``nlpseq.cli.entry``)."""
    run_command(evaluate, cfg)


def main() -> None:
    entry.evaluate()


if __name__ == "__main__":
    main()
