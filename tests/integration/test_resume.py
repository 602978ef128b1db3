"""Resuming: a training process killed with SIGKILL and resumed from checkpoints/last.ckpt
ends with the metrics of a run that never stopped; bad resumes are one-line errors."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.integration.conftest import TINY, error_line, run_cli

RUN = [*TINY, "trainer.max_epochs=6", "callbacks.early_stopping.patience=20", "data.batch_size=8",
       "task.embedding_dim=32", "encoder.hidden_size=32", "optimizer.lr=0.01"]
COMPARED = ("val/acc", "val/loss", "test/acc", "train/epochs", "train/best_step")


def test_a_run_killed_mid_training_resumes_to_the_same_metrics(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_cli("train", *RUN, f"hydra.run.dir={whole}").returncode == 0

    process = subprocess.Popen([sys.executable, "-m", "nlpseq.cli.train", *RUN,
                                f"hydra.run.dir={killed}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into the next epoch: the kill lands mid-epoch
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "metrics.json").exists()

    resumed = run_cli("train", *RUN, f"hydra.run.dir={killed}", "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stderr
    expected = json.loads((whole / "metrics.json").read_text())
    got = json.loads((killed / "metrics.json").read_text())
    for key in COMPARED:
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key


def test_bad_resumes_are_one_line_errors(tmp_path, trained_run):
    missing = run_cli("train", *TINY, f"hydra.run.dir={tmp_path}", "resume=true")
    assert missing.returncode == 2
    assert error_line(missing) == (f"error: resume=true but {tmp_path}/checkpoints/last.ckpt "
                                   "does not exist; set hydra.run.dir to the directory of the "
                                   "run to continue")
    other = run_cli("train", *TINY, "encoder.hidden_size=24", f"ckpt_path={trained_run}",
                    f"hydra.run.dir={tmp_path / 'new'}")
    assert other.returncode == 2
    line = error_line(other)
    assert "was trained with other settings" in line
    assert "encoder.hidden_size: 32 -> 24" in line
