"""Diagnostics through the real commands: nlpseq-inspect (gates per token as JSON and PNG,
saturation) and the gradient-flow callback (callbacks=diagnostics)."""

import json

import pytest

from tests.integration.conftest import TINY, error_line, run_cli


def test_inspect_writes_the_gates_of_each_token(tmp_path, trained_run):
    out = tmp_path / "inspect"
    result = run_cli("inspect_cells", f"ckpt_path={trained_run}", "text=what a dull movie",
                     f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Cell equations reproduce the encoder's outputs to" in result.stderr
    record = json.loads((out / "gates.json").read_text())
    assert record["tokens"] == ["what", "a", "dull", "movie"]
    forward = record["layers"][0]
    assert forward["direction"] == "forward" and set(forward["gates"]) == {"input", "forget",
                                                                          "output"}
    assert len(forward["gates"]["forget"]) == 4 and len(forward["cell"]) == 4
    stats = json.loads((out / "saturation.json").read_text())
    assert 0.0 <= stats["layer0/forward/forget"]["above_0.9"] <= 1.0
    assert (out / "gates_layer0_forward.png").stat().st_size > 0
    flow = json.loads((out / "gradient_flow.json").read_text())  # loss: the predicted label
    assert len(flow["norm_by_distance"]) == 4 and min(flow["norm_by_distance"]) > 0
    assert flow["first_over_last"] == pytest.approx(
        flow["norm_by_distance"][3] / flow["norm_by_distance"][0], rel=1e-5)


def test_inspect_without_tokens_is_one_line(tmp_path, trained_run):
    result = run_cli("inspect_cells", f"ckpt_path={trained_run}", "text=' '",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert error_line(result) == 'error: text has no tokens; give text="some sentence"'


def test_the_gradient_flow_callback_writes_the_curve_every_n_steps(tmp_path):
    result = run_cli("train", *TINY, "debug=limit", "logger=csv", "encoder=rnn",
                     "callbacks=diagnostics", "callbacks.gradient_flow.every_n_steps=2",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in (tmp_path / "gradient_flow.jsonl").open()]
    assert [line["step"] for line in lines] == [0, 2, 4, 6, 8]  # 2 epochs of 5 batches
    for line in lines:
        assert line["grad_norm_before_clip"] > 0
        assert line["norm_by_distance"][0] > 0 and line["first_over_last"] > 0
    logged = (tmp_path / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "diagnostics/clip_fraction" in logged and "diagnostics/grad_norm" in logged
