"""nlpseq-report's pieces on hand-made run directories: finding runs, grouping by cell and
swept field, mean and std over seeds, the files written, and the errors."""

import json
import statistics

import pytest
import yaml

from nlpseq.cli.compare import build_report, main
from nlpseq.comparison.runs import find_run_dirs, load_run
from nlpseq.comparison.summary import group_runs, summary_rows, swept_fields
from nlpseq.errors import NlpseqError

TASKS = {"sentiment": ("nlpseq.tasks.SentimentTask", "val/acc", "max"),
         "generation": ("nlpseq.tasks.GenerationTask", "val/loss", "min")}


def make_run(root, name, cell, seed, metrics=None, task="sentiment", status=None, extra=()):
    """A run directory as nlpseq-train leaves it (only the files the report reads)."""
    run = root / name
    (run / ".hydra").mkdir(parents=True)
    target, monitor, mode = TASKS[task]
    config = {"task": {"_target_": target, "monitor": monitor, "monitor_mode": mode},
              "encoder": {"cell": cell}, "seed": seed}
    (run / ".hydra" / "config.yaml").write_text(yaml.safe_dump(config))
    overrides = [f"encoder={cell}", f"seed={seed}", *extra]
    (run / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if metrics is not None:
        (run / "metrics.json").write_text(json.dumps(metrics))
        (run / "csv").mkdir()
        (run / "csv" / "metrics.csv").write_text(
            f"epoch,step,{monitor},train/loss\n0,10,,0.9\n0,20,0.5,\n1,40,{metrics[monitor]},\n")
    if status is not None:
        (run / "status.json").write_text(json.dumps(status))
    return run


def sweep(root, accuracies):
    """A 3-cell sweep: accuracies[cell] holds one value per seed."""
    job = 0
    for cell, values in accuracies.items():
        for seed, acc in enumerate(values, start=1):
            params = {"rnn": 100, "gru": 300, "lstm": 400}[cell]
            make_run(root, str(job), cell, seed, {"val/acc": acc, "test/acc": acc - 0.01,
                                                  "params": params, "train/time_s": 10.0 * job,
                                                  "train/tokens_per_s": 1000.0,
                                                  "train/peak_rss_mib": 512.0,
                                                  "train/best_epoch": 1.5})
            job += 1
    return root


def test_groups_by_cell_with_mean_and_sample_std_over_seeds(tmp_path):
    accuracies = {"rnn": [0.70, 0.74], "gru": [0.80, 0.84, 0.82], "lstm": [0.80, 0.81]}
    runs = [load_run(d) for d in find_run_dirs(sweep(tmp_path, accuracies))]
    assert swept_fields(runs) == []  # cell and seed only
    rows = summary_rows(group_runs(runs))
    assert [row["cell"] for row in rows] == ["gru", "lstm", "rnn"]  # best mean first
    gru = rows[0]
    assert gru["runs"] == 3
    assert gru["val/acc mean"] == pytest.approx(0.82)
    assert gru["val/acc std"] == pytest.approx(statistics.stdev([0.80, 0.84, 0.82]))
    assert gru["test/acc mean"] == pytest.approx(0.81)
    assert gru["params"] == 300 and gru["epochs to best"] == 1.5
    assert gru["train time (s) mean"] == pytest.approx(30.0)  # jobs 2, 3, 4: 20, 30, 40 s
    assert gru["train time (s) std"] == pytest.approx(10.0)
    assert gru["train tokens/s std"] == 0.0
    assert rows[2]["val/acc std"] == pytest.approx(0.02 * 2**0.5)


def test_a_swept_field_splits_the_groups_and_lower_is_better_for_a_loss(tmp_path):
    for job, (cell, width, loss) in enumerate([("gru", 16, 2.0), ("gru", 32, 1.5),
                                               ("lstm", 16, 1.8), ("lstm", 32, 1.6)]):
        make_run(tmp_path, str(job), cell, 1, {"val/loss": loss}, task="generation",
                 extra=[f"encoder.hidden_size={width}"])
    runs = [load_run(d) for d in find_run_dirs(tmp_path)]
    assert swept_fields(runs) == ["encoder.hidden_size"]
    rows = summary_rows(group_runs(runs))
    assert [(r["cell"], r["encoder.hidden_size"]) for r in rows] == [
        ("gru", "32"), ("lstm", "32"), ("lstm", "16"), ("gru", "16")]


def test_runs_started_from_another_run_get_a_column_set_anywhere(tmp_path):
    """An experiment file sets encoder.init_from, not the command line: the column comes
    from metrics.json; runs from scratch read "scratch"."""
    lm = "outputs/sst2_lm/checkpoints/best.ckpt"
    for job, (seed, start) in enumerate([(1, {}), (2, {}), (1, {"init_from": lm}),
                                         (2, {"init_from": lm,
                                              "backward_init_from": "bw/checkpoints/best.ckpt"})]):
        make_run(tmp_path, str(job), "lstm", seed, {"val/acc": 0.8 + job / 100, **start})
    rows = summary_rows(group_runs([load_run(d) for d in find_run_dirs(tmp_path)]))
    assert [(r["initialised from"], r["runs"]) for r in rows] == [
        ("outputs/sst2_lm; backward bw", 1), ("outputs/sst2_lm", 1), ("scratch", 2)]
    alone = tmp_path / "scratch_only"
    make_run(alone, "0", "lstm", 1, {"val/acc": 0.8})
    assert "initialised from" not in summary_rows(group_runs([load_run(alone / "0")]))[0]


def test_report_writes_markdown_csv_and_plots_and_lists_failed_runs(tmp_path):
    root = sweep(tmp_path / "multirun", {"rnn": [0.7], "gru": [0.8], "lstm": [0.82]})
    make_run(root, "3", "gru", 2, status={"status": "failed", "error": "hidden_size must be >= 1"})
    make_run(root, "4", "lstm", 2)  # killed: no metrics, no status
    report = build_report([root], root / "report")
    text = report.read_text()
    assert "5 runs" in text and "3 finished, 1 failed, 1 unfinished" in text
    assert "| lstm | 1 | 0.8200 ± 0.0000 | 0.8100 ± 0.0000 | 400 |" in text
    assert "| train time (s) (mean ± std) | train tokens/s (mean ± std) |" in text
    assert "failed: hidden_size must be >= 1" in text
    assert "unfinished (no metrics.json" in text
    for name in ("sentiment_summary.csv", "sentiment_runs.csv", "sentiment_learning_curves.png",
                 "sentiment_metric_vs_params.png", "sentiment_metric_vs_time.png"):
        assert (root / "report" / name).stat().st_size > 0, name
    summary = (root / "report" / "sentiment_summary.csv").read_text().splitlines()
    assert summary[0].startswith("cell,runs,val/acc mean,val/acc std,test/acc mean")
    assert len(summary) == 4


def test_runs_of_two_tasks_get_a_section_each(tmp_path):
    make_run(tmp_path, "a", "gru", 1, {"val/acc": 0.8})
    make_run(tmp_path, "b", "gru", 1, {"val/loss": 1.2}, task="generation")
    text = build_report([tmp_path], tmp_path / "report").read_text()
    assert "Runs of 2 tasks (sentiment, generation)" in text
    assert "## sentiment: val/acc (higher is better)" in text
    assert "## generation: val/loss (lower is better)" in text


def test_eval_run_directories_are_not_training_runs(tmp_path):
    make_run(tmp_path, "train", "gru", 1, {"val/acc": 0.8})
    (tmp_path / "eval" / ".hydra").mkdir(parents=True)
    (tmp_path / "eval" / ".hydra" / "config.yaml").write_text("ckpt_path: x\nsplit: test\n")
    assert find_run_dirs(tmp_path) == [tmp_path / "train"]


def test_bad_paths_and_sweeps_without_finished_runs_are_one_line_errors(tmp_path, capsys):
    with pytest.raises(NlpseqError, match="does not exist"):
        find_run_dirs(tmp_path / "missing")
    with pytest.raises(NlpseqError, match="no training runs under .*holds .hydra/config.yaml"):
        find_run_dirs(tmp_path)
    make_run(tmp_path, "0", "gru", 1, status={"status": "failed", "error": "boom"})
    make_run(tmp_path, "1", "gru", 2)
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: no finished runs under {tmp_path}: 1 failed, 1 unfinished, "
                   "none with metrics.json")


