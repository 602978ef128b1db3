"""``nlpseq-predict ckpt_path=PATH``: what a saved model says about each input.

Sentiment checkpoints: ``text="..."``, ``input_file=F`` (one text a line) or standard input
give one JSON object per line (label and probabilities). Generation checkpoints:
``prompt="..."`` streams the continuation to the terminal; prompts from ``input_file`` or
standard input give one JSON object per prompt. Output goes to ``output_file`` or standard
output; logs go to stderr. Translation checkpoints: ``text="..."``, ``input_file=F`` or
standard input give one translation per line (``beam_size``, ``length_penalty``,
``n_best``); ``attention_file=att.json|att.png`` saves the first sentence's attention.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from nlpseq.cli.common import (
    CONFIG_DIR,
    pick_device,
    run_command,
    run_entry_point,
    write_atomic,
)
from nlpseq.config import PredictConfig, validate_config
from nlpseq.config.targets import allowed_targets
from nlpseq.data import BucketBatchSampler, PadCollator
from nlpseq.data.sources import check_utf8
from nlpseq.decoding import check_sampling_options
from nlpseq.diagnostics import save_attention
from nlpseq.errors import NlpseqError
from nlpseq.tasks.checkpoint import check_task, load_task
from nlpseq.tasks.translation import check_beam_options

log = logging.getLogger("nlpseq.predict")


def read_inputs(cfg: DictConfig) -> list[str]:
    """The texts to classify, from ``text``, ``input_file`` or standard input."""
    if cfg.text is not None and cfg.input_file is not None:
        raise NlpseqError("Give either text=... or input_file=..., not both")
    if cfg.text is not None:
        if not str(cfg.text).strip():
            raise NlpseqError('text is empty; give text="some sentence" or input_file=PATH')
        return [str(cfg.text)]
    return read_lines(cfg.input_file)


def read_lines(input_file: str | None, keep_empty: bool = False) -> list[str]:
    """The non-empty lines of ``input_file``, or of standard input when it is None or "-";
    ``keep_empty`` keeps every line (translation answers line for line)."""
    if input_file in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise NlpseqError("No input: give text=..., input_file=PATH or pipe text to stdin")
        lines = sys.stdin.read().splitlines()
    else:
        path = Path(input_file)
        if not path.is_file():
            raise NlpseqError(f"input_file not found: '{path}'")
        check_utf8(path)
        lines = path.read_text(encoding="utf-8").splitlines()
    texts = [line for line in lines if line.strip()]
    if keep_empty and texts:
        return lines
    if len(texts) < len(lines):
        log.warning("Skipped %d empty line(s)", len(lines) - len(texts))
    if not texts:
        raise NlpseqError("The input has no non-empty lines")
    return texts


def check_outputs(cfg: DictConfig) -> None:
    """An output never replaces an input: ``output_file`` and ``attention_file`` must name
    other files than ``input_file``, the checkpoint and each other, however the path is
    spelt (a symlink, a hard link, ``./``, ``..``); not a directory, nor any checkpoint."""
    ckpt = Path(str(cfg.ckpt_path)).expanduser()
    inputs = {"input_file": cfg.input_file, "ckpt_path": cfg.ckpt_path,
              "checkpoint": ckpt / "checkpoints" / "best.ckpt" if ckpt.is_dir() else None}
    outputs = {"output_file": cfg.output_file, "attention_file": cfg.attention_file}
    for key, output in outputs.items():
        if output in (None, "-"):
            continue
        if Path(output).is_dir():
            raise NlpseqError(f"{key} '{output}' is a directory; give a file name")
        for other, path in [*inputs.items(), *outputs.items()]:
            if other != key and path not in (None, "-") and same_file(output, path):
                raise NlpseqError(f"{key} '{output}' is the {other} '{path}': writing it would "
                                  f"destroy it; pick another {key}")
        if Path(output).suffix == ".ckpt" and Path(output).exists():
            raise NlpseqError(f"{key} '{output}' is a checkpoint: writing it would destroy "
                              f"it; pick another {key}")


def same_file(a, b) -> bool:
    """Whether two existing paths name one file."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def predict(cfg: DictConfig) -> list[dict]:
    validate_config(cfg, PredictConfig)
    check_outputs(cfg)
    if cfg.prompt is not None:
        return generate(cfg)
    task, tokenizer, _ = load_task(cfg.ckpt_path, trusted=allowed_targets(cfg))
    if task.task_name == "probe":
        raise NlpseqError(f"'{cfg.ckpt_path}' is a probe checkpoint: it reads generated "
                          "sequences, not text; score it with nlpseq-eval or trace it with "
                          "nlpseq-inspect")
    if task.task_name == "translation":
        return translate(cfg, task)
    if cfg.attention_file is not None:
        raise NlpseqError(f"attention_file needs a translation checkpoint; '{cfg.ckpt_path}' "
                          f"is a {task.task_name} one")
    texts = read_inputs(cfg)
    if task.task_name == "generation":
        if cfg.text is not None:
            raise NlpseqError(f"'{cfg.ckpt_path}' is a generation checkpoint: give "
                              f'prompt="..." instead of text=...')
        return generate(cfg, prompts=texts, task=task)
    check_task(task.task_name, cfg.ckpt_path, "sentiment")
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
    write_json_lines(rows, cfg.output_file)
    return rows


