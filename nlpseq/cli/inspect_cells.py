"""``nlpseq-inspect ckpt_path=PATH text="..."``: the gates of a saved model, token by token.

The checkpoint's encoder is traced over the text with the written-out cell equations
(``nlpseq.diagnostics.cells``), which are first checked to reproduce the model's own
outputs; the run directory gets ``gates.json``, one heatmap PNG per layer and direction,
``saturation.json`` (how often each gate is below 0.1 or above 0.9 on this text) and, for
sentiment and language models, ``gradient_flow.json`` (||dL/dh_t|| by distance from the
last token, as the training callback records it).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
import torch
import torch.nn.functional as F
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from nlpseq.cli.common import CONFIG_DIR, check_overrides, run_command
from nlpseq.config import InspectConfig, validate_config
from nlpseq.diagnostics.cells import trace_encoder
from nlpseq.diagnostics.gates import gate_record, saturation, save_gate_heatmaps, save_gate_record
from nlpseq.diagnostics.gradient_flow import GradientProbe, first_to_last_ratio
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
    stats = saturation([traced])
    (run_dir / "saturation.json").write_text(json.dumps(stats, indent=2) + "\n")
    written.append(run_dir / "saturation.json")
    if cfg.heatmaps:
        written += save_gate_heatmaps(record, run_dir)
    flow = gradient_flow(task, ids)
    if flow is not None:
        flow["tokens"] = record["tokens"]
        (run_dir / "gradient_flow.json").write_text(json.dumps(flow, indent=1) + "\n")
        written.append(run_dir / "gradient_flow.json")
    for path in written:
        log.info("Wrote %s", path)
    return {"cell": model.encoder.cell, "tokens": len(ids), "max_difference": gap}


def gradient_flow(task, ids: list[int]) -> dict | None:
    """||dL/dh_t|| of the encoder's top layer by distance from the last token, for the loss
    the model's own output defines on the text: a sentiment model's cross-entropy against
    the label it predicts, a language model's next-token loss. None for translation (its
    loss needs a reference translation)."""
    if task.task_name not in ("sentiment", "generation") or (
            task.task_name == "generation" and len(ids) < 2):
        log.info("No gradient-flow curve: %s", "a translation loss needs a reference"
                 if task.task_name == "translation" else "the text needs 2 tokens or more")
        return None
    model, probe = task.model, GradientProbe()
    tokens = torch.tensor([ids])
    model.encoder.diagnostic_forward = probe.forward
    try:
        if task.task_name == "sentiment":
            logits = model(tokens, torch.tensor([len(ids)]))  # (1, C)
            loss = F.cross_entropy(logits, logits.argmax(-1))
        else:
            logits, _ = model(tokens[:, :-1], None)  # (1, T - 1, V)
            loss = F.cross_entropy(logits[0], tokens[0, 1:])
        loss.backward()
    finally:
        model.encoder.diagnostic_forward = None
        model.zero_grad(set_to_none=True)
    curve = probe.curve()
    return {"loss": float(loss), "first_over_last": first_to_last_ratio(curve),
            "norm_by_distance": curve.tolist()}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="inspect")
def hydra_main(cfg: DictConfig) -> None:
    run_command(inspect, cfg)


def main() -> None:
    """Console entry point: one-line errors for bad overrides, then Hydra."""
    check_overrides("inspect", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
