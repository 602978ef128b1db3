"""Sweeps through the real commands: a failed job is recorded and the sweep goes on, the
report reads the multirun directory, and a swept key that does not exist is one line."""

import json
import os
from pathlib import Path

import pytest
import yaml
from omegaconf import open_dict, read_write

from nlpseq.cli.common import CONFIG_DIR, unknown_sweep_parameter
from nlpseq.cli.sweep import threads_per_job
from tests.integration.conftest import TINY, compose_config, error_line, run_cli


def test_failed_jobs_are_recorded_the_sweep_goes_on_and_report_and_eval_read_it(tmp_path):
    sweep_dir = tmp_path / "sweep"
    result = run_cli("train", "-m", *TINY, "debug=limit", "logger=csv", "encoder=gru,rnn",
                     "encoder.num_layers=0,1", f"hydra.sweep.dir={sweep_dir}")
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: 2 job(s) of the sweep failed" in error_line(result)
    for job, status in enumerate(["failed", "finished", "failed", "finished"]):
        record = json.loads((sweep_dir / str(job) / "status.json").read_text())
        assert record["status"] == status, (job, record)
    failed = json.loads((sweep_dir / "2" / "status.json").read_text())
    assert "num_layers must be a positive integer" in failed["error"]
    assert {"encoder=rnn", "encoder.num_layers=0"} <= set(failed["overrides"])
    metrics = json.loads((sweep_dir / "3" / "metrics.json").read_text())
    assert {"val/acc", "train/peak_rss_mib", "train/best_epoch", "train/best_step"} <= set(metrics)

    report = run_cli("compare", str(sweep_dir))
    assert report.returncode == 0, report.stderr[-3000:]
    assert "4 runs" in report.stdout and "2 finished, 2 failed" in report.stdout
    assert (sweep_dir / "report" / "sentiment_learning_curves.png").is_file()

    eval_dir = tmp_path / "eval"
    evaluated = run_cli("evaluate", f"ckpt_path={sweep_dir}", f"hydra.run.dir={eval_dir}")
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    rows = (eval_dir / "eval_table.csv").read_text().splitlines()
    assert rows[0].startswith("run,") and [r.split(",")[0] for r in rows[1:]] == ["1", "3"]
    assert json.loads((eval_dir / "3" / "metrics.json").read_text())["cell"] == "rnn"


def test_a_swept_key_that_does_not_exist_is_one_line(tmp_path):
    result = run_cli("train", "-m", *TINY, "encoder.hiden_size=8,16",
                     f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 2
    assert error_line(result).startswith("error: Unknown key 'encoder.hiden_size'; encoder has: ")


def test_an_optuna_parameter_that_does_not_exist_is_named_with_what_was_found(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    cfg = compose_config("train", ["hparams_search=sentiment_optuna"], tmp_path)
    assert unknown_sweep_parameter(cfg) is None  # the shipped search space is valid
    with read_write(cfg.hydra), open_dict(cfg.hydra):
        cfg.hydra.sweeper.params["encoder.hiden_size"] = "choice(8, 16)"
    message = unknown_sweep_parameter(cfg)
    assert message.startswith("Unknown sweep parameter 'encoder.hiden_size' in "
                              "hydra.sweeper.params; encoder has: cell, hidden_size,")


def test_an_optuna_study_finishes_reports_its_best_and_resumes(tmp_path):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    search = ["hparams_search=sentiment_optuna", *TINY, "debug=limit", "logger=none",
              "hydra.sweeper.sampler.n_startup_trials=2"]
    first = run_cli("train", *search, "hydra.sweeper.n_trials=3",
                    f"hydra.sweep.dir={tmp_path / 'first'}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first"]  # no outputs/train/<time>
    storage = f"sqlite:///{tmp_path / 'first' / 'optuna.db'}"  # each search's own study
    results = yaml.safe_load((tmp_path / "first" / "optimization_results.yaml").read_text())
    assert "optimizer.lr" in results["best_params"] and "encoder" in results["best_params"]
    assert 0.0 <= results["best_value"] <= 1.0  # val/acc of the best trial

    again = run_cli("train", *search, "hydra.sweeper.n_trials=2",
                    f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={tmp_path / 'again'}")
    assert again.returncode == 0, again.stderr[-3000:]
    study = optuna.load_study(study_name="sentiment", storage=storage)
    assert len(study.trials) == 5  # the second command added two trials to the stored study
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)


def test_the_slurm_launcher_config_composes_with_one_gpu_a_job(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    cfg = compose_config("train", ["hydra/launcher=slurm", "hydra.launcher.partition=gpu"],
                         tmp_path)
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.timeout_min) == ("gpu", 1, 60)


def test_joblib_runs_jobs_in_parallel_processes_and_records_failures(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep_dir = tmp_path / "sweep"
    result = run_cli("train", "-m", *TINY, "debug=limit", "hydra/launcher=joblib",
                     "hydra.launcher.n_jobs=2", "encoder.num_layers=0,1",
                     f"hydra.sweep.dir={sweep_dir}", env={"OMP_NUM_THREADS": "4"})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "error: 1 job(s) of the sweep failed" in error_line(result)
    assert json.loads((sweep_dir / "1" / "status.json").read_text())["status"] == "finished"
    assert (sweep_dir / "1" / "metrics.json").is_file()
    cores = len(os.sched_getaffinity(0))  # each of the two jobs takes its share, at most 4
    assert f"{min(4, max(1, cores // 2))} torch thread(s) for this job: joblib n_jobs=2" in (
        sweep_dir / "1" / "train.log").read_text()


@pytest.mark.parametrize(("n_jobs", "cores", "threads"), [
    (-1, 2, 1), (2, 16, 8), (3, 16, 5), (-2, 16, 1), (None, 4, 4), (32, 16, 1)])
def test_parallel_jobs_share_the_cores(n_jobs, cores, threads):
    assert threads_per_job(n_jobs, cores) == threads


def test_a_failed_optuna_trial_is_recorded_and_the_study_goes_on(tmp_path):
    optuna = pytest.importorskip("optuna")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    extra = tmp_path / "conf" / "hparams_search"  # a search space where num_layers=0 fails
    extra.mkdir(parents=True)
    shipped = (Path(CONFIG_DIR) / "hparams_search" / "sentiment_optuna.yaml").read_text()
    (extra / "failing.yaml").write_text(shipped.replace("encoder.num_layers: choice(1, 2)",
                                                        "encoder.num_layers: choice(0, 1)"))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_cli("train", "hparams_search=failing", *TINY, "debug=limit", "logger=none",
                     f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
                     f"hydra.sweeper.storage={storage}", "hydra.sweeper.n_trials=4",
                     "hydra.sweeper.sampler.n_startup_trials=4",
                     f"hydra.sweep.dir={tmp_path / 'sweep'}")
    study = optuna.load_study(study_name="sentiment", storage=storage)
    states = [t.state for t in study.trials]
    assert len(states) == 4 and optuna.trial.TrialState.FAIL in states
    assert optuna.trial.TrialState.COMPLETE in states
    assert (tmp_path / "sweep" / "optimization_results.yaml").is_file()  # best of the rest
    assert result.returncode == 1 and "job(s) of the sweep failed" in error_line(result)
