"""``nlpseq-inspect ckpt_path=PATH text="..." [split=validation]``: what a saved model's
cells do, step by step.

The checkpoint's encoder is traced with the written-out cell equations
(``nlpseq.diagnostics.cells``), first checked to reproduce the model's own outputs.

- ``text="..."`` (or, for a probe checkpoint, the first sequence of its split): the run
  directory gets ``gates.json``, one heatmap PNG per layer and direction,
  ``saturation.json`` (how often each gate is below 0.1 or above 0.9 on this input) and
  ``gradient_flow.json`` (||dL/dh_t|| by distance from the last step, as the training
  callback records it; not for translation, whose loss needs a reference).
- ``split=validation``: ``saturation_<split>.json``, the same statistics over a whole
  split of the checkpoint's data (at most ``max_batches`` batches).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import instantiate
from omegaconf import DictConfig
from torch import Tensor

from nlpseq.cli import entry
from nlpseq.cli.common import run_command, write_atomic
from nlpseq.config import InspectConfig, validate_config
from nlpseq.config.targets import allowed_targets
from nlpseq.diagnostics.cells import Trace, trace_encoder
from nlpseq.diagnostics.gates import gate_record, saturation, save_gate_heatmaps, save_gate_record
from nlpseq.diagnostics.gradient_flow import GradientProbe, first_to_last_ratio
from nlpseq.errors import NlpseqError
from nlpseq.tasks.checkpoint import load_task

log = logging.getLogger("nlpseq.inspect")


def inspect(cfg: DictConfig) -> dict:
    validate_config(cfg, InspectConfig)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    task, tokenizer, train_cfg = load_task(cfg.ckpt_path, trusted=allowed_targets(cfg))
    from_split = task.text_option is None  # reads no text: trace a sequence of a split
    if from_split and cfg.text is not None:
        raise NlpseqError(f"a {task.task_name} checkpoint reads generated sequences, not text: "
                          "leave text out (the first sequence of split=... is traced)")
    if not from_split and cfg.text is None and cfg.split is None:
        raise NlpseqError('give text="..." to trace a text, or split=validation for gate '
                          "saturation over a split of the checkpoint's data")
    summary = {"cell": task.model.encoder.cell}
    written = []
    split = cfg.split or ("validation" if from_split else None)  # the example comes from it
    loader = split_loader(task, tokenizer, train_cfg, split) if split else None  # built once
    if from_split or cfg.text is not None:
        if from_split:
            inputs, lengths, labels, loss = task.split_example(next(iter(loader)))
        else:
            inputs, lengths, labels, loss = text_example(task, tokenizer, str(cfg.text))
        written += trace_example(task, inputs, lengths, labels, run_dir, cfg.heatmaps, summary)
        if loss is not None:
            flow = gradient_flow(task, loss)
            flow["tokens"] = labels
            summary["first_over_last"] = flow["first_over_last"]
            written.append(write_json(run_dir / "gradient_flow.json", flow))
    if cfg.split is not None:
        stats = saturation(traces_of(task, loader, cfg.max_batches))
        written.append(write_json(run_dir / f"saturation_{cfg.split}.json", stats))
    for path in written:
        log.info("Wrote %s", path)
    return summary


def text_example(task, tokenizer, text: str):
    """The text as encoder inputs (1, T, E), its lengths, its tokens, and the loss its
    model defines on it (``task.text_loss``; None when it has none)."""
    source = getattr(tokenizer, "source", tokenizer)  # a tokenizer pair: the source side
    ids = task.reading_order(source.encode(" ".join(text.split())))
    if not ids:
        raise NlpseqError('text has no tokens; give text="some sentence"')
    with torch.no_grad():
        inputs, lengths = task.encoder_inputs(task.text_batch(ids))
    return inputs, lengths, [source.id_to_token(i) for i in ids], task.text_loss(ids)


def trace_example(task, inputs: Tensor, lengths: Tensor | None, labels: list[str],
                  run_dir: Path, heatmaps: bool, summary: dict) -> list[Path]:
    """Trace one input, check it against the model, write its gates and saturation."""
    encoder = task.model.encoder
    with torch.no_grad():
        expected = encoder(inputs, lengths).outputs
        traced = trace_encoder(encoder, inputs, lengths)
    gap = float((traced.outputs - expected).abs().max())
    log.info("Cell equations reproduce the encoder's outputs to %.1e", gap)
    if gap > 1e-4:
        raise NlpseqError(f"the traced encoder differs from the model by {gap:.2e}")
    summary.update(steps=len(labels), max_difference=gap)
    record = gate_record(traced, labels)
    written = [save_gate_record(record, run_dir / "gates.json"),
               write_json(run_dir / "saturation.json", saturation([traced]))]
    if heatmaps:
        written += save_gate_heatmaps(record, run_dir)
    return written


def gradient_flow(task, loss: Callable[[], Tensor]) -> dict:
    """||dL/dh_t|| of the encoder's top layer by distance from the last step, for ``loss``
    computed with the encoder traced (``GradientProbe``)."""
    model, probe = task.model, GradientProbe()
    model.encoder.diagnostic_forward = probe.forward
    try:
        value = loss()
        value.backward()
    finally:
        model.encoder.diagnostic_forward = None
        model.zero_grad(set_to_none=True)
    curve = probe.curve()
    return {"loss": float(value), "first_over_last": first_to_last_ratio(curve),
            "norm_by_distance": curve.tolist()}


def split_loader(task, tokenizer, train_cfg: DictConfig, split: str):
    """An evaluation loader over ``split`` of the data the checkpoint was trained on."""
    labels = getattr(task, "label_names", None)
    datamodule = instantiate(train_cfg.data, **({"label_names": labels} if labels else {}))
    datamodule.load_for_evaluation(split)
    datamodule.encode(tokenizer, splits=(split,))
    return datamodule.split_loader(split)


def traces_of(task, loader, max_batches: int) -> Iterator[Trace]:
    """The encoder traced over the first ``max_batches`` batches, one at a time (each block
    of a language model's stream from a zero state)."""
    for number, batch in enumerate(loader):
        if number == max_batches:
            return
        with torch.no_grad():
            inputs, lengths = task.encoder_inputs(batch)
            yield trace_encoder(task.model.encoder, inputs, lengths)


def write_json(path: Path, value) -> Path:
    return write_atomic(path, json.dumps(value, indent=1) + "\n")


def run(cfg: DictConfig) -> None:
    """What ``nlpseq-inspect`` runs on the composed config (``nlpseq.cli.entry``)."""
    run_command(inspect, cfg)


def main() -> None:
    entry.inspect()


if __name__ == "__main__":
    main()
