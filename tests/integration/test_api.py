"""The Python API as a user calls it: the documented example runs as written, and
mistakes raise NlpseqError with the command's one line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

import nlpseq
from nlpseq.api import _quoted
from tests.integration.conftest import run_cli

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "python_api.py"


def test_the_documented_example_runs_as_written(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLE), str(tmp_path)], capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    accuracy = next(line for line in lines if "validation accuracy" in line)
    assert float(accuracy.split()[-1]) > 0.75 # chance is 0.5 on the balanced sample
    labels = [line.split()[0] for line in lines if line.endswith(("gripping film", "lifeless"))]
    assert labels == ["positive", "negative"]
    assert any(line.startswith("evaluated again: ") for line in lines)
    generated = next(line for line in lines if line.startswith("'"))  # repr of a str
    assert len(eval(generated)) > 0  # noqa: S307 (the repr of a string printed above)
    translated = next(line for line in lines if line.startswith("['"))
    assert len(eval(translated)) == 1  # noqa: S307
    assert lines[-1] == "error: Unknown choice encoder=lsmt; choose one of gru, lstm, rnn"
    for run in ("sentiment", "lm", "translation"):
        assert (tmp_path / run / "checkpoints" / "best.ckpt").is_file(), run
        assert (tmp_path / run / "train.log").is_file(), run
    assert (tmp_path / "eval" / "metrics.json").is_file()


def test_a_loaded_model_predicts_in_batches_like_the_command(trained_run):
    model = nlpseq.load(trained_run)
    assert model.task_name == "sentiment" and model.label_names == ["negative", "positive"]
    rows = model.predict(["a gripping film", "dull", "a gripping film"], batch_size=2)
    assert [row["text"] for row in rows] == ["a gripping film", "dull", "a gripping film"]
    assert rows[0]["label"] == rows[2]["label"]  # the same text in a batch of 2 and of 1
    for label, probability in rows[0]["probabilities"].items():  # equal but for rounding
        assert rows[2]["probabilities"][label] == pytest.approx(probability, abs=1e-6)
    assert sum(rows[1]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    alone = model.predict("dull")[0]
    assert alone["label"] == rows[1]["label"]
    assert alone["probability"] == pytest.approx(rows[1]["probability"], abs=1e-5)
    command = run_cli("predict", f"ckpt_path={trained_run}", "text=dull")
    printed = json.loads(command.stdout)
    assert printed["label"] == alone["label"]
    assert printed["probabilities"] == pytest.approx(alone["probabilities"], abs=1e-5)


def test_evaluate_on_other_data_gives_the_commands_metrics(trained_run, tmp_path):
    sample_test = Path(nlpseq.__file__).parent / "data" / "sample" / "sentiment_test.tsv"
    metrics = nlpseq.evaluate(trained_run, data=["data=files", f"data.test_file={sample_test}"],
                              run_dir=tmp_path / "eval")
    trained = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test/acc"] == pytest.approx(trained["test/acc"], abs=1e-6)  # the same file
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text()) == metrics


@pytest.mark.parametrize(("call", "message"), [
    (lambda run: nlpseq.load(run).generate("x"),
     "generate needs a generation model; this is a sentiment one (use predict)"),
    (lambda run: nlpseq.load(run).translate(["x"]),
     "translate needs a translation model; this is a sentiment one"),
    (lambda run: nlpseq.load(run).predict(["x"], beam_size=3),
     "beam_size: not an option of a sentiment model; it reads batch_size"),
    (lambda run: nlpseq.load(run).predict([]), "No texts to predict"),
    (lambda run: nlpseq.load(run / "nowhere.ckpt"), "Checkpoint not found"),
    (lambda run: nlpseq.train(["encoder.hiden_size=8"]), "Unknown key 'encoder.hiden_size'"),
    (lambda run: nlpseq.train(["-m", "encoder=gru,lstm"]), "-m: flags are the command line's"),
    (lambda run: nlpseq.train(["trainer.max_epochs=1"], run_dir=run),
     "already holds the record of a run"),
    (lambda run: nlpseq.evaluate(run, data=["data=nope"]), "Unknown choice data=nope"),
    (lambda run: nlpseq.train("trainer.max_epochs=1"),
     "overrides must be a list of 'key=value' strings, got str 'trainer.max_epochs=1'"),
    (lambda run: nlpseq.train([5]), "overrides must be a list of 'key=value' strings; 5 is int"),
    (lambda run: nlpseq.evaluate(run, data="data=files"),
     "data must be a list of 'key=value' strings, got str"),
    (lambda run: nlpseq.load(None), "path must be a run directory or a checkpoint file"),
    (lambda run: nlpseq.load(run).predict(None), "texts must be a string or a list of strings"),
    (lambda run: nlpseq.load(run).predict(["ok", 5]), "texts[1] is int, not a string"),
    (lambda run: nlpseq.load(run).predict(["x"], batch_size="8"),
     "batch_size='8' is not valid: expected int"),
])
def test_mistakes_raise_nlpseq_error_with_the_commands_line(trained_run, call, message):
    with pytest.raises(nlpseq.NlpseqError) as caught:
        call(trained_run)
    assert message in str(caught.value)


def test_paths_with_quotes_commas_and_spaces_are_one_override_value():
    assert _quoted("/tmp/a b,c'd") == "'/tmp/a b,c\\'d'"


def test_import_nlpseq_stays_light():
    probe = ("import sys, nlpseq; print(sorted(m for m in ('torch', 'pytorch_lightning', "
             "'hydra', 'datasets') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == "[]", result.stderr[-2000:]
