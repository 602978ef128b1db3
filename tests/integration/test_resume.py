"""Resuming: a training process killed with SIGKILL, or stopped by SIGTERM (as a scheduler
stops a job) in the middle of an epoch, and resumed from checkpoints/last.ckpt ends with the
metrics of a run that never stopped; a stop saves the state at its step and says how to
resume in one line; bad resumes are one-line errors."""

import csv
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.integration.conftest import TINY, error_line, run_cli

RUN = [*TINY, "trainer.max_epochs=6", "callbacks.early_stopping.patience=20", "data.batch_size=8",
       "task.embedding_dim=32", "encoder.hidden_size=32", "optimizer.lr=0.01", "logger=csv"]
COMPARED = ("val/acc", "val/loss", "test/acc", "train/epochs", "train/best_step")
PER_EPOCH = 75  # training batches of the sample (600 texts, data.batch_size=8)
MID_EPOCH = PER_EPOCH + 30  # a step in the middle of the second epoch (epoch 1)


@pytest.fixture(scope="module")
def whole_run(tmp_path_factory):
    """The run directory of the run that never stopped."""
    whole = tmp_path_factory.mktemp("whole") / "run"
    assert run_cli("train", *RUN, f"hydra.run.dir={whole}").returncode == 0
    return whole


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


def signal_at_step(run_dir, sig: signal.Signals, step: int,
                   overrides=tuple(RUN)) -> subprocess.CompletedProcess:
    """Train, the process sending itself ``sig`` when step ``step`` is done
    (``signal_at_step.py``): a signal that lands at a known point of an epoch."""
    helper = Path(__file__).with_name("signal_at_step.py")
    return subprocess.run([sys.executable, str(helper), sig.name, str(step), *overrides,
                           f"hydra.run.dir={run_dir}"], capture_output=True, text=True,
                          timeout=600)


def saved_step(path) -> int:
    return torch.load(path, map_location="cpu", weights_only=True)["global_step"]


def logged_validations(run_dir) -> list[tuple[int, int, float]]:
    """(epoch, step, val/loss) of every validation in the run's csv/metrics.csv."""
    with (run_dir / "csv" / "metrics.csv").open(newline="") as file:
        return [(int(row["epoch"]), int(row["step"]), float(row["val/loss"]))
                for row in csv.DictReader(file) if row.get("val/loss")]


