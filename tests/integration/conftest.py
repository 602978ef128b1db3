"""Helpers for integration tests: compose the real configs, run the real commands."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from nlpseq.cli.common import CONFIG_DIR

# Small and fast, but the same code path as a real run.
TINY = [
    "task.embedding_dim=16",
    "encoder.hidden_size=16",
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "logger=none",
]


def compose_config(config_name: str, overrides: list[str], run_dir: Path):
    """Compose ``conf/<config_name>.yaml`` as the CLI would, with its run dir at run_dir."""
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.num = 0
    HydraConfig.instance().set_config(cfg)
    return cfg


def run_cli(command: str, *args: str, stdin: str | None = None, cwd=None, env=None):
    """Run ``python -m nlpseq.cli.<command> args...`` (``env``: variables to add); return
    the CompletedProcess."""
    return subprocess.run(
        [sys.executable, "-m", f"nlpseq.cli.{command}", *args],
        input=stdin, capture_output=True, text=True, cwd=cwd, timeout=600,
        env={**os.environ, **env} if env else None,
    )


def run_cli_cases(cases: list[tuple[str, ...]], *common: str):
    """Run each ``(command, *args)`` plus ``common`` as its own process, forked from one
    that imported the CLI once (``cli_forks.py``): the same argv, output and exit status
    as ``run_cli``, without ~8 s of imports per command. One CompletedProcess per case."""
    argvs = [[*case, *common] for case in cases]
    forks = subprocess.run([sys.executable, str(Path(__file__).with_name("cli_forks.py"))],
                           input=json.dumps(argvs), capture_output=True, text=True, timeout=600)
    assert forks.returncode == 0, forks.stderr[-3000:]
    return [subprocess.CompletedProcess(argv, **result)
            for argv, result in zip(argvs, json.loads(forks.stdout), strict=True)]


def error_line(result) -> str:
    """The single ``error: ...`` line a failed command must print."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One tiny sentiment run through the real ``nlpseq-train`` command (shared)."""
    run_dir = tmp_path_factory.mktemp("trained") / "run"
    result = run_cli("train", *TINY, "task.embedding_dim=32", "encoder.hidden_size=32",
                     "optimizer.lr=0.01", "trainer.max_epochs=12",
                     "callbacks.early_stopping.patience=20", "logger=csv",
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir
