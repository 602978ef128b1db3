"""``nlpseq-eval ckpt_path=PATH``: metrics of a saved checkpoint on any data.

The checkpoint carries its config, tokenizer and label names; with no ``data=`` the data
it was trained on is used, ``data=files data.test_file=F`` evaluates on another file.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig

from nlpseq.cli.common import CONFIG_DIR, check_overrides, pick_device, run_command, write_metrics
from nlpseq.cli.report import print_classification_report
from nlpseq.config import EvalConfig, validate_config
from nlpseq.tasks.checkpoint import load_task

log = logging.getLogger("nlpseq.eval")


def evaluate(cfg: DictConfig) -> dict:
    validate_config(cfg, EvalConfig)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    task, tokenizer, train_cfg = load_task(cfg.ckpt_path, expected_task="sentiment")
    task.to(pick_device(cfg.accelerator))

    data_cfg = cfg.data if cfg.get("data") else train_cfg.data
    log.info("Instantiating data <%s> (%s split)", data_cfg._target_, cfg.split)
    datamodule = instantiate(data_cfg, label_names=task.label_names, seed=cfg.seed,
                             eval_batch_size=cfg.batch_size)
    datamodule.load_for_evaluation(cfg.split)
    datamodule.encode(tokenizer, splits=(cfg.split,))

    prefix = {"validation": "val"}.get(cfg.split, cfg.split)
    report = task.evaluate(datamodule.split_loader(cfg.split), prefix)
    print_classification_report(report, prefix, task.label_names)
    report["ckpt_path"] = str(cfg.ckpt_path)
    write_metrics(run_dir, report)
    (run_dir / "eval_report.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("Metrics written to %s", run_dir / "metrics.json")
    return report


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    run_command(evaluate, cfg)


def main() -> None:
    """Console entry point: one-line errors for bad overrides, then Hydra."""
    check_overrides("eval", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