def assert_resumes_to(run_dir, whole_dir, overrides=tuple(RUN), compared=COMPARED) -> None:
    """The resumed run ends with the whole run's metrics, and its metrics.csv holds every
    validation of both parts, as the whole run's does."""
    resumed = run_cli("train", *overrides, f"hydra.run.dir={run_dir}", "resume=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming from" in resumed.stderr
    got = json.loads((run_dir / "metrics.json").read_text())
    expected = json.loads((whole_dir / "metrics.json").read_text())
    for key in compared:
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key
    ours, theirs = logged_validations(run_dir), logged_validations(whole_dir)
    assert [row[:2] for row in ours] == [row[:2] for row in theirs]
    assert [row[2] for row in ours] == pytest.approx([row[2] for row in theirs], abs=1e-6)


def whole(run_dir, overrides):
    """The run directory of a run that never stopped."""
    result = run_cli("train", *overrides, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_a_run_killed_mid_training_resumes_to_the_same_metrics(tmp_path, whole_run):
    killed = tmp_path / "killed"
    stopped = stop_mid_training(killed, signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "metrics.json").exists()
    assert_resumes_to(killed, whole_run)


def test_a_run_stopped_by_sigterm_mid_epoch_saves_that_step_and_resumes_exactly(tmp_path,
                                                                              whole_run):
    stopped_dir = tmp_path / "stopped"
    stopped = signal_at_step(stopped_dir, signal.SIGTERM, MID_EPOCH)
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    last = stopped_dir / "checkpoints" / "last.ckpt"
    assert error_line(stopped) == (
        f"error: training stopped by SIGTERM at epoch 1, step {MID_EPOCH}; {last} holds the "
        f"state at epoch 1, step {MID_EPOCH}; continue with: nlpseq-train {' '.join(RUN)} "
        f"hydra.run.dir={stopped_dir} resume=true")
    assert "Traceback" not in stopped.stderr
    assert saved_step(last) == MID_EPOCH
    assert saved_step(stopped_dir / "checkpoints" / "best.ckpt") == PER_EPOCH  # a validation's
    assert not (stopped_dir / "metrics.json").exists()
    assert_resumes_to(stopped_dir, whole_run)


def test_a_checkpoint_from_a_validation_mid_epoch_resumes_exactly(tmp_path):
    """Validation twice an epoch: last.ckpt of the mid-epoch validation at step 112 (batch 37
    of epoch 1); a run killed at step 115 goes on from that batch, not from the epoch's
    first."""
    twice = (*[o for o in RUN if not o.startswith("trainer.max_epochs=")],
             "trainer.max_epochs=3", "trainer.val_check_interval=0.5")
    expected = whole(tmp_path / "whole", twice)
    killed = tmp_path / "killed"
    assert signal_at_step(killed, signal.SIGKILL, MID_EPOCH + 10, twice).returncode == -9
    assert saved_step(killed / "checkpoints" / "last.ckpt") == PER_EPOCH + PER_EPOCH // 2
    assert_resumes_to(killed, expected, twice)


LM = [*TINY, "task=generation", "trainer.max_epochs=3", "data.num_streams=4",
      "data.block_size=16", "callbacks.text_sample=null", "logger=csv"]


def test_a_language_model_stopped_mid_epoch_carries_its_stream_state_on(tmp_path):
    """Stream mode: the resumed run starts the next block from the recurrent state the
    stopped one carried (saved in last.ckpt), as a run that never stopped does."""
    expected = whole(tmp_path / "whole", LM)
    per_epoch = saved_step(tmp_path / "whole" / "checkpoints" / "last.ckpt") // 3
    stopped = tmp_path / "stopped"
    result = signal_at_step(stopped, signal.SIGTERM, per_epoch + per_epoch // 2, LM)
    assert result.returncode == 143, result.stderr[-3000:]
    assert saved_step(stopped / "checkpoints" / "last.ckpt") == per_epoch + per_epoch // 2
    assert_resumes_to(stopped, expected, LM, ("val/loss", "test/loss", "train/best_step"))


def test_ctrl_c_saves_the_step_it_stopped_at_and_says_how_to_resume(tmp_path):
    run_dir = tmp_path / "interrupted"
    stopped = signal_at_step(run_dir, signal.SIGINT, MID_EPOCH)
    assert stopped.returncode == 130, stopped.stderr[-3000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    line = error_line(stopped)
    assert line.startswith(f"error: training stopped by Ctrl-C at epoch 1, step {MID_EPOCH}; "
                           f"{last} holds the state at epoch 1, step {MID_EPOCH}; continue ")
    assert line.endswith(f"hydra.run.dir={run_dir} resume=true")
    assert saved_step(last) == MID_EPOCH
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


def test_a_refused_resume_leaves_the_runs_config_record_as_it_was(tmp_path, trained_run):
    """Hydra rewrites .hydra/ when the job starts, before the settings are checked against
    last.ckpt: a refused resume puts the record back, so it still describes the run."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    record = {path.name: path.read_bytes() for path in (run_dir / ".hydra").iterdir()}
    for change in ("encoder.hidden_size=24", "optimizer.lr=0"):
        result = run_cli("train", *TINY, "task.embedding_dim=32", "encoder.hidden_size=32",
                         change, f"hydra.run.dir={run_dir}", "resume=true")
        assert result.returncode == 2, change
        assert {path.name: path.read_bytes()
                for path in (run_dir / ".hydra").iterdir()} == record, change


def test_a_run_continued_elsewhere_with_nothing_left_to_train_keeps_its_own_best(
        tmp_path, trained_run):
    """The checkpoint stores the path of its run's best.ckpt; continued from a copy of that
    run into a new directory, the new run's record gets its own copy of the continued
    run's best and evaluates it, not a file named by the stored path."""
    import shutil

    source = tmp_path / "copy"
    shutil.copytree(trained_run, source)
    result = run_cli("train", *TINY, "task.embedding_dim=32", "encoder.hidden_size=32",
                     "trainer.max_epochs=12", "logger=csv", f"ckpt_path={source}",
                     f"hydra.run.dir={tmp_path / 'cont'}")
    assert result.returncode == 0, result.stderr[-3000:]
    best = tmp_path / "cont" / "checkpoints" / "best.ckpt"
    assert best.read_bytes() == (source / "checkpoints" / "best.ckpt").read_bytes()
    metrics = json.loads((tmp_path / "cont" / "metrics.json").read_text())
    assert metrics["test/acc"] == json.loads((trained_run / "metrics.json").read_text())["test/acc"]
    assert f"Evaluating the best checkpoint {best}" in (tmp_path / "cont" / "train.log").read_text()


def test_a_checkpoint_that_stored_its_data_paths_relative_still_resumes(tmp_path):
    """Checkpoints of an earlier nlpseq stored data.train_file as typed (train.tsv); read
    from the same directory it is the same file, not a change of settings."""
    import shutil

    from nlpseq.data.sample import SAMPLE_DIR

    shutil.copy(SAMPLE_DIR / "sentiment_train.tsv", tmp_path / "train.tsv")
    run = [*TINY, "data=files", "data.train_file=train.tsv", f"hydra.run.dir={tmp_path / 'run'}"]
    assert run_cli("train", *run, "trainer.max_epochs=1", cwd=tmp_path).returncode == 0
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(last, weights_only=True)
    assert checkpoint["nlpseq"]["config"]["data"]["train_file"] == str(tmp_path / "train.tsv")
    checkpoint["nlpseq"]["config"]["data"]["train_file"] = "train.tsv"  # as stored before
    torch.save(checkpoint, last)
    resumed = run_cli("train", *run, "trainer.max_epochs=2", "resume=true", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train/epochs"] == 2


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


def test_a_resume_on_data_whose_labels_changed_is_refused(tmp_path):
    def write(names: tuple[str, str]) -> None:
        rows = [f"{word} film\t{names[i % 2]}\n" for i, word in enumerate(["great", "awful"] * 10)]
        for split in ("train", "dev"):
            (tmp_path / f"{split}.tsv").write_text("sentence\tlabel\n" + "".join(rows))

    files = ["data=files", f"data.train_file={tmp_path / 'train.tsv'}",
             f"data.validation_file={tmp_path / 'dev.tsv'}", f"hydra.run.dir={tmp_path / 'run'}"]
    write(("pos", "neg"))
    assert run_cli("train", *TINY, *files, "trainer.max_epochs=1").returncode == 0
    write(("b", "a"))  # the same rows with other names: sorted, a would take neg's id 0
    resumed = run_cli("train", *TINY, *files, "trainer.max_epochs=2", "resume=true")
    assert resumed.returncode == 2
    assert error_line(resumed) == (
        f"error: The training data's labels are ['a', 'b']; {tmp_path}/run/checkpoints/last.ckpt "
        "was trained with ['neg', 'pos']: resume with the run's own data, or start a new run")
