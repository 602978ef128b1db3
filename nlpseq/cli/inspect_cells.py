"""``nlpseq-inspect ckpt_path=PATH text="..."``: the gates of a saved model, token by token.

The checkpoint's encoder is traced over the text with the written-out cell equations
(``nlpseq.diagnostics.cells``), which are first checked to reproduce the model's own
outputs; the run directory gets ``gates.json``, one heatmap PNG per layer and direction
and ``saturation.json`` (how often each gate is below 0.1 or above 0.9 on this text).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nlpseq.cli.common import CONFIG_DIR, check_overrides, run_command
from nlpseq.config import InspectConfig, validate_config
from nlpseq.diagnostics.cells import trace_encoder
from nlpseq.diagnostics.gates import gate_record, saturation, save_gate_heatmaps, save_gate_record
from nlpseq.errors import NlpseqError
from nlpseq.tasks.checkpoint import load_task

log = logging.getLogger("nlpseq.inspect")


def inspect(cfg: DictConfig) -> dict:
    validate_config(cfg, InspectConfig)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task, tokenizer, _ = load_task(cfg.ckpt_path)
    model = task.model
    embedding = getattr(model, "source_embedding", None) or model.embedding
    source = getattr(tokenizer, "source", tokenizer)  # translation: the source side
    ids = source.encode(" ".join(str(cfg.text).split()))
    if not ids:
        raise NlpseqError('text has no tokens; give text="some sentence"')
    with torch.no_grad():
        embedded = embedding(torch.tensor([ids]))  # (1, T, E)
        lengths = torch.tensor([len(ids)])
        expected = model.encoder(embedded, lengths).outputs
        traced = trace_encoder(model.encoder, embedded, lengths)
    gap = float((traced.outputs - expected).abs().max())
    log.info("Cell equations reproduce the encoder's outputs to %.1e", gap)
    if gap > 1e-4:
        raise NlpseqError(f"the traced encoder differs from the model by {gap:.2e}")
    record = gate_record(traced, [source.id_to_token(i) for i in ids])
    written = [save_gate_record(record, run_dir / "gates.json")]
    stats = saturation([(traced, torch.ones(1, len(ids), dtype=torch.bool))])
    (run_dir / "saturation.json").write_text(json.dumps(stats, indent=2) + "\n")
    written.append(run_dir / "saturation.json")
    if cfg.heatmaps:
        written += save_gate_heatmaps(record, run_dir)
    for path in written:
        log.info("Wrote %s", path)
    return {"cell": model.encoder.cell, "tokens": len(ids), "max_difference": gap}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="inspect")
def hydra_main(cfg: DictConfig) -> None:
    run_command(inspect, cfg)


def main() -> None:
    """Console entry point: one-line errors for bad overrides, then Hydra."""
    check_overrides("inspect", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
