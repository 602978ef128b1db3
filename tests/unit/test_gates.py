"""Gate records, heatmaps and saturation statistics of traced encoders."""

import json

import pytest
import torch

from nlpseq.diagnostics.cells import Trace, trace_encoder
from nlpseq.diagnostics.gates import gate_record, saturation, save_gate_heatmaps, save_gate_record
from nlpseq.encoders import RecurrentEncoder


def test_saturation_counts_real_tokens_by_hand():
    forget = torch.tensor([[[0.05, 0.5], [0.95, 0.99], [0.01, 0.01]]])  # (B=1, T=3, H=2)
    mask = torch.tensor([[True, True, False]])  # the third step is padding
    trace = Trace(outputs=torch.zeros(1, 3, 2), mask=mask, final_hidden=torch.zeros(1, 1, 2),
                  final_cell=None, gates={(0, 0): {"forget": forget}})
    stats = saturation([trace])
    # real values: 0.05, 0.5, 0.95, 0.99 -> one below 0.1, two above 0.9
    assert stats == {"layer0/forward/forget": {"below_0.1": 0.25, "above_0.9": 0.5}}


def test_gate_record_json_and_heatmaps_of_an_lstm(tmp_path):
    torch.manual_seed(0)
    encoder = RecurrentEncoder("lstm", 4, 3, num_layers=2, bidirectional=True).eval()
    traced = trace_encoder(encoder, torch.randn(1, 4, 4), torch.tensor([4]))
    record = gate_record(traced, ["a", "b", "c", "d"])
    assert [(e["layer"], e["direction"]) for e in record["layers"]] == [
        (0, "forward"), (0, "backward"), (1, "forward"), (1, "backward")]
    first = record["layers"][0]
    assert set(first["gates"]) == {"input", "forget", "output"}
    assert len(first["gates"]["forget"]) == 4 and len(first["gates"]["forget"][0]) == 3
    expected = traced.gates[(0, 0)]["forget"][0, 2, 1].item()
    assert first["gates"]["forget"][2][1] == pytest.approx(expected, abs=1e-4)
    path = save_gate_record(record, tmp_path / "gates.json")
    assert json.loads(path.read_text())["tokens"] == ["a", "b", "c", "d"]
    images = save_gate_heatmaps(record, tmp_path / "png")
    assert [p.name for p in images] == ["gates_layer0_forward.png", "gates_layer0_backward.png",
                                        "gates_layer1_forward.png", "gates_layer1_backward.png"]
    assert all(p.stat().st_size > 0 for p in images)


def test_a_vanilla_rnn_has_no_gates_to_draw(tmp_path):
    encoder = RecurrentEncoder("rnn", 4, 3).eval()
    record = gate_record(trace_encoder(encoder, torch.randn(1, 2, 4)), ["a", "b"])
    assert record["layers"][0]["gates"] == {}
    assert save_gate_heatmaps(record, tmp_path) == []
