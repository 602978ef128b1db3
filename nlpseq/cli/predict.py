"""``nlpseq-predict ckpt_path=PATH``: what a saved model says about each input.

Sentiment checkpoints: ``text="..."``, ``input_file=F`` (one text a line) or standard input
give one JSON object per line (label and probabilities). Generation checkpoints:
``prompt="..."`` streams the continuation to the terminal; prompts from ``input_file`` or
standard input give one JSON object per prompt. Output goes to ``output_file`` or standard
output; logs go to stderr. Translation checkpoints: ``text="..."``, ``input_file=F`` or
standard input give one translation per line (``beam_size``, ``length_penalty``,
``n_best``); ``attention_file=att.json|att.png`` saves the first sentence's attention.
``ckpt_path`` may also name an ONNX export (``nlpseq-export``; its directory or model file),
run through onnxruntime: the same outputs, translation greedy only.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from pathlib import Path

from omegaconf import DictConfig

from nlpseq.cli import entry
from nlpseq.cli.common import (
    pick_device,
    run_command,
    write_atomic,
)
from nlpseq.cli.rundir import RECORD_FOLDERS, run_around
from nlpseq.config import PredictConfig, validate_config
from nlpseq.config.targets import allowed_targets
from nlpseq.data import readers
from nlpseq.data.sources import check_utf8, decode_utf8
from nlpseq.errors import NlpseqError
from nlpseq.export.checks import is_export_file
from nlpseq.export.runtime import is_export
from nlpseq.tasks import tasks_reading
from nlpseq.tasks.checkpoint import load_task

log = logging.getLogger("nlpseq.predict")


def read_inputs(cfg: DictConfig, option: str, keep_empty: bool) -> list[str]:
    """The inputs, from the task's input option (``text`` or ``prompt``), ``input_file`` or
    standard input. An empty prompt is one ("" starts from the start token)."""
    value = cfg.get(option)
    if value is not None and cfg.input_file is not None:
        raise NlpseqError(f"Give either {option}=... or input_file=..., not both")
    if value is not None:
        if not str(value).strip() and option == "text":
            raise NlpseqError('text is empty; give text="some sentence" or input_file=PATH')
        return [str(value)]
    return read_lines(cfg.input_file, keep_empty)


def read_lines(input_file: str | None, keep_empty: bool = False) -> list[str]:
    """The non-empty lines of ``input_file``, or of standard input when it is None or "-";
    ``keep_empty`` keeps every line (translation answers line for line)."""
    if input_file in (None, "-"):
        if sys.stdin is None or sys.stdin.isatty():
            raise NlpseqError("No input: give text=..., input_file=PATH or pipe text to stdin")
        source = "standard input"
        stream = getattr(sys.stdin, "buffer", None)  # bytes, decoded as a file's are
        text = (decode_utf8(stream.read(), source, "give UTF-8 text") if stream is not None
                else sys.stdin.read())
    else:
        path = Path(input_file)
        if path.is_dir():
            raise NlpseqError(f"input_file '{path}' is a directory; give a file, one input a line")
        if not path.is_file():
            raise NlpseqError(f"input_file not found: '{path}'")
        check_utf8(path)
        text, source = path.read_text(encoding="utf-8"), str(path)
    # the lines as a training .txt file's are read: a byte-order mark dropped, LF and CRLF
    # end a line, a lone CR, U+2028 and the like do not
    lines = readers.parse(text, ".txt", source).columns["text"]
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
    spelt (a symlink, a hard link, ``./``, ``..``); not a directory, nor any checkpoint, nor
    a file of a run's record or of an export (``export.json``, a model or tokenizer file)."""
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
        if is_export_file(output):
            raise NlpseqError(f"{key} '{output}' is part of an exported model: writing it "
                              f"would destroy it; pick another {key}")
        if is_run_record(Path(output)):
            raise NlpseqError(f"{key} '{output}' is part of a run's record: writing it would "
                              f"destroy it; pick another {key}")


