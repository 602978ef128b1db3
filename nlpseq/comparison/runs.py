"""Find training runs under a path and read what a comparison needs from each.

A run directory is one with ``.hydra/config.yaml`` (``nlpseq-train`` writes it first). Its
``metrics.json`` makes it finished; ``status.json`` (written for sweep jobs) says why one
failed; a run with neither is unfinished (killed, or still running).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from nlpseq.errors import NlpseqError, first_line

STATUS_FILE = "status.json"  # written by nlpseq.cli.sweep for every job of a sweep


@dataclass
class Run:
    """One training run: its config, the overrides it was started with, its metrics."""

    path: Path
    config: DictConfig
    overrides: dict[str, str]
    metrics: dict | None
    status: str  # finished | failed | unfinished
    error: str = ""
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, monitored metric)

    @property
    def task(self) -> str:
        target = str(self.config.task.get("_target_", "?"))
        return target.rsplit(".", 1)[-1].removesuffix("Task").lower()

    @property
    def cell(self) -> str:
        return str(self.config.encoder.get("cell", "?"))

    @property
    def monitor(self) -> str:
        return str(self.config.task.get("monitor", ""))

    @property
    def higher_is_better(self) -> bool:
        return self.config.task.get("monitor_mode", "max") == "max"


def find_run_dirs(path: Path) -> list[Path]:
    """``path`` itself when it is a run directory, else every run directory below it."""
    if not path.exists():
        raise NlpseqError(f"{path} does not exist")
    if (path / ".hydra" / "config.yaml").is_file():
        if not is_training_run(path):
            raise NlpseqError(f"{path} is not a training run (an nlpseq-eval or nlpseq-predict "
                              "directory?): give a training run or a multirun directory")
        return [path]
    found = sorted((p.parent.parent for p in path.rglob(".hydra/config.yaml")
                    if is_training_run(p.parent.parent)), key=natural_key)
    if not found:
        raise NlpseqError(f"no training runs under {path}: no directory there holds "
                          ".hydra/config.yaml (give a run directory or a multirun directory)")
    return found


def is_training_run(path: Path) -> bool:
    """nlpseq-eval and nlpseq-predict write .hydra/ too; a training run's config has a task
    and an encoder."""
    config = _read_yaml(path / ".hydra" / "config.yaml")
    return "task" in config and "encoder" in config


def load_run(path: Path) -> Run:
    config = _read_yaml(path / ".hydra" / "config.yaml")
    overrides_file = path / ".hydra" / "overrides.yaml"
    overrides = {}
    if overrides_file.is_file():
        for item in OmegaConf.to_container(_read_yaml(overrides_file)):
            key, _, value = str(item).partition("=")
            overrides[key.lstrip("+~")] = value
    metrics = _read_json(path / "metrics.json")
    status = _read_json(path / STATUS_FILE) or {}
    if metrics is not None:
        state = "finished"
    else:
        state = "failed" if status.get("status") == "failed" else "unfinished"
    run = Run(path, config, overrides, metrics, state, status.get("error", ""))
    run.curve = read_curve(path / "csv" / "metrics.csv", run.monitor)
    return run


def read_curve(path: Path, metric: str) -> list[tuple[int, float]]:
    """The monitored validation metric at each validation, against the training step, from
    the CSV logger's metrics.csv."""
    if not path.is_file() or not metric:
        return []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [(int(row["step"]), float(row[metric])) for row in csv.DictReader(handle)
                    if row.get(metric)]
    except (ValueError, KeyError, TypeError) as err:  # UnicodeDecodeError is a ValueError
        raise NlpseqError(f"{path} is not a readable metrics log: {first_line(err)}") from None


def _read_json(path: Path) -> dict | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError
        raise NlpseqError(f"{path} is not valid JSON: {first_line(err)}") from None


def _read_yaml(path: Path):
    """A run's .hydra/ file; a damaged one (or a YAML tag, which is never constructed) is
    one line naming it."""
    try:
        return OmegaConf.load(path)
    except (yaml.YAMLError, ValueError, OmegaConfBaseException) as err:
        raise NlpseqError(f"{path} is not a readable run config: {first_line(err)}") from None


def natural_key(path: Path) -> list:
    """Sort multirun job folders 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return [int(part) if part.isdigit() else part for part in path.parts]
