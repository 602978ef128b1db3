"""``nlpseq-predict ckpt_path=PATH``: label and probability for each input text.

Input: ``text="..."``, ``input_file=F`` (one text a line) or standard input. Output: one
JSON object per line to ``output_file`` or standard output (logs go to stderr).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nlpseq.cli.common import CONFIG_DIR, check_overrides, pick_device, run_command
from nlpseq.config import PredictConfig, validate_config
from nlpseq.data import BucketBatchSampler, PadCollator
from nlpseq.data.sources import check_utf8
from nlpseq.errors import NlpseqError
from nlpseq.tasks.checkpoint import load_task

log = logging.getLogger("nlpseq.predict")


def read_inputs(cfg: DictConfig) -> list[str]:
    """The texts to classify, from ``text``, ``input_file`` or standard input."""
    if cfg.text is not None and cfg.input_file is not None:
        raise NlpseqError("Give either text=... or input_file=..., not both")
    if cfg.text is not None:
        if not str(cfg.text).strip():
            raise NlpseqError('text is empty; give text="some sentence" or input_file=PATH')
        return [str(cfg.text)]
    if cfg.input_file in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise NlpseqError("No input: give text=..., input_file=PATH or pipe text to stdin")
        lines = sys.stdin.read().splitlines()
    else:
        path = Path(cfg.input_file)
        if not path.is_file():
            raise NlpseqError(f"input_file not found: '{path}'")
        check_utf8(path)
        lines = path.read_text(encoding="utf-8").splitlines()
    texts = [line for line in lines if line.strip()]
    if len(texts) < len(lines):
        log.warning("Skipped %d empty line(s)", len(lines) - len(texts))
    if not texts:
        raise NlpseqError("The input has no non-empty lines")
    return texts


def predict(cfg: DictConfig) -> list[dict]:
    validate_config(cfg, PredictConfig)
    texts = read_inputs(cfg)
    task, tokenizer, _ = load_task(cfg.ckpt_path, expected_task="sentiment")
    task.to(pick_device(cfg.accelerator))
    ids = tokenizer.encode_batch([t.strip() for t in texts])
    examples = [{"input_ids": seq or [tokenizer.unk_id], "index": i} for i, seq in enumerate(ids)]
    sampler = BucketBatchSampler([len(e["input_ids"]) for e in examples], cfg.batch_size,
                                 shuffle=False)
    collate = PadCollator(tokenizer.pad_id)
    loader = [collate([examples[i] for i in batch]) for batch in sampler]
    probs, _, _ = task.predict_proba(loader)

    rows = []
    for text, p in zip(texts, probs.tolist(), strict=True):
        best = max(range(len(p)), key=p.__getitem__)
        rows.append({"text": text, "label": task.label_names[best], "probability": p[best],
                     "probabilities": dict(zip(task.label_names, p, strict=True))})
    lines = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    if cfg.output_file:
        Path(cfg.output_file).write_text(lines, encoding="utf-8")
        log.info("Wrote %d predictions to %s", len(rows), cfg.output_file)
    else:
        sys.stdout.write(lines)
    return rows


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def hydra_main(cfg: DictConfig) -> None:
    run_command(predict, cfg)


def main() -> None:
    """Console entry point: one-line errors for bad overrides, then Hydra."""
    check_overrides("predict", sys.argv[1:])
    hydra_main()


if __name__ == "__main__":
    main()
