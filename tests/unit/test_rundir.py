"""The run directory's checks before Hydra writes: the lock (held, refused, stale, released),
the pinned ``${now:...}`` pattern, a finished run's files, and whole-or-nothing writes."""

import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from nlpseq.cli.common import write_atomic
from nlpseq.cli.rundir import (
    LOCK_FILE,
    RunLock,
    finished_files,
    make_writable_dir,
    pinned_argv,
    refuse_finished_run,
)
from nlpseq.errors import NlpseqError


def test_a_held_lock_refuses_a_second_command_naming_the_holder(tmp_path):
    first = RunLock(tmp_path, "hydra.run.dir", "train")
    first.acquire()
    with pytest.raises(NlpseqError) as refused:
        RunLock(tmp_path, "hydra.run.dir", "eval").acquire()
    assert str(refused.value).startswith(f"{tmp_path} is in use by another nlpseq command "
                                         f"(nlpseq-train, pid {os.getpid()} on ")
    assert str(refused.value).endswith("; wait for it to end or pick another hydra.run.dir")
    first.release()
    assert not (tmp_path / LOCK_FILE).exists()
    second = RunLock(tmp_path, "hydra.run.dir", "eval")
    second.acquire()  # free again once released
    second.release()


def test_the_lock_of_a_process_that_died_is_taken_over(tmp_path):
    """A command killed with SIGKILL leaves its lock file; the kernel dropped its lock."""
    code = ("import os, sys; from pathlib import Path; from nlpseq.cli.rundir import RunLock; "
            "RunLock(Path(sys.argv[1]), 'hydra.run.dir', 'train').acquire(); "
            "os.kill(os.getpid(), 9)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=False)
    assert "nlpseq-train, pid" in (tmp_path / LOCK_FILE).read_text()  # left behind
    lock = RunLock(tmp_path, "hydra.run.dir", "train")
    lock.acquire()
    assert f"pid {os.getpid()} " in (tmp_path / LOCK_FILE).read_text()
    lock.release()


def test_a_run_dir_pattern_with_the_time_is_pinned_to_the_directory_checked(tmp_path):
    cfg = OmegaConf.create({"hydra": {"run": {"dir": "outputs/${now:%H-%M-%S}"},
                                      "sweep": {"dir": "fixed"}}})
    argv = ["encoder=gru", "hydra.run.dir=outputs/${now:%H-%M-%S}"]
    assert pinned_argv(argv, cfg, "hydra.run.dir", tmp_path / "it's") == [
        "encoder=gru", f"hydra.run.dir='{tmp_path}/it\\'s'"]
    assert pinned_argv(["-m"], cfg, "hydra.sweep.dir", tmp_path) == ["-m"]  # nothing to pin


def test_a_finished_run_is_refused_with_its_files(tmp_path):
    run = tmp_path / "0"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"x")
    (run / "metrics.json").write_text("{}")
    assert finished_files(run) == ["checkpoints/last.ckpt", "metrics.json"]
    with pytest.raises(NlpseqError, match=r"already holds the record of a run \(checkpoints/"
                                          r"last.ckpt, metrics.json\); pick another hydra.run"
                                          r".dir or remove them first$"):
        refuse_finished_run(run, "hydra.run.dir", resume_hint=False)
    assert finished_files(tmp_path) == ["0/checkpoints/last.ckpt", "0/metrics.json"]  # a sweep


def test_a_run_dir_that_cannot_be_created_is_one_error(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(NlpseqError, match=r"cannot create the run directory '.*a_file/run' "
                                          r"\(hydra.run.dir\): Not a directory; pick a "
                                          r"writable hydra.run.dir"):
        make_writable_dir(blocker / "run", "hydra.run.dir")


def test_an_atomic_write_stopped_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("old and whole")

    def stopped(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_atomic(path, "new")
    assert path.read_text() == "old and whole"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no partial file left
    monkeypatch.undo()
    assert write_atomic(tmp_path / "new" / "folder" / "out.txt", "x").read_text() == "x"


def test_a_continued_runs_record_is_put_back_only_while_its_checkpoint_is_unchanged(tmp_path):
    from nlpseq.cli.rundir import KeptConfigRecord

    (tmp_path / ".hydra").mkdir()
    (tmp_path / "checkpoints").mkdir()
    record = tmp_path / ".hydra" / "overrides.yaml"
    record.write_text("- encoder=lstm\n")
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"step 10")

    refused = KeptConfigRecord(tmp_path)
    record.write_text("- encoder=gru\n- resume=true\n")  # Hydra, as the job starts
    refused.restore()  # refused before any step: the record still describes last.ckpt
    assert record.read_text() == "- encoder=lstm\n"

    stopped = KeptConfigRecord(tmp_path)
    record.write_text("- trainer.max_epochs=9\n- resume=true\n")
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"step 20, saved at SIGTERM")
    stopped.restore()  # it trained on under the new record, which now describes last.ckpt
    assert record.read_text() == "- trainer.max_epochs=9\n- resume=true\n"
