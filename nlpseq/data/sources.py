"""Where raw text comes from: local files (format from the extension) or a named dataset.

This is the only module that calls ``datasets.load_dataset``. A named dataset is looked
for under ``$NLPSEQ_DATA_DIR/<name>/`` first and otherwise loaded from the Hugging Face
hub; every failure a user can cause becomes one clear ``NlpseqError`` line.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import datasets

from nlpseq.errors import NlpseqError

log = logging.getLogger(__name__)

DATA_DIR_ENV = "NLPSEQ_DATA_DIR"
# extension -> (datasets builder, extra builder options)
FORMATS: dict[str, tuple[str, dict]] = {
    ".tsv": ("csv", {"sep": "\t", "quoting": csv.QUOTE_NONE, "keep_default_na": False}),
    ".csv": ("csv", {"keep_default_na": False}),
    ".json": ("json", {}),
    ".jsonl": ("json", {}),
    ".parquet": ("parquet", {}),
    ".txt": ("text", {}),
}
TEXT_FORMATS = {".tsv", ".csv", ".json", ".jsonl", ".txt"}


def check_utf8(path: Path) -> None:
    """Raise NlpseqError naming the file and line of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise NlpseqError(
            f"{path}: line {line}, column {column} is not valid UTF-8 "
            f"(byte 0x{data[err.start]:02x}); re-encode the file as UTF-8"
        ) from None


def load_file(path: str | Path, split: str, keep_linebreaks: bool = False) -> datasets.Dataset:
    """Load one local file as a ``datasets.Dataset``; the format comes from the extension.

    A ``.txt`` file gives one row per line in column ``text``; ``keep_linebreaks`` keeps
    each line's ``"\\n"`` (for language models where the line break is a character).
    """
    path = Path(path).expanduser()
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise NlpseqError(
            f"Cannot read '{path}' ({split} split): unknown extension '{suffix or '(none)'}'; "
            f"use one of {', '.join(FORMATS)}"
        )
    if not path.is_file():
        raise NlpseqError(f"{split} file not found: '{path}' (resolved to {path.resolve()})")
    if suffix in TEXT_FORMATS:
        check_utf8(path)
    builder, options = FORMATS[suffix]
    if builder == "text" and keep_linebreaks:
        options = {**options, "keep_linebreaks": True}
    try:
        dataset = datasets.load_dataset(
            builder, data_files={split: str(path.resolve())}, split=split, **options
        )
    except Exception as err:  # pandas/pyarrow parse errors vary by format
        if "corresponds to no data" in str(err) or path.stat().st_size == 0:
            raise NlpseqError(f"The {split} split is empty: '{path}' holds no examples") from None
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NlpseqError(f"Could not read '{path}' as {suffix[1:]}: {reason}") from None
    if len(dataset) == 0:
        raise NlpseqError(f"The {split} split is empty: '{path}' holds no examples")
    return dataset


def local_copy_dir(name: str) -> Path | None:
    """``$NLPSEQ_DATA_DIR/<name>`` if the variable is set, else None."""
    root = os.environ.get(DATA_DIR_ENV)
    return Path(root).expanduser() / name if root else None


def load_splits(
    files: dict[str, str | None],
    *,
    name: str = "files",
    base_dir: Path | None = None,
    hub_id: str | None = None,
    hub_config: str | None = None,
    hub_splits: dict[str, str] | None = None,
    keep_linebreaks: bool = False,
) -> dict[str, datasets.Dataset]:
    """Load the splits named in ``files`` (split -> path or None) into Datasets.

    Relative paths are resolved against ``base_dir`` (a named dataset's local copy) or
    the working directory. When ``hub_id`` is given and the local copy has no training
    file, the splits come from ``datasets.load_dataset(hub_id)`` instead.
    ``keep_linebreaks`` is passed to ``load_file`` (it only affects ``.txt`` files).
    """
    wanted = {split: path for split, path in files.items() if path}
    if hub_id is not None and not _local_copy_present(base_dir, wanted):
        return _load_from_hub(name, hub_id, hub_config, hub_splits or {}, base_dir, wanted)
    return {
        split: load_file((base_dir / path) if base_dir else path, split, keep_linebreaks)
        for split, path in wanted.items()
    }


def _local_copy_present(base_dir: Path | None, wanted: dict[str, str]) -> bool:
    return base_dir is not None and bool(wanted) and all(
        (base_dir / path).is_file() for path in wanted.values()
    )


def _load_from_hub(name, hub_id, hub_config, hub_splits, base_dir, wanted) -> dict:
    where = str(base_dir) if base_dir else f"${DATA_DIR_ENV}/{name} (the variable is not set)"
    log.info("No local copy of '%s' in %s; loading '%s' from the Hugging Face hub", name,
             where, hub_id)
    try:
        loaded = datasets.load_dataset(hub_id, hub_config)
    except Exception as err:
        reason = type(err).__name__
        raise NlpseqError(
            f"Dataset '{name}': no local copy in {where} (expected "
            f"{', '.join(sorted(wanted.values()))}) and the hub dataset '{hub_id}' could not be "
            f"loaded ({reason}); set {DATA_DIR_ENV} to a folder holding {name}/, or use "
            f"data=files data.train_file=... data.validation_file=..."
        ) from None
    return {split: loaded[hub_splits.get(split, split)] for split in wanted
            if hub_splits.get(split, split) in loaded}


def parallel_paths(prefix: str | Path, languages: tuple[str, str]) -> list[Path]:
    """``DIR/train`` with languages (de, en) -> ``DIR/train.de``, ``DIR/train.en``."""
    prefix = Path(prefix).expanduser()
    return [prefix.with_name(f"{prefix.name}.{language}") for language in languages]


def load_parallel_text(prefix: str | Path, languages: tuple[str, str],
                       split: str) -> datasets.Dataset:
    """Two aligned plain-text files, one sentence a line, as one Dataset whose columns are
    the language codes. Missing files name the suffixes that do exist; files of different
    lengths name both counts."""
    paths = parallel_paths(prefix, languages)
    for path, language in zip(paths, languages, strict=True):
        if not path.is_file():
            stem = Path(prefix).expanduser()
            found = sorted(p.suffix[1:] for p in stem.parent.glob(f"{stem.name}.*"))
            raise NlpseqError(
                f"{split} file not found: '{path}' (language suffix '{language}'); files "
                f"'{stem}.*' have the suffixes: {', '.join(found) or 'none'}")
        check_utf8(path)
    columns = []
    for path, language in zip(paths, languages, strict=True):
        column = datasets.load_dataset("text", data_files={split: str(path.resolve())},
                                       split=split)
        columns.append(column.rename_column("text", language))
    counts = [len(column) for column in columns]
    if counts[0] != counts[1]:
        raise NlpseqError(
            f"Parallel {split} files differ in length: '{paths[0]}' has {counts[0]} lines, "
            f"'{paths[1]}' has {counts[1]}")
    if counts[0] == 0:
        raise NlpseqError(f"The {split} split is empty: '{paths[0]}' holds no lines")
    return datasets.concatenate_datasets(columns, axis=1)
