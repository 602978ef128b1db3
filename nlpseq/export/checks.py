"""What an export folder holds, and the checks that it is whole: ``export.json`` has the
keys ``nlpseq.export.exporter`` writes for its task, each model file loads in onnxruntime
and takes and gives the tensors named there. A broken export fails in one line,
``<dir> is not a valid nlpseq export: <what>``; ``is_export_file`` tells the files an
output must not replace.
"""

from __future__ import annotations

import json
from pathlib import Path

from nlpseq.errors import NlpseqError, first_line

META_FILE = "export.json"

TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_meta.json")
TOKENIZER_FOLDERS = ("source_tokenizer", "target_tokenizer")
MODEL_SUFFIXES = (".onnx", ".pt")


def is_export_file(path) -> bool:
    """Whether ``path`` is an existing file of an export (a folder with ``export.json``):
    ``export.json`` itself, a model file (any ``.onnx`` or ``.pt``, or one it names) or a
    tokenizer file, beside it or in its ``source_tokenizer/`` or ``target_tokenizer/``."""
    path = Path(str(path)).expanduser().resolve()
    if not path.is_file():
        return False
    folder = path.parent
    if (folder / META_FILE).is_file():
        return path.name in (META_FILE, *TOKENIZER_FILES) or \
            path.suffix in MODEL_SUFFIXES or path.name in named_files(folder)
    return folder.name in TOKENIZER_FOLDERS and (folder.parent / META_FILE).is_file()


def named_files(directory: Path) -> set[str]:
    """The model files the export's ``export.json`` names (none when it cannot be read)."""
    try:
        files = json.loads((directory / META_FILE).read_text(encoding="utf-8"))["files"]
        return {str(name) for name in files.values()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()


def invalid(directory: Path, what: str) -> NlpseqError:
    """The one line for an export that ``nlpseq-export`` did not write as it is."""
    return NlpseqError(f"{directory} is not a valid nlpseq export: {what}")


TASK_KEYS = {  # what export.json holds for each task, beside COMMON_KEYS
    "sentiment": {"label_names": list},
    "generation": {"state": dict, "start_id": int, "stop_at_eos": bool},
    "translation": {"state": dict, "memory": list, "max_length_ratio": (int, float),
                    "max_length_offset": int},
}
COMMON_KEYS = {"runtime": str, "files": dict, "outputs": dict, "tokenizer": dict,
               "special_ids": dict}
PARTS = {"sentiment": ("model",), "generation": ("model",), "translation": ("encoder", "decoder")}
SIDES = {"sentiment": ("text",), "generation": ("text",), "translation": ("source", "target")}
SPECIAL_IDS = ("pad", "unk", "bos", "eos")


def check_meta(meta, directory: Path) -> None:
    """Raise NlpseqError (``invalid``) unless ``meta`` has the keys, types and parts that
    ``nlpseq.export.exporter`` writes for its task."""
    if not isinstance(meta, dict):
        raise invalid(directory, f"{META_FILE} holds a JSON {type(meta).__name__}, "
                                 "not an object")
    task, choices = meta.get("task"), ", ".join(map(repr, TASK_KEYS))
    if task is None:
        raise invalid(directory, f"{META_FILE} has no 'task' (one of {choices})")
    if not isinstance(task, str) or task not in TASK_KEYS:
        raise invalid(directory, f"{META_FILE} has task {task!r}; expected one of {choices}")
    for key, kind in {**COMMON_KEYS, **TASK_KEYS[task]}.items():
        if key not in meta:
            raise invalid(directory, f"{META_FILE} has no {key!r} (a {task} export has one)")
        if not isinstance(meta[key], kind) or (kind is int and isinstance(meta[key], bool)):
            raise invalid(directory, f"{META_FILE}'s {key!r} is {meta[key]!r}, not a "
                                     f"{getattr(kind, '__name__', 'number')}")
    for key, names in (("files", PARTS[task]), ("outputs", PARTS[task]),
                       ("tokenizer", SIDES[task])):
        missing = [name for name in names if name not in meta[key]]
        if missing:
            raise invalid(directory, f"{META_FILE}'s {key!r} has no {', '.join(missing)} "
                                     f"(a {task} export has {', '.join(names)})")
    if not all(isinstance(v, str) for v in (*meta["files"].values(),
                                            *meta["tokenizer"].values())) or \
            not all(isinstance(v, list) and all(isinstance(n, str) for n in v)
                    for v in meta["outputs"].values()):
        raise invalid(directory, f"{META_FILE}'s files, tokenizer or outputs hold a value "
                                 "that is not a name")
    ids = meta["special_ids"]
    if any(not isinstance(ids.get(name), int) for name in SPECIAL_IDS):
        raise invalid(directory, f"{META_FILE}'s special_ids {ids!r} lack an id of "
                                 f"{', '.join(SPECIAL_IDS)}")


def check_sessions(meta: dict, sessions: dict, directory: Path) -> None:
    """Each model file takes the inputs the runtime feeds and gives the outputs that
    ``export.json`` names; a classifier gives one logit per label name."""
    state, memory = list(meta.get("state", {})), list(meta.get("memory", []))
    fed = {"sentiment": {"model": ["tokens", "lengths"]},
           "generation": {"model": ["tokens", *state]},
           "translation": {"encoder": ["source", "lengths"],
                           "decoder": ["tokens", *state, *memory]}}[meta["task"]]
    for part, session in sessions.items():
        file = meta["files"][part]
        inputs = {i.name for i in session.get_inputs()}
        outputs = {o.name: o.shape for o in session.get_outputs()}
        wanted = [n for n in fed.get(part, []) if n not in inputs]
        if wanted:
            raise invalid(directory, f"{file} has no input {', '.join(wanted)} "
                                     f"(it takes {', '.join(sorted(inputs))})")
        named = [n for n in meta["outputs"][part] if n not in outputs]
        if named:
            raise invalid(directory, f"{META_FILE} names outputs {', '.join(named)} that "
                                     f"{file} does not give ({', '.join(outputs)})")
    if meta["task"] == "sentiment":
        shape = {o.name: o.shape for o in sessions["model"].get_outputs()}.get("logits")
        labels = meta["label_names"]
        if shape is None or (isinstance(shape[-1], int) and shape[-1] != len(labels)):
            raise invalid(directory, f"{META_FILE} has {len(labels)} label_names; "
                                     f"{meta['files']['model']} gives logits of shape {shape}")


def open_session(directory: Path, file: str, options):
    """An onnxruntime session of one model file; a missing or broken file fails in one
    line (onnxruntime's own errors derive from Exception only)."""
    import onnxruntime

    path = directory / file
    if not path.is_file():
        raise invalid(directory, f"{file} is missing")
    try:
        return onnxruntime.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - onnxruntime's Fail, InvalidProtobuf, ...
        raise invalid(directory, f"onnxruntime cannot read {file} ({first_line(err)})"
                      ) from None
