"""Gate values of a traced encoder (``nlpseq.diagnostics.cells.trace_encoder``) as JSON,
heatmap PNGs and saturation statistics.

A gate near 0 or 1 acts as a switch: an LSTM forget gate near 1 keeps its cell's content,
an update gate near 1 lets a GRU unit copy its state forward. ``saturation`` counts how
often each gate is past 0.1 / 0.9 over real (non-padding) tokens of a dataset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import Tensor

from nlpseq.diagnostics.cells import Trace

DIRECTIONS = ("forward", "backward")


def gate_record(trace: Trace, tokens: list[str], row: int = 0) -> dict:
    """One sequence's gates (and LSTM cell states) per layer and direction, JSON-able:
    ``{"tokens": [...], "layers": [{"layer", "direction", "gates": {name: [[per unit] per
    token]}, "cell": [[...]]}]}``; only the sequence's first ``len(tokens)`` steps."""
    steps = len(tokens)
    layers = []
    for (layer, direction), gates in sorted(trace.gates.items()):
        entry = {"layer": layer, "direction": DIRECTIONS[direction],
                 "gates": {name: _rounded(values[row, :steps]) for name, values in gates.items()}}
        if (layer, direction) in trace.cells:
            entry["cell"] = _rounded(trace.cells[(layer, direction)][row, :steps])
        layers.append(entry)
    return {"tokens": tokens, "layers": layers}


def save_gate_record(record: dict, path: Path) -> Path:
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path


def save_gate_heatmaps(record: dict, folder: Path) -> list[Path]:
    """One PNG per layer and direction: a heatmap (tokens x hidden units) per gate, and the
    LSTM cell state beside them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    tokens = record["tokens"]
    for entry in record["layers"]:
        panels = dict(entry["gates"]) | ({"cell state": entry["cell"]} if "cell" in entry else {})
        if not panels:
            continue  # a vanilla RNN has no gates
        size = (3.2 * len(panels), min(0.3 * len(tokens), 16) + 1.5)
        every = max(1, len(tokens) // 50)  # at most ~50 labelled steps
        figure, axes = plt.subplots(1, len(panels), figsize=size, squeeze=False)
        for axis, (name, values) in zip(axes[0], panels.items(), strict=True):
            bounds = (-1, 1) if name == "cell state" else (0, 1)
            image = axis.imshow(values, aspect="auto", cmap="viridis", vmin=bounds[0],
                                vmax=bounds[1], interpolation="nearest")
            axis.set(title=name, xlabel="hidden unit")
            axis.set_yticks(range(0, len(tokens), every), tokens[::every], fontsize=7)
            figure.colorbar(image, ax=axis, fraction=0.046)
        figure.suptitle(f"layer {entry['layer']}, {entry['direction']}")
        figure.tight_layout()
        path = folder / f"gates_layer{entry['layer']}_{entry['direction']}.png"
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def saturation(traces: Iterable[Trace], low: float = 0.1,
               high: float = 0.9) -> dict[str, dict[str, float]]:
    """Per gate ("layer0/forward/forget"), the fraction of its values below ``low`` and
    above ``high`` over the real tokens (``Trace.mask``) of every trace. ``traces`` may be
    a generator, so a whole dataset is counted one batch at a time."""
    counts: dict[str, list[float]] = {}
    for trace in traces:
        for (layer, direction), gates in trace.gates.items():
            for name, values in gates.items():
                real = values[trace.mask]  # (tokens, H)
                key = f"layer{layer}/{DIRECTIONS[direction]}/{name}"
                total = counts.setdefault(key, [0.0, 0.0, 0.0])
                total[0] += float((real < low).sum())
                total[1] += float((real > high).sum())
                total[2] += real.numel()
    return {key: {f"below_{low}": below / n, f"above_{high}": above / n}
            for key, (below, above, n) in sorted(counts.items()) if n}


def _rounded(values: Tensor) -> list[list[float]]:
    return torch.round(values.float() * 1e4).div(1e4).tolist()
