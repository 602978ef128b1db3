"""nlpseq-inspect on a trained checkpoint: gates per token as JSON and PNG, saturation."""

import json

from tests.integration.conftest import error_line, run_cli


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


def test_inspect_without_tokens_is_one_line(tmp_path, trained_run):
    result = run_cli("inspect_cells", f"ckpt_path={trained_run}", "text=' '",
                     f"hydra.run.dir={tmp_path}")
    assert result.returncode == 2
    assert error_line(result) == 'error: text has no tokens; give text="some sentence"'
