"""Resuming: a training process killed with SIGKILL, or stopped by SIGTERM (as a scheduler
stops a job), and resumed from checkpoints/last.ckpt ends with the metrics of a run that
never stopped; a stop says how to resume in one line; bad resumes are one-line errors."""

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


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """The metrics of the run that never stopped."""
    whole = tmp_path_factory.mktemp("whole") / "run"
    assert run_cli("train", *RUN, f"hydra.run.dir={whole}").returncode == 0
    return json.loads((whole / "metrics.json").read_text())


def stop_mid_training(run_dir, sig: signal.Signals) -> subprocess.CompletedProcess:
    """Start a training run and send it ``sig`` in the epoch after its first last.ckpt."""
    process = subprocess.Popen([sys.executable, "-m", "nlpseq.cli.train", *RUN,
                                f"hydra.run.dir={run_dir}"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,  # Ctrl-C as in a terminal:
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # into the next epoch: the signal lands mid-epoch
    process.send_signal(sig)
    _, stderr = process.communicate()
    return subprocess.CompletedProcess(process.args, process.returncode, "", stderr)


def assert_resumes_to(run_dir, expected: dict) -> None:
    resumed = run_cli("train", *RUN, f"hydra.run.dir={run_dir}", "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stderr
    got = json.loads((run_dir / "metrics.json").read_text())
    for key in COMPARED:
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key


def test_a_run_killed_mid_training_resumes_to_the_same_metrics(tmp_path, whole_run):
    killed = tmp_path / "killed"
    stopped = stop_mid_training(killed, signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "metrics.json").exists()
    assert_resumes_to(killed, whole_run)


def test_a_run_stopped_by_sigterm_says_how_to_resume_and_resumes_exactly(tmp_path, whole_run):
    stopped_dir = tmp_path / "stopped"
    stopped = stop_mid_training(stopped_dir, signal.SIGTERM)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    line = error_line(stopped)
    assert line.startswith("error: training stopped by SIGTERM at epoch ")
    last = stopped_dir / "checkpoints" / "last.ckpt"
    assert f"; {last} holds the last validation (epoch " in line
    assert line.endswith(f"; continue with: nlpseq-train {' '.join(RUN)} "
                         f"hydra.run.dir={stopped_dir} resume=true")
    assert "Traceback" not in stopped.stderr
    assert not (stopped_dir / "metrics.json").exists()
    assert_resumes_to(stopped_dir, whole_run)


def test_ctrl_c_is_one_line_with_how_to_resume(tmp_path):
    run_dir = tmp_path / "interrupted"
    stopped = stop_mid_training(run_dir, signal.SIGINT)
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    line = error_line(stopped)
    assert line.startswith("error: training stopped by Ctrl-C at epoch ")
    assert line.endswith(f"hydra.run.dir={run_dir} resume=true")
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / ".nlpseq.lock").exists()


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


def test_how_the_encoder_runs_is_not_a_change_of_settings():
    from nlpseq.cli.train import changed_settings

    saved = {"task": {}, "tokenizer": {}, "data": {},
             "encoder": {"cell": "gru", "hidden_size": 32, "execution": "packed"}}
    same = {**saved, "encoder": {"cell": "gru", "hidden_size": 32, "execution": "auto"}}
    assert changed_settings(saved, same) == []
    older = {**saved, "encoder": {"cell": "gru", "hidden_size": 32}}  # before the option
    assert changed_settings(older, same) == []
    wider = {**saved, "encoder": {"cell": "gru", "hidden_size": 48, "execution": "auto"}}
    assert changed_settings(saved, wider) == ["encoder.hidden_size: 32 -> 48"]