def write_json_lines(rows: list[dict], output_file: str | None) -> None:
    write_text_lines([json.dumps(row, ensure_ascii=False) for row in rows], output_file)


def generate(cfg: DictConfig, prompts: list[str] | None = None, task=None) -> list[dict]:
    """Continue ``prompt`` (streamed to the terminal) or each prompt of a file (JSON lines)."""
    check_sampling_options(cfg.max_new_tokens, cfg.temperature, cfg.top_k, cfg.top_p)
    if cfg.prompt is not None and (cfg.text is not None or cfg.input_file is not None):
        raise NlpseqError("Give prompt=... alone, without text=... or input_file=...")
    if task is None:
        task, _, _ = load_task(cfg.ckpt_path, expected_task="generation",
                               trusted=allowed_targets(cfg))
    task.to(pick_device(cfg.accelerator))
    options = {"greedy": cfg.greedy, "temperature": cfg.temperature, "top_k": cfg.top_k,
               "top_p": cfg.top_p, "seed": cfg.seed, "stop_at_eos": cfg.stop_at_eos}
    if prompts is None:  # one prompt: stream the continuation as it is generated
        if not cfg.prompt:
            start = task.tokenizer.id_to_token(task.start_id)
            log.info("Empty prompt: generating from the start token %r", start)
        stream = cfg.output_file is None
        if stream:
            sys.stdout.write(cfg.prompt)
            sys.stdout.flush()
        text = task.complete(cfg.prompt, cfg.max_new_tokens, **options,
                             on_text=_print_now if stream else None)
        rows = [{"prompt": cfg.prompt, "continuation": text}]
        if stream:
            sys.stdout.write("\n")
        else:
            write_json_lines(rows, cfg.output_file)
        return rows
    rows = [{"prompt": prompt, "continuation": task.complete(prompt, cfg.max_new_tokens,
                                                              **options)}
            for prompt in prompts]
    write_json_lines(rows, cfg.output_file)
    return rows


def translate(cfg: DictConfig, task) -> list[dict]:
    """Translate ``text`` or every line of ``input_file`` / standard input, one output line
    per input line (an empty line stays empty); ``n_best`` > 1 gives JSON lines."""
    beam_size = task.beam_size if cfg.beam_size is None else cfg.beam_size
    check_beam_options(beam_size, cfg.n_best, cfg.length_penalty or 0.0)
    lines = read_inputs(cfg) if cfg.text is not None else read_lines(cfg.input_file,
                                                                     keep_empty=True)
    task.to(pick_device(cfg.accelerator))
    wanted = [line for line in lines if line.strip()]
    found = iter(task.translate(wanted, beam_size, cfg.length_penalty, cfg.n_best,
                                batch_size=cfg.batch_size))
    rows = [{"source": line, "translations": [{"text": text, "score": score}
                                              for text, score in next(found)]}
            if line.strip() else {"source": line, "translations": [{"text": "", "score": 0.0}]}
            for line in lines]
    if cfg.n_best > 1:
        write_json_lines(rows, cfg.output_file)
    else:
        write_text_lines([row["translations"][0]["text"] for row in rows], cfg.output_file)
    if cfg.attention_file is not None:
        path = save_attention(task.attention_map(wanted[0], beam_size), cfg.attention_file)
        log.info("Attention weights of %r written to %s", wanted[0][:40], path)
    return rows


def write_text_lines(lines: list[str], output_file: str | None) -> None:
    """One line per item to ``output_file`` (whole or not at all; missing folders are
    created; through a symlink, its target is written), or to standard output."""
    text = "".join(line + "\n" for line in lines)
    if output_file:
        try:
            write_atomic(Path(output_file).resolve(), text)
        except OSError as err:
            raise NlpseqError(f"cannot write output_file '{output_file}': "
                              f"{err.strerror or err}") from None
        log.info("Wrote %d lines to %s", len(lines), output_file)
    else:
        sys.stdout.write(text)


def _print_now(piece: str) -> None:
    sys.stdout.write(piece)
    sys.stdout.flush()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
def hydra_main(cfg: DictConfig) -> None:
    run_command(predict, cfg)


def main() -> None:
    """Console entry point (``nlpseq.cli.common.run_entry_point``)."""
    run_entry_point("predict", hydra_main, lock=False)


if __name__ == "__main__":
    main()