@pytest.mark.parametrize(("name", "content", "expected"), [
    (".hydra/config.yaml", b"task: [unclosed\n", "is not a readable run config: ParserError"),
    (".hydra/config.yaml", b"task: !!python/object/apply:os.system ['true']\n",
     "is not a readable run config: ConstructorError"),
    ("metrics.json", b'{"val/acc": "\xff"}', "is not valid JSON: UnicodeDecodeError"),
    ("csv/metrics.csv", b"epoch,step,val/acc\n0,ten,0.5\n", "is not a readable metrics log"),
])
def test_a_damaged_run_file_is_named_in_one_line(tmp_path, capsys, name, content, expected):
    run = make_run(tmp_path, "0", "gru", 1, metrics={"val/acc": 0.8})
    (run / name).write_bytes(content)
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().startswith(f"error: {run / name} {expected}")


def test_a_run_that_diverged_gives_an_infinite_mean_not_a_crash(tmp_path):
    make_run(tmp_path, "0", "gru", 1, metrics={"val/acc": 0.8})
    make_run(tmp_path, "1", "gru", 2, metrics={"val/acc": float("nan")})
    make_run(tmp_path, "2", "rnn", 1, metrics={"val/acc": float("inf")})
    make_run(tmp_path, "3", "rnn", 2, metrics={"val/acc": 0.5})
    report = build_report([tmp_path], tmp_path / "report").read_text()
    assert "| gru | 2 | – ± –" in report and "| rnn | 2 | inf ± –" in report  # – : no number


@pytest.mark.parametrize("case", ["eval folder", "out is a file", "out in checkpoints"])
def test_bad_report_paths_are_one_line(tmp_path, capsys, case):
    run = make_run(tmp_path, "0", "gru", 1, metrics={"val/acc": 0.8})
    (run / "checkpoints").mkdir()
    (tmp_path / "file.txt").write_text("mine")
    evaluation = tmp_path / "eval"
    (evaluation / ".hydra").mkdir(parents=True)
    (evaluation / ".hydra" / "config.yaml").write_text("ckpt_path: x\nsplit: test\n")
    argv, expected = {
        "eval folder": ([str(evaluation)], f"error: {evaluation} is not a training run"),
        "out is a file": ([str(run), "--out", str(tmp_path / "file.txt")],
                          f"error: cannot write the report into --out '{tmp_path / 'file.txt'}'"),
        "out in checkpoints": ([str(run), "--out", str(run / "checkpoints" / "r")],
                               f"error: --out '{run / 'checkpoints' / 'r'}' is inside the "
                               f"record of the run {run}"),
    }[case]
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().startswith(expected)
    assert (tmp_path / "file.txt").read_text() == "mine"