WRITTEN_FOLDERS = (*RECORD_FOLDERS, "export")  # what nlpseq's commands write in a run dir
RECORD_FILES = ("metrics.json", "eval_report.json", "tokenizer.json", "tokenizer_meta.json",
                "tokenizer.model", "hypotheses.*.txt", "*.log")


def is_run_record(path: Path) -> bool:
    """Whether ``path`` is an existing file of a run's record (a directory with ``.hydra/``):
    its metrics, report, tokenizer, hypotheses or log, or a file in one of its folders."""
    found = run_around(path) if path.expanduser().is_file() else None
    if found is None:
        return False
    inside = found[1]
    return inside.parts[0] in WRITTEN_FOLDERS or (
        len(inside.parts) == 1 and any(inside.match(name) for name in RECORD_FILES))


def same_file(a, b) -> bool:
    """Whether two existing paths name one file."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


INPUT_OPTIONS = ("text", "prompt")  # the keys of conf/predict.yaml that give inputs


def predict(cfg: DictConfig) -> list[dict]:
    """Read the inputs, ask the checkpoint's task (or the export) for its predictions,
    write them out."""
    validate_config(cfg, PredictConfig)
    check_outputs(cfg)
    exported = is_export(cfg.ckpt_path)
    if exported:  # onnxruntime, no torch: answers as the task does
        from nlpseq.export.runtime import load

        model = load(cfg.ckpt_path)
    else:
        model, _, _ = load_task(cfg.ckpt_path, trusted=allowed_targets(cfg))
    given = {key: value for key, value in cfg.items() if key in TASK_OPTIONS}
    options = model.prediction_options(given)
    check_options_apply(cfg, model)
    option = model.text_option
    texts = read_inputs(cfg, option, keep_empty=model.keeps_empty_lines)
    streamed = model.streams_text and cfg.get(option) is not None and cfg.output_file is None
    if not exported:
        model.to(pick_device(cfg.accelerator))
    if streamed:  # one input to the terminal: the input, then the answer as it is made
        rows = model.predict(texts, on_text=_print_now, **options)
        sys.stdout.write("\n")
        return rows
    rows = model.predict(texts, **options)
    write_text_lines(model.prediction_lines(rows, **options), cfg.output_file)
    return rows


COMMAND_KEYS = ("ckpt_path", "input_file", "output_file", "accelerator", "allowed_targets")
TASK_OPTIONS = {option.name: option.default for option in dataclasses.fields(PredictConfig)
                if option.name not in (*COMMAND_KEYS, *INPUT_OPTIONS)}  # read by tasks


def check_options_apply(cfg: DictConfig, task) -> None:
    """An input or option the checkpoint's task does not read fails in one line that names
    the tasks that do read it. Options whose default is null count as given when set; the
    others (``n_best=1``, ``temperature=1.0``) cannot be told from their defaults."""
    name, path = task.task_name, cfg.ckpt_path
    for option in INPUT_OPTIONS:
        if cfg.get(option) is None or option == task.text_option:
            continue
        if cfg.get(task.text_option) is not None:
            raise NlpseqError(f"Give {task.text_option}=... alone, without {option}=... or "
                              "input_file=...")
        if option == "text":
            raise NlpseqError(f"'{path}' is a {name} checkpoint: give "
                              f'{task.text_option}="..." instead of text=...')
        raise NlpseqError(f"'{path}' is a '{name}' checkpoint; this command needs a "
                          f"'{' or '.join(tasks_reading(option))}' one")
    for option, default in TASK_OPTIONS.items():
        if default is None and cfg.get(option) is not None and \
                option not in task.predict_options:
            raise NlpseqError(f"{option} needs a {' or '.join(tasks_reading(option))} "
                              f"checkpoint; '{path}' is a {name} one")


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


def run(cfg: DictConfig) -> None:
    """What ``nlpseq-predict`` runs on the composed config (``nlpseq.cli.entry``)."""
    run_command(predict, cfg)


def main() -> None:
    entry.predict()


if __name__ == "__main__":
    main()
