"""Write a checkpoint's model as ONNX or TorchScript, with what a runtime needs beside it.

One export directory holds the model file(s) — ``model.onnx`` (sentiment, generation) or
``encoder.onnx`` + ``decoder.onnx`` (translation); ``.pt`` for TorchScript — the
tokenizer file(s) the run saved, and ``export.json``: the task, each file's input and
output names, the recurrent state's layout, the special token ids, the label names and
the decoding settings. Nothing there needs nlpseq to run (``nlpseq.export.runtime`` is a
small reader of it). ``quantize="dynamic"`` stores int8 weights for the recurrent and
linear layers (onnxruntime's ``quantize_dynamic``; ``torch.ao.quantization`` for
TorchScript), with activations quantized on the fly.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from nlpseq.cli.rundir import finished_files, in_record_folder
from nlpseq.errors import NlpseqError
from nlpseq.export.wrappers import (
    LanguageModelExport,
    SentimentExport,
    TranslationDecoderExport,
    TranslationEncoderExport,
    decoder_parts,
    state_names,
)
from nlpseq.tasks.checkpoint import checkpoint_file, read_checkpoint, task_from_checkpoint

log = logging.getLogger("nlpseq.export")

EXPORT_FORMAT = "nlpseq.export/1"
FORMATS = ("onnx", "torchscript")
QUANTIZATIONS = (None, "dynamic")
META_FILE = "export.json"
OPSET = 17
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
# which axes of each named tensor may change size between calls
AXES = {"tokens": {0: "batch", 1: "length"}, "lengths": {0: "batch"},
        "source": {0: "batch", 1: "source_length"}, "h": {1: "batch"}, "c": {1: "batch"},
        "feed": {0: "batch"}, "memory": {0: "batch", 1: "source_length"},
        "keys": {0: "batch", 1: "source_length"}, "mask": {0: "batch", 1: "source_length"}}


@dataclass
class Part:
    """One model file: the module to trace, example inputs and the tensors' names."""

    name: str
    module: nn.Module
    example: tuple[Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    axes: dict[str, dict[int, str]] = field(default_factory=dict)

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        names = [*self.inputs, *self.outputs]
        return {name: self.axes.get(name, AXES.get(name.removeprefix("next_"), {}))
                for name in names}


def check_choices(fmt: str, quantize: str | None) -> None:
    if fmt not in FORMATS:
        raise NlpseqError(f"Unknown format {fmt!r}; choose one of 'onnx', 'torchscript'")
    if quantize not in QUANTIZATIONS:
        raise NlpseqError(f"Unknown quantize {quantize!r}; choose null or 'dynamic'")


def export_checkpoint(ckpt_path: str | Path, fmt: str = "onnx", output: str | Path | None = None,
                      quantize: str | None = None, trusted=()) -> Path:
    """Export the checkpoint (a .ckpt file or a run directory) into ``output`` (default:
    ``<run dir>/export/<format>[-int8]``); returns the export directory."""
    check_choices(fmt, quantize)
    if fmt == "onnx":
        require("onnx", "onnxruntime")
    path = checkpoint_file(ckpt_path)
    task, tokenizer, _ = task_from_checkpoint(read_checkpoint(path, trusted), path)
    if output is None:
        run_dir = path.parent.parent if path.parent.name == "checkpoints" else path.parent
        output = run_dir / "export" / (fmt + ("-int8" if quantize else ""))
    output = Path(output).expanduser()
    check_output(output)
    parts, meta = describe(task)
    files = {part.name: f"{part.name}{SUFFIX[fmt]}" for part in parts}
    with staging(output) as staged:  # a failed export leaves nothing behind
        for part in parts:
            write_part(part, staged / files[part.name], fmt, quantize)
        meta.update(format=EXPORT_FORMAT, runtime=fmt, quantize=quantize, files=files,
                    inputs={p.name: p.inputs for p in parts},
                    outputs={p.name: p.outputs for p in parts},
                    special_ids={"pad": tokenizer.pad_id, "unk": tokenizer.unk_id,
                                 "bos": tokenizer.bos_id, "eos": tokenizer.eos_id},
                    tokenizer=save_tokenizer(tokenizer, staged))
        (staged / META_FILE).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        publish(staged, output)
    log.info("Exported the %s model to %s (%s)", meta["task"], output, ", ".join(files.values()))
    return output


def check_output(output: Path) -> None:
    """An export never writes into a run's record: not into a folder that holds a run
    (``.hydra/``, checkpoints, ``metrics.json``; or the runs of a sweep), nor into one of a
    run's own folders (``checkpoints/``, ``.hydra/``, ...). ``<run>/export/<format>`` and
    other folders of a run are fine."""
    if output.exists() and not output.is_dir():
        raise NlpseqError(f"output '{output}' is a file; give a directory to export into")
    if output.is_dir():
        found = [*([".hydra/"] if (output / ".hydra").is_dir() else []),
                 *finished_files(output), *sorted(p.name for p in output.glob("*.ckpt"))]
        if found:
            more = f" and {len(found) - 4} more" if len(found) > 4 else ""
            raise NlpseqError(f"output '{output}' holds the record of a run "
                              f"({', '.join(found[:4])}{more}): exporting there would replace "
                              "its files; pick another output (default: <run>/export/<format>)")
    inside = in_record_folder(output)
    if inside:
        raise NlpseqError(f"output '{output}' is inside the record of the run {inside[0]} "
                          f"({inside[1]}/); pick another output (default: "
                          "<run>/export/<format>)")


@contextmanager
def staging(output: Path):
    """A temporary folder beside ``output`` to write the export into; removed, with any
    folders made for it, when the block fails."""
    target = output.resolve()
    made = [p for p in [target.parent, *target.parent.parents] if not p.exists()]
    staged = target.parent / f".{target.name}.{os.getpid()}.partial"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.mkdir()
    except OSError as err:
        raise NlpseqError(f"cannot write the export into '{output}': "
                          f"{err.strerror or err}; pick a writable output") from None
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        for folder in made:  # the deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        raise


def publish(staged: Path, output: Path) -> None:
    """Move the staged export into ``output``: a new (or empty) folder is renamed into
    place at once; an earlier export's files are replaced one by one, ``export.json``
    last. A folder that is not an export keeps its files: a name the export writes that
    is already there is refused."""
    target = output.resolve()
    try:
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        if not target.exists():
            os.rename(staged, target)
            return
        names = sorted(entry.name for entry in staged.iterdir())
        taken = [name for name in names if (target / name).exists()]
        if taken and not (target / META_FILE).is_file():
            raise NlpseqError(f"output '{output}' already holds {', '.join(taken)} and is not "
                              "an export: exporting there would replace them; pick another "
                              "output")
        for name in sorted(names, key=lambda name: name == META_FILE):
            replace(staged / name, target / name)
        staged.rmdir()
    except OSError as err:
        raise NlpseqError(f"cannot write the export into '{output}': "
                          f"{err.strerror or err}") from None


def replace(new: Path, old: Path) -> None:
    """Put ``new`` where ``old`` is; a folder (a tokenizer's) is swapped in whole."""
    if new.is_dir() and old.is_dir():
        aside = old.with_name(f".{old.name}.{os.getpid()}.old")
        os.rename(old, aside)
        os.rename(new, old)
        shutil.rmtree(aside)
    else:
        os.replace(new, old)


def require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise NlpseqError(f"format=onnx needs {' and '.join(missing)}: "
                          "pip install 'nlpseq[export]'")


def plain_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy with weight-drop parametrizations folded into plain weights."""
    model = copy.deepcopy(model).eval()
    for module in list(model.modules()):
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations):
                parametrize.remove_parametrizations(module, name)
    return model


def describe(task) -> tuple[list[Part], dict]:
    """The parts to export for the task and what ``export.json`` says about them."""
    model = plain_copy(task.model)
    name = task.task_name
    tokens = torch.tensor([[4, 5, 6, 7, 8], [4, 6, 8, 0, 0]])  # (2, 5), ids below any vocab
    lengths = torch.tensor([5, 3])
    encoder = model.encoder
    if name == "sentiment":
        part = Part("model", SentimentExport(model), (tokens, lengths), ["tokens", "lengths"],
                    ["logits"], {"logits": {0: "batch"}})
        return [part], {"task": name, "cell": encoder.cell, "label_names": task.label_names}
    if name == "generation":
        names = state_names(encoder.cell)
        layers = encoder.num_layers * encoder.num_directions
        zeros = torch.zeros(layers, 2, encoder.hidden_size)
        part = Part("model", LanguageModelExport(model), (tokens, *[zeros] * len(names)),
                    ["tokens", *names], ["logits", *[f"next_{n}" for n in names]],
                    {"logits": {0: "batch", 1: "length"}})
        state = {n: [layers, "batch", encoder.hidden_size] for n in names}
        return [part], {"task": name, "cell": encoder.cell, "state": state,
                        "start_id": task.start_id, "stop_at_eos": task.reads_lines}
    if name == "translation":
        decoder = model.decoder
        state, memory = decoder_parts(decoder)
        start = TranslationEncoderExport(model)
        with torch.no_grad():
            started = start(tokens, lengths)
        bos = torch.full((2,), task.tokenizer.bos_id)
        parts = [Part("encoder", start, (tokens, lengths), ["source", "lengths"],
                      [*state, *memory]),
                 Part("decoder", TranslationDecoderExport(model), (bos, *started),
                      ["tokens", *state, *memory], ["logits", *[f"next_{n}" for n in state]],
                      {"tokens": {0: "batch"}, "logits": {0: "batch"}})]
        shapes = {"h": [decoder.rnn.num_layers, "batch", decoder.hidden_size],
                  "c": [decoder.rnn.num_layers, "batch", decoder.hidden_size],
                  "feed": ["batch", decoder.hidden_size]}
        return parts, {"task": name, "cell": encoder.cell, "decoder_cell": decoder.cell,
                       "state": {n: shapes[n] for n in state}, "memory": memory,
                       "max_length_ratio": task.max_length_ratio,
                       "max_length_offset": task.max_length_offset}
    raise NlpseqError(f"A '{name}' checkpoint cannot be exported; export handles "
                      "sentiment, generation and translation checkpoints")


def write_part(part: Part, path: Path, fmt: str, quantize: str | None) -> None:
    """Trace one part into ``path``; ``quantize="dynamic"`` stores int8 weights."""
    module = part.module.eval()
    if fmt == "torchscript":
        if quantize:
            module = torch.ao.quantization.quantize_dynamic(
                module, {nn.LSTM, nn.GRU, nn.Linear}, dtype=torch.qint8)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shapes read as ints
            traced = torch.jit.trace(module, part.example, check_trace=False)
        torch.jit.save(traced, str(path))
        return
    target = path.with_suffix(".fp32.onnx") if quantize else path
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, part.example, str(target), input_names=part.inputs,
                          output_names=part.outputs, dynamic_axes=part.dynamic_axes(),
                          opset_version=OPSET, dynamo=False)
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        root = logging.getLogger()  # onnxruntime advises pre-processing on the root logger
        quiet = logging.Filter("nlpseq")
        root.addFilter(quiet)
        try:
            quantize_dynamic(str(target), str(path), weight_type=QuantType.QInt8)
        finally:
            root.removeFilter(quiet)
            target.unlink()


def save_tokenizer(tokenizer, output: Path) -> dict:
    """Write the tokenizer file(s) into ``output``; where ``export.json`` finds them."""
    if hasattr(tokenizer, "source"):  # a translation model's TokenizerPair
        tokenizer.save(output)
        if tokenizer.joint:
            return {"source": ".", "target": "."}
        return {"source": "source_tokenizer", "target": "target_tokenizer"}
    tokenizer.save(output)
    return {"text": "."}
