"""Long-range probes through the real commands: train any cell on a generated probe with
the normal CLI, evaluate and inspect its checkpoint, and the errors a user can cause."""

import json

import pytest
from hydra.utils import instantiate

from nlpseq.cli.train import check_task_and_data
from nlpseq.errors import NlpseqError
from tests.integration.conftest import compose_config, error_line, run_cli

TINY_PROBE = ["task=probe", "data=copy", "data.length=9", "data.copy_length=2",
              "data.num_symbols=3", "data.train_size=64", "data.validation_size=32",
              "data.test_size=32", "data.batch_size=16", "encoder=gru",
              "encoder.hidden_size=8", "trainer.max_epochs=2",
              "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
              "logger=none"]


@pytest.fixture(scope="module")
def probe_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("probe") / "run"
    result = run_cli("train", *TINY_PROBE, f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_training_on_a_probe_reports_accuracy_beside_chance(probe_run):
    metrics = json.loads((probe_run / "metrics.json").read_text())
    assert metrics["test/chance"] == pytest.approx(1 / 3)
    assert 0.0 <= metrics["test/acc"] <= 1.0 and metrics["test/examples"] == 32
    assert not list(probe_run.glob("tokenizer*"))  # generated inputs: no tokenizer


def test_evaluating_the_checkpoint_regenerates_the_same_test_set(tmp_path, probe_run):
    result = run_cli("evaluate", f"ckpt_path={probe_run}", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    trained = json.loads((probe_run / "metrics.json").read_text())
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    assert evaluated["test/acc"] == pytest.approx(trained["test/acc"])
    assert evaluated["test/loss"] == pytest.approx(trained["test/loss"], rel=1e-5)


def test_a_probe_checkpoint_is_evaluated_on_longer_sequences(tmp_path, probe_run):
    result = run_cli("evaluate", f"ckpt_path={probe_run}", "data=copy", "data.length=30",
                     "data.copy_length=2", "data.num_symbols=3", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    evaluated = json.loads((tmp_path / "metrics.json").read_text())
    trained = json.loads((probe_run / "metrics.json").read_text())
    # what data= does not set is the run's own: its test_size of 32 sequences
    assert evaluated["test/examples"] == 32 and 0.0 <= evaluated["test/acc"] <= 1.0
    assert evaluated["test/loss"] != pytest.approx(trained["test/loss"])  # other sequences


def test_inspect_traces_a_generated_sequence_and_its_gradient(tmp_path, probe_run):
    result = run_cli("inspect_cells", f"ckpt_path={probe_run}", "split=test", "heatmaps=false",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    record = json.loads((tmp_path / "gates.json").read_text())
    tokens = record["tokens"]  # 2 symbols, 4 blanks, the delimiter, 2 recall steps
    assert len(tokens) == 9 and tokens[2:6] == ["_"] * 4 and tokens[6] == "|"
    assert set(record["layers"][0]["gates"]) == {"reset", "update"}
    flow = json.loads((tmp_path / "gradient_flow.json").read_text())
    assert len(flow["norm_by_distance"]) == 9 and flow["first_over_last"] > 0
    stats = json.loads((tmp_path / "saturation_test.json").read_text())
    assert set(stats) == {"layer0/forward/reset", "layer0/forward/update"}


def test_inspect_counts_gate_saturation_over_a_split(tmp_path, trained_run):
    result = run_cli("inspect_cells", f"ckpt_path={trained_run}", "split=validation",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    stats = json.loads((tmp_path / "saturation_validation.json").read_text())
    assert set(stats) == {f"layer0/{d}/{g}" for d in ("forward", "backward")
                          for g in ("input", "forget", "output")}
    for values in stats.values():
        assert 0.0 <= values["below_0.1"] + values["above_0.9"] <= 1.0
    assert not (tmp_path / "gates.json").exists()  # no text given: only the split


def test_probe_data_without_task_probe_is_one_line(tmp_path):
    result = run_cli("train", "data=adding", "logger=none", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert error_line(result) == (
        "error: data=adding is a probe dataset and cannot train task=sentiment; pick a "
        "sentiment dataset (task=probe trains on it)")


@pytest.mark.parametrize(("overrides", "message"), [
    (["encoder.bidirectional=true"], "task=probe measures memory over time; a bidirectional "
     "encoder reads the first steps last. Set encoder.bidirectional=false"),
    (["data=copy", "data.length=10"],
     "the copy task needs data.length >= 2 * data.copy_length + 1 = 21; got 10"),
])
def test_probe_mistakes_are_refused_before_training(tmp_path, overrides, message):
    cfg = compose_config("train", ["task=probe", *overrides], tmp_path)
    with pytest.raises(NlpseqError) as caught:
        check_task_and_data(cfg)
        instantiate(cfg.data).load()
    assert str(caught.value) == message


def test_predict_refuses_a_probe_checkpoint(probe_run):
    result = run_cli("predict", f"ckpt_path={probe_run}", "text=hello")
    assert result.returncode == 2
    assert "is a probe checkpoint: it reads generated sequences, not text" in error_line(result)
