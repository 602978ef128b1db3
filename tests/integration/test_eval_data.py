"""nlpseq-eval reads the data its run read: the rows the run held out for validation (never
rows it trained on), the files it named from whatever directory it is started in, and a
named file it cannot score against is refused rather than replaced by another split."""

import json
import shutil

from nlpseq.data.sample import SAMPLE_DIR
from tests.integration.conftest import TINY, error_line, run_cli


def metrics(run_dir) -> dict:
    return json.loads((run_dir / "metrics.json").read_text())


def test_eval_of_a_run_with_relative_files_and_no_validation_file_reads_what_the_run_read(
        tmp_path):
    """Trained in one directory on relative paths with validation held out of train, then
    evaluated from another directory that holds different files of the same names: the
    validation split is the run's own held-out rows and the test file the run's own."""
    first, elsewhere = tmp_path / "first", tmp_path / "elsewhere"
    first.mkdir()
    elsewhere.mkdir()
    shutil.copy(SAMPLE_DIR / "sentiment_train.tsv", first / "train.tsv")
    shutil.copy(SAMPLE_DIR / "sentiment_test.tsv", first / "test.tsv")
    (elsewhere / "test.tsv").write_text("sentence\tlabel\n" + "".join(
        f"dull film {i}\tpositive\ngreat film {i}\tnegative\n" for i in range(30)))
    run_dir = tmp_path / "run"
    trained = run_cli("train", *TINY, "data=files", "data.train_file=train.tsv", "seed=7",
                      "data.test_file=test.tsv", f"hydra.run.dir={run_dir}", cwd=first)
    assert trained.returncode == 0, trained.stderr[-3000:]

    evaluations = {}
    for split in ("validation", "test"):
        out = tmp_path / f"eval_{split}"
        result = run_cli("evaluate", f"ckpt_path={run_dir}", f"split={split}",
                         f"hydra.run.dir={out}", cwd=elsewhere)
        assert result.returncode == 0, result.stderr[-3000:]
        evaluations[split] = metrics(out)
    assert "(seed 7)" in (tmp_path / "eval_validation" / "evaluate.log").read_text()
    run = metrics(run_dir)
    assert evaluations["validation"]["val/examples"] == run["val/examples"]
    assert abs(evaluations["validation"]["val/loss"] - run["val/loss"]) < 1e-6
    assert evaluations["test"]["test/examples"] == run["test/examples"] == 150
    assert abs(evaluations["test"]["test/loss"] - run["test/loss"]) < 1e-6

    for option in ("seed=3", "+data.seed=3"):  # other rows, asked for
        out = tmp_path / f"eval_{option.strip('+').replace('=', '_')}"
        result = run_cli("evaluate", f"ckpt_path={run_dir}", "split=validation", "data=files",
                         f"data.train_file={first / 'train.tsv'}", option,
                         f"hydra.run.dir={out}")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "(seed 3)" in (out / "evaluate.log").read_text(), option


def test_a_named_test_file_without_labels_is_refused_not_replaced(trained_run, tmp_path):
    unlabelled = tmp_path / "unlabelled.tsv"
    unlabelled.write_text("sentence\tlabel\n" + "".join(f"an awful film {i}\t-1\n"
                                                        for i in range(40)))
    result = run_cli("evaluate", f"ckpt_path={trained_run}", "data=files",
                     f"data.test_file={unlabelled}", f"hydra.run.dir={tmp_path / 'eval'}")
    assert result.returncode == 2, result.stderr[-3000:]
    assert error_line(result) == (
        f"error: {unlabelled}: every label is -1 (unlabelled), so the test split has nothing "
        "to score against; give a labelled file")
    assert not (tmp_path / "eval" / "metrics.json").exists()


def test_runs_whose_paths_differ_only_by_a_slash_keep_a_row_each(trained_run, tmp_path):
    root = tmp_path / "runs"
    for nested in ("a_b/r", "a/b_r"):
        shutil.copytree(trained_run, root / nested)
    out = tmp_path / "eval"
    result = run_cli("evaluate", f"ckpt_path={root}", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = (out / "eval_table.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in rows[1:]] == ["a/b_r", "a_b/r"]
    assert (out / "a" / "b_r" / "metrics.json").is_file()
    assert (out / "a_b" / "r" / "metrics.json").is_file()
