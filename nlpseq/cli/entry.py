"""The console commands (``nlpseq-train``, ``nlpseq-eval``, ``nlpseq-predict``,
``nlpseq-inspect``, ``nlpseq-export``, ``nlpseq-serve``), light on purpose: torch,
Lightning and ``datasets`` take seconds to import, so the command's own module
(``nlpseq.cli.train``, ...) is imported only once Hydra hands over a config to work on.
``--help``, ``--cfg job`` and a bad override answer without them (each config names its
job, ``hydra.job.name``, for the log file's name)."""

from __future__ import annotations

import importlib
from collections.abc import Callable

import hydra
from omegaconf import DictConfig

from nlpseq.cli.common import CONFIG_DIR, run_entry_point
from nlpseq.cli.sweep import exit_if_jobs_failed


def command(config_name: str, module: str, lock: bool = True) -> Callable[[], None]:
    """The console entry point that runs ``nlpseq.cli.<module>.run`` on ``conf/<config_name>``
    (``run_entry_point``: one-line errors, the run directory checked and locked)."""

    @hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name=config_name)
    def hydra_main(cfg: DictConfig):
        return importlib.import_module(f"nlpseq.cli.{module}").run(cfg)

    def main() -> None:
        run_entry_point(config_name, hydra_main, job_name=module, lock=lock)
        exit_if_jobs_failed()  # a sweep with failed jobs exits 1 after all have run

    return main


train = command("train", "train")
evaluate = command("eval", "evaluate")
predict = command("predict", "predict", lock=False)
inspect = command("inspect", "inspect_cells")
export = command("export", "export", lock=False)
serve = command("serve", "serve", lock=False)
