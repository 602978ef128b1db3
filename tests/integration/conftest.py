"""Helpers for integration tests: compose the real configs, run the real commands."""

import atexit
import contextlib
import json
import os
import select
import signal
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


COMMAND_TIMEOUT_S = 600


def run_cli(command: str, *args: str, stdin: str | None = None, cwd=None, env=None):
    """Run ``nlpseq.cli.<command>`` with ``args`` as its own process; return the
    CompletedProcess. Forked from the fork server (``cli_forks.py``) that imported the CLI
    once; with ``cwd`` or ``env`` (variables to add) a fresh ``python -m`` process."""
    if cwd is not None or env is not None:
        return subprocess.run(
            [sys.executable, "-m", f"nlpseq.cli.{command}", *args],
            input=stdin, capture_output=True, text=True, cwd=cwd, timeout=COMMAND_TIMEOUT_S,
            env={**os.environ, **env} if env else None,
        )
    return CLI_FORKS.run([command, *args], stdin)


def run_cli_cases(cases: list[tuple[str, ...]], *common: str):
    """Run each ``(command, *args)`` plus ``common`` as its own process, in order (a case
    may read what an earlier one wrote). One CompletedProcess per case."""
    return [run_cli(*case, *common) for case in cases]


class ForkServer:
    """One ``cli_forks.py`` process per test worker, started on first use: every command
    after it skips the ~8 s of imports."""

    def __init__(self):
        self.process = None

    def run(self, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
        if self.process is None or self.process.poll() is not None:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).with_name("cli_forks.py"))],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                start_new_session=True)  # its own process group: close() stops its forks too
        self.process.stdin.write(json.dumps({"argv": argv, "stdin": stdin}) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], COMMAND_TIMEOUT_S)
        if not ready:
            self.close()
            raise subprocess.TimeoutExpired(argv, COMMAND_TIMEOUT_S)
        answer = self.process.stdout.readline()
        if not answer:
            self.close()
            raise RuntimeError(f"the CLI fork server stopped while running {argv}")
        return subprocess.CompletedProcess(argv, **json.loads(answer))

    def close(self):
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # the group may be gone
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            self.process = None


CLI_FORKS = ForkServer()
atexit.register(CLI_FORKS.close)


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
