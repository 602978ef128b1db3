"""Multirun (``nlpseq-train -m ...``): a failed job is recorded and the sweep goes on.

Hydra's basic sweeper re-raises the first failed job's exception and stops the sweep.
``run_sweep_job`` runs one job so that its failure is logged and written to the job's run
directory as ``status.json`` (``{"status": "failed", "error": ...}``, with the traceback of
a crash; finished jobs get ``"finished"``), and the job returns normally: the console shows
one line per failed job. ``SweepSummary`` (a Hydra callback, set in
``conf/train.yaml``) counts the jobs when the sweep ends, in the launching process, and
``failed_jobs`` lets the entry point exit non-zero when any failed. ``StudyFolder`` makes the
folder of an Optuna study's file before the sweeper opens it.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from nlpseq.cli.common import describe_failure, flush_denormals, user_error
from nlpseq.comparison.runs import STATUS_FILE

log = logging.getLogger("nlpseq.sweep")
_failed: list[str] = []  # "job N: error" of the last sweep, filled by SweepSummary


def in_multirun() -> bool:
    return HydraConfig.get().mode == RunMode.MULTIRUN


def run_sweep_job(command: Callable[[DictConfig], dict], cfg: DictConfig) -> dict | None:
    """Run one job of a sweep; a failure is logged and written to ``status.json``, not raised
    (Ctrl-C still stops the whole sweep)."""
    flush_denormals()
    hydra_cfg = HydraConfig.get()
    share_cores_with_parallel_jobs(hydra_cfg.launcher)
    run_dir = Path(hydra_cfg.runtime.output_dir)
    overrides = list(hydra_cfg.overrides.task)
    try:
        result = command(cfg)
    except Exception as err:  # noqa: BLE001 - every failure is the job's, not the sweep's
        message = describe_failure(err)
        crash = "" if user_error(err) is not None else traceback.format_exc()
        log.error("job %s (%s) failed: %s%s", hydra_cfg.job.num, " ".join(overrides), message,
                  f" (traceback in {run_dir / STATUS_FILE})" if crash else "")
        write_status(run_dir, "failed", overrides, message, crash)
        return None
    write_status(run_dir, "finished", overrides)
    return result


def share_cores_with_parallel_jobs(launcher: DictConfig) -> None:
    """The joblib launcher runs jobs side by side, and torch gives each a thread per core:
    on a CPU their OpenMP threads then wait on each other (two small trainings side by side
    ran 10x slower than one alone, 2 cores). Each job takes its share of the cores instead
    (a lower OMP_NUM_THREADS wins)."""
    if "joblib" not in str(launcher.get("_target_", "")):
        return
    import torch  # here: the entry point answers --help without torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    threads = min(torch.get_num_threads(), threads_per_job(launcher.get("n_jobs"), cores or 1))
    torch.set_num_threads(threads)
    log.info("%d torch thread(s) for this job: joblib n_jobs=%s on %d cores",
             threads, launcher.get("n_jobs"), cores)


def threads_per_job(n_jobs: int | None, cores: int) -> int:
    """Threads a job may use when ``n_jobs`` jobs (joblib's meaning: -1 a job per core, -2
    one fewer, None one) share ``cores``."""
    jobs = 1 if n_jobs is None else (cores + 1 + n_jobs if n_jobs < 0 else n_jobs)
    return max(1, cores // min(max(jobs, 1), cores))


def write_status(run_dir: Path, status: str, overrides: list[str], error: str = "",
                 trace: str = "") -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    record = ({"status": status, "overrides": overrides} | ({"error": error} if error else {})
              | ({"traceback": trace} if trace else {}))
    (run_dir / STATUS_FILE).write_text(json.dumps(record, indent=2) + "\n")


def sweep_objective(metrics: dict | None, monitor: str | None) -> float | None:
    """What a job returns to the sweeper (Optuna's objective): the monitored metric, or
    None for a failed job — hydra-optuna-sweeper then records the trial as failed and, with
    ``max_failure_rate: 1.0`` (conf/hparams_search), goes on. (A NaN would make optuna 2.x
    refuse the failed trial's values and stop the study.)"""
    value = (metrics or {}).get(monitor) if monitor else None
    return float(value) if value is not None else None


class StudyFolder(Callback):
    """Make the folder of an Optuna study's SQLite file (``hydra.sweeper.storage``, in the
    sweep directory) before the sweeper opens it: SQLite does not create folders."""

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        storage = str(OmegaConf.select(config, "hydra.sweeper.storage", default="") or "")
        if storage.startswith("sqlite:///"):
            Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


class SweepSummary(Callback):
    """Log how many jobs of a sweep finished and which failed, when the sweep ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        statuses = {path.parent.relative_to(sweep_dir): json.loads(path.read_text())
                    for path in sorted(sweep_dir.rglob(STATUS_FILE))}
        _failed.clear()
        _failed.extend(f"{run_dir}: {status.get('error', '')}"
                       for run_dir, status in statuses.items() if status["status"] == "failed")
        log.info("Sweep %s: %d jobs finished, %d failed", sweep_dir,
                 len(statuses) - len(_failed), len(_failed))
        for line in _failed:
            log.error("failed job %s", line)


def failed_jobs() -> list[str]:
    """The failed jobs of the sweep that just ended in this process."""
    return list(_failed)


def exit_if_jobs_failed() -> None:
    """After a sweep with failed jobs: one line naming them, and exit status 1."""
    failed = failed_jobs()
    if failed:
        print(f"error: {len(failed)} job(s) of the sweep failed (status.json in each run "
              f"directory): {'; '.join(failed)}", file=sys.stderr)
        sys.exit(1)
