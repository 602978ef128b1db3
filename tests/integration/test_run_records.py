"""Outputs never destroy inputs, and a run record is never damaged: each refusal is one
line that comes before anything is written; last.ckpt holds the latest state; training
without validation works; a sweep's failing job is one line and the sweep goes on."""

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

from nlpseq.cli.rundir import LOCK_FILE, RunLock
from tests.integration.conftest import TINY, error_line, run_cli_cases


def fingerprint(run_dir: Path) -> dict[str, str]:
    """Every file of a run directory and a hash of its bytes."""
    return {str(path.relative_to(run_dir)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(run_dir.rglob("*")) if path.is_file()}


def test_predict_never_writes_over_its_input_or_checkpoint(trained_run, tmp_path):
    texts = "the plot is dull .\nwhat a charming story .\n"
    source = tmp_path / "in.txt"
    source.write_text(texts)
    (tmp_path / "link.txt").symlink_to(source)
    os.link(source, tmp_path / "hard.txt")
    best = trained_run / "checkpoints" / "best.ckpt"
    before = fingerprint(trained_run)
    ckpt, read = f"ckpt_path={trained_run}", f"input_file={source}"
    cases = [
        ((read, f"output_file={source}"), f"output_file '{source}' is the input_file"),
        ((read, f"output_file={tmp_path}/../{tmp_path.name}/./in.txt"), "is the input_file"),
        ((read, f"output_file={tmp_path}/link.txt"), "is the input_file"),
        ((read, f"output_file={tmp_path}/hard.txt"), "is the input_file"),
        ((read, f"output_file={best}"), f"output_file '{best}' is the checkpoint '{best}'"),
        ((read, f"output_file={tmp_path}"), f"output_file '{tmp_path}' is a directory"),
        ((read, f"output_file={trained_run}/checkpoints/last.ckpt"), "is a checkpoint: writing"),
    ]
    nested = tmp_path / "new" / "folder" / "out.jsonl"  # folders that do not exist yet
    *results, made = run_cli_cases([*[("predict", ckpt, *args) for args, _ in cases],
                                    ("predict", ckpt, read, f"output_file={nested}")],
                                   f"hydra.run.dir={tmp_path}/run")
    for (args, expected), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert expected in error_line(result), args
        assert "Traceback" not in result.stderr, args
    assert error_line(results[0]).endswith(": writing it would destroy it; pick another "
                                           "output_file")
    assert source.read_text() == texts
    assert fingerprint(trained_run) == before
    assert made.returncode == 0, made.stderr[-2000:]
    assert [json.loads(line)["text"] for line in nested.read_text().splitlines()] == [
        "the plot is dull .", "what a charming story ."]


def test_no_command_writes_into_a_finished_run(trained_run, tmp_path):
    """A refused command writes nothing: not .hydra/, not a log, not metrics.json."""
    before = fingerprint(trained_run)
    run_dir = f"hydra.run.dir={trained_run}"
    results = run_cli_cases([
        ("train", *TINY, run_dir),
        ("train", *TINY, "encoder=gru", "trainer.max_epochs=3", run_dir),
        ("evaluate", f"ckpt_path={trained_run}", run_dir),
        ("predict", f"ckpt_path={trained_run}", "text=a fine film", run_dir),
    ])
    for result in results:
        assert result.returncode == 2, result.stderr[-2000:]
        assert error_line(result) == (
            f"error: {trained_run} already holds the record of a run (checkpoints/best.ckpt, "
            f"checkpoints/last.ckpt, metrics.json); pick another hydra.run.dir or remove them "
            f"first" + (" (or continue it with resume=true)" if result.args[0] == "train"
                        else ""))
    assert fingerprint(trained_run) == before


def unwritable_dirs(tmp_path: Path) -> list[Path]:
    """Run directories that cannot be written: under a file; in a read-only folder (as
    root, which may write anywhere, a folder of the kernel's /sys)."""
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    dirs = [blocker / "run"]
    if os.geteuid() != 0:
        locked = tmp_path / "read_only"
        locked.mkdir(mode=0o555)
        dirs.append(locked)
    elif sys.platform == "linux" and Path("/sys/kernel").is_dir():
        dirs.append(Path("/sys/kernel/nlpseq-run"))
    return dirs


def test_an_unwritable_run_directory_is_one_line(trained_run, tmp_path):
    dirs = unwritable_dirs(tmp_path)
    commands = [("train", *TINY), ("evaluate", f"ckpt_path={trained_run}"),
                ("predict", f"ckpt_path={trained_run}", "text=a fine film")]
    cases = [(*command, f"hydra.run.dir={run_dir}") for run_dir in dirs for command in commands]
    for case, result in zip(cases, run_cli_cases(cases), strict=True):
        assert result.returncode == 2, (case, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, case
        line = error_line(result)
        assert line.startswith((f"error: cannot create the run directory '{case[-1][14:]}' "
                                "(hydra.run.dir): ", "error: cannot write in the run directory "
                                f"'{case[-1][14:]}' (hydra.run.dir): ")), case
        assert line.endswith("; pick a writable hydra.run.dir"), case


def test_a_second_command_into_a_busy_run_directory_is_refused_before_it_writes(tmp_path):
    busy, failed = tmp_path / "busy", tmp_path / "failed"
    busy.mkdir()
    running = RunLock(busy, "hydra.run.dir", "train")  # as a training run holds it
    running.acquire()
    try:
        second, sweep, failing = run_cli_cases([
            ("train", *TINY, f"hydra.run.dir={busy}"),
            ("train", "-m", *TINY, "seed=1,2", f"hydra.sweep.dir={busy}"),
            ("train", *TINY, "data=files", f"data.train_file={tmp_path}/nope.tsv",
             f"hydra.run.dir={failed}")])
    finally:
        running.release()
    for result in (second, sweep):
        assert result.returncode == 2, result.stderr[-2000:]
        assert error_line(result).startswith(f"error: {busy} is in use by another nlpseq "
                                             f"command (nlpseq-train, pid {os.getpid()} on ")
    assert [p.name for p in busy.iterdir()] == []  # no .hydra/, no log, no lock left
    assert failing.returncode == 2 and "nope.tsv" in error_line(failing)
    assert (failed / ".hydra").is_dir() and not (failed / LOCK_FILE).exists()  # released


def test_last_ckpt_holds_the_latest_state_also_without_validation(tmp_path):
    """last.ckpt: the score never improves after the first validation (a learning rate of
    1e-9), and training ends between two validations (max_steps): it must still hold the
    end. Without validation (or without early stopping) training works, and best.ckpt is
    the final weights."""
    latest, no_validation = tmp_path / "latest", tmp_path / "no_validation"
    cases = [("train", *TINY, "trainer.max_epochs=3", "trainer.max_steps=45",
              "optimizer.lr=1e-9", "scheduler=constant", "test=false",
              f"hydra.run.dir={latest}"),
             ("train", *TINY, "trainer.max_epochs=1", "trainer.limit_val_batches=0",
              f"hydra.run.dir={no_validation}"),
             ("train", *TINY, "debug=limit", "trainer.max_epochs=1",
              "callbacks.early_stopping=null", f"hydra.run.dir={tmp_path / 'no_stopping'}"),
             ("train", *TINY, "trainer.limit_val_batches=0", "scheduler=plateau",
              f"hydra.run.dir={tmp_path / 'plateau'}")]
    ended, plain, no_stopping, plateau = run_cli_cases(cases)
    assert ended.returncode == 0, ended.stderr[-3000:]
    last = torch.load(latest / "checkpoints" / "last.ckpt", weights_only=False)
    best = torch.load(latest / "checkpoints" / "best.ckpt", weights_only=False)
    assert last["global_step"] == 45
    assert best["global_step"] < 45  # the first validation's, never beaten
    assert not (latest / LOCK_FILE).exists()  # released at exit

    for result in (plain, no_stopping):
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
    checkpoints = no_validation / "checkpoints"
    assert (checkpoints / "best.ckpt").read_bytes() == (checkpoints / "last.ckpt").read_bytes()
    assert "checkpoints/best.ckpt is a copy of last.ckpt, the final weights" in plain.stderr
    metrics = json.loads((no_validation / "metrics.json").read_text())
    last = torch.load(checkpoints / "last.ckpt", weights_only=False)
    assert metrics["train/best_step"] == last["global_step"] > 0
    assert {"val/acc", "test/acc"} <= set(metrics)  # the final weights, evaluated
    assert (tmp_path / "no_stopping" / "metrics.json").is_file()
    assert plateau.returncode == 2
    assert error_line(plateau) == ("error: scheduler watches val/loss, but trainer."
                                   "limit_val_batches=0 turns validation off; pick another "
                                   "scheduler (e.g. scheduler=constant) or turn validation on")


def test_a_sweep_job_that_crashes_is_one_line_and_the_sweep_goes_on(tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep = [*TINY, "debug=limit", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep_dir}"]
    result, bad_choice = run_cli_cases([("train", "-m", *sweep, "optimizer.lr=0.01,-1"),
                                        ("train", "-m", *TINY, "encoder=gru,lsmt",
                                         f"hydra.sweep.dir={tmp_path / 'other'}")])
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert json.loads((sweep_dir / "0" / "status.json").read_text())["status"] == "finished"
    failed = json.loads((sweep_dir / "1" / "status.json").read_text())
    assert failed["status"] == "failed" and "-1" in failed["error"]

    before = fingerprint(sweep_dir)
    again, = run_cli_cases([("train", "-m", *sweep, "optimizer.lr=0.01,-1")])
    assert again.returncode == 2
    assert error_line(again).startswith(f"error: {sweep_dir} already holds the record of a "
                                        "run (0/checkpoints/best.ckpt, ")
    assert fingerprint(sweep_dir) == before
    assert bad_choice.returncode == 2
    assert error_line(bad_choice) == ("error: Unknown choice encoder=lsmt; choose one of gru, "
                                      "lstm, rnn")
    assert not (tmp_path / "other").exists()
