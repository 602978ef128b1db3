"""Where raw text comes from: local files (format from the extension), a named dataset, or
any dataset (``data=hub``: a hub id or a local ``datasets`` folder).

Text files (.tsv .csv .json .jsonl .txt) are read exactly by ``readers`` and become a
``datasets.Dataset`` of text columns, saved once in the ``datasets`` cache; .parquet files
and hub datasets come from ``datasets.load_dataset`` (this is the only module calling it).
A named dataset is looked for under ``$NLPSEQ_DATA_DIR/<name>/`` first and otherwise
loaded from the Hugging Face hub. Every failure a user can cause becomes one clear
``NlpseqError`` line, naming the file and line of a row when a row is at fault.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import datasets

from nlpseq.data import readers
from nlpseq.errors import NlpseqError, first_line

log = logging.getLogger(__name__)

DATA_DIR_ENV = "NLPSEQ_DATA_DIR"
FORMATS = (".tsv", ".csv", ".json", ".jsonl", ".parquet", ".txt")
READER_VERSION = 2  # bump when readers.parse changes, so cached tables are not reused


@dataclass(frozen=True)
class Rows:
    """One split as read: its Dataset and where each row came from, so that a message
    about a row can name its file and line (text files) or its row number."""

    dataset: datasets.Dataset
    source: str  # the file, or "the hub dataset 'id' (split)"
    lines: list[int] | None = None  # the line each row starts on; None: rows count from 1
    unit: str = "line"

    def position(self, index: int) -> str:
        """``line 12`` (or ``row 12``) for row ``index`` of the dataset."""
        return f"{self.unit} {self.lines[index]}" if self.lines else f"row {index + 1}"

    def where(self, index: int) -> str:
        return f"{self.source}, {self.position(index)}"


def check_utf8(path: Path) -> None:
    """Raise NlpseqError naming the file and line of the first byte that is not UTF-8."""
    read_utf8(path)


def read_utf8(path: Path) -> str:
    """The file's text; NlpseqError names the line and column of a byte that is not UTF-8."""
    return decode_utf8(path.read_bytes(), str(path), "re-encode the file as UTF-8")


def decode_utf8(data: bytes, source: str, advice: str) -> str:
    """``data`` as UTF-8 text; NlpseqError names ``source``, the line and column of the
    first byte that is not UTF-8, and what to do (``advice``)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - (data.rfind(b"\n", 0, err.start) + 1) + 1
        raise NlpseqError(f"{source}: line {line}, column {column} is not valid UTF-8 "
                          f"(byte 0x{data[err.start]:02x}); {advice}") from None


def load_file(path: str | Path, split: str, keep_linebreaks: bool = False,
              required: dict[str, str] | None = None) -> Rows:
    """Read one local file; the format comes from the extension (``readers``).

    A ``.txt`` file gives one row per line in column ``text``; ``keep_linebreaks`` keeps
    each line's ``"\\n"`` (for language models where the line break is a character).
    ``required`` maps the columns the caller reads to the option naming them
    (``{"sentence": "data.text_column"}``): every row must hold a value there.
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
    required = required or {}
    if suffix == ".parquet":
        rows = Rows(_load_parquet(path, split), str(path))
    else:
        text = read_utf8(path)
        table = readers.parse(text, suffix, str(path), keep_linebreaks, tuple(required))
        if not table.lines:  # refused before an empty table is cached
            raise NlpseqError(f"The {split} split is empty: '{path}' holds no examples")
        digest = cache_key(READER_VERSION, suffix, keep_linebreaks, text)
        rows = Rows(_cached_dataset(table.columns, digest), str(path), table.lines, table.unit)
    if len(rows.dataset) == 0:
        raise NlpseqError(f"The {split} split is empty: '{path}' holds no examples")
    check_values(rows, required)
    return rows


def column_values(dataset: datasets.Dataset, column: str) -> list:
    """One column as a list, read in one go (iterating a Dataset's column formats every
    row on its own: seconds for SST-2)."""
    return dataset.with_format("arrow")[column].to_pylist()


def check_values(rows: Rows, required: dict[str, str]) -> None:
    """Every row holds one value, a string or a number, in each ``required`` column the
    data has: a list or a dict (a parquet or hub column) would be read as Python prints it.
    A column the data lacks is the caller's to report, with the option naming it."""
    for column, option in required.items():
        if column not in rows.dataset.column_names:
            continue
        for index, value in enumerate(column_values(rows.dataset, column)):
            if value is None:
                raise NlpseqError(f"{rows.where(index)}: no value for '{column}' ({option}); "
                                  "every row needs one")
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise NlpseqError(f"{rows.where(index)}: '{column}' ({option}) is a "
                                  f"{type(value).__name__}; expected a string or a number")


def _load_parquet(path: Path, split: str) -> datasets.Dataset:
    try:
        return datasets.load_dataset("parquet", data_files={split: str(path.resolve())},
                                     split=split)
    except Exception as err:  # pyarrow errors vary
        if path.stat().st_size == 0:
            raise NlpseqError(f"The {split} split is empty: '{path}' holds no examples") from None
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NlpseqError(f"Could not read '{path}' as parquet: {reason}") from None


def cache_key(*parts) -> str:
    """A stable hash of what a cached table depends on (the file's text among them)."""
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(repr(part).encode() if not isinstance(part, str) else part.encode())
        hasher.update(b"\0")
    return hasher.hexdigest()[:32]


def _cached_dataset(columns: dict[str, list], key: str) -> datasets.Dataset:
    """The columns (all text) as a Dataset saved once in the ``datasets`` cache under
    ``key``: a Dataset backed by a file is one whose ``map`` results (the tokenized
    splits) are cached on disk beside it, as they are for the hub datasets."""
    root = Path(datasets.config.HF_DATASETS_CACHE) / "nlpseq_tables"
    folder = root / key
    if (folder / "state.json").is_file():
        return datasets.load_from_disk(str(folder))
    features = datasets.Features({name: datasets.Value("string") for name in columns})
    table = datasets.Dataset.from_dict(columns, features=features)
    partial = root / f"{key}.{os.getpid()}.partial"
    shown = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()  # saving takes a blink; its bar would be noise
    try:
        table.save_to_disk(str(partial))
        os.replace(partial, folder)
    except OSError:  # another process saved it first, or the cache is not writable
        shutil.rmtree(partial, ignore_errors=True)
        if not (folder / "state.json").is_file():
            log.debug("Could not save %s; its encodings will not be cached", folder)
            return table
    finally:
        if shown:
            datasets.enable_progress_bars()
    return datasets.load_from_disk(str(folder))


def local_copy_dir(name: str) -> Path | None:
    """``$NLPSEQ_DATA_DIR/<name>`` if the variable is set, else None."""
    root = os.environ.get(DATA_DIR_ENV)
    return Path(root).expanduser() / name if root else None


def pin_relative_paths(data_cfg) -> None:
    """Make a data config's own paths absolute (``data=files`` files, a local ``data.path``
    folder), so that the config a checkpoint stores reads the same files from any working
    directory (``nlpseq-eval``, a resumed run). A named dataset's files stay relative to
    its folder (``$NLPSEQ_DATA_DIR/<name>/``)."""
    if data_cfg.get("path") is None and data_cfg.get("name") not in (None, "files"):
        return
    for key in ("train_file", "validation_file", "test_file"):
        value = data_cfg.get(key)
        if value and not Path(value).expanduser().is_absolute():
            data_cfg[key] = os.path.abspath(Path(value).expanduser())
    path = data_cfg.get("path")
    if path and Path(path).expanduser().exists():  # a local folder, not a hub id
        data_cfg["path"] = os.path.abspath(Path(path).expanduser())


def load_splits(
    files: dict[str, str | None],
    *,
    name: str = "files",
    base_dir: Path | None = None,
    hub_id: str | None = None,
    hub_config: str | None = None,
    hub_splits: dict[str, str] | None = None,
    keep_linebreaks: bool = False,
    required: dict[str, str] | None = None,
) -> dict[str, Rows]:
    """Load the splits named in ``files`` (split -> path or None).

    Relative paths are resolved against ``base_dir`` (a named dataset's local copy) or
    the working directory. When ``hub_id`` is given and the local copy has no training
    file, the splits come from ``datasets.load_dataset(hub_id)`` instead; with no file
    named at all (``data=files data.hub_id=X``) every split in ``files`` is read from the
    hub dataset as ``data=hub`` reads it. ``keep_linebreaks`` and ``required`` are passed
    to ``load_file``.
    """
    wanted = {split: path for split, path in files.items() if path}
    if hub_id is not None and not wanted:
        return load_dataset_splits(hub_id, hub_config, tuple(files), hub_splits or {},
                                   required=required, path_option="data.hub_id",
                                   splits_option="data.hub_splits")
    if hub_id is not None and not _local_copy_present(base_dir, wanted):
        loaded = _load_from_hub(name, hub_id, hub_config, base_dir, wanted)
        source = f"the hub dataset '{hub_id}'"
        picked = pick_splits(loaded, tuple(wanted), hub_splits or {}, source, "data.hub_splits")
        for rows in picked.values():
            check_values(rows, required or {})
        return picked
    return {
        split: load_file((base_dir / path) if base_dir else path, split, keep_linebreaks,
                         required)
        for split, path in wanted.items()
    }


def _local_copy_present(base_dir: Path | None, wanted: dict[str, str]) -> bool:
    return base_dir is not None and bool(wanted) and all(
        (base_dir / path).is_file() for path in wanted.values()
    )


def _load_from_hub(name, hub_id, hub_config, base_dir, wanted) -> datasets.DatasetDict:
    where = str(base_dir) if base_dir else f"${DATA_DIR_ENV}/{name} (the variable is not set)"
    log.info("No local copy of '%s' in %s; loading '%s' from the Hugging Face hub", name,
             where, hub_id)
    try:
        return datasets.load_dataset(hub_id, hub_config)
    except Exception as err:
        reason = type(err).__name__
        raise NlpseqError(
            f"Dataset '{name}': no local copy in {where} (expected "
            f"{', '.join(sorted(wanted.values()))}) and the hub dataset '{hub_id}' could not be "
            f"loaded ({reason}); set {DATA_DIR_ENV} to a folder holding {name}/, or use "
            f"data=files data.train_file=... data.validation_file=..."
        ) from None


def load_dataset_splits(path: str, config: str | None, splits: tuple[str, ...],
                        mapping: dict[str, str | None], *,
                        required: dict[str, str] | None = None,
                        path_option: str = "data.path",
                        splits_option: str = "data.splits") -> dict[str, Rows]:
    """``data=hub``: the ``splits`` of any dataset, a hub id or a local folder
    (``open_dataset``), each read from the dataset's split ``mapping`` names for it
    (``pick_splits``); ``required`` columns must hold a value in every row. Errors name
    the options that gave ``path`` and ``mapping``."""
    loaded, source = open_dataset(path, config, path_option)
    picked = pick_splits(loaded, splits, mapping, source, splits_option)
    for rows in picked.values():
        check_values(rows, required or {})
    return picked


def open_dataset(path: str, config: str | None,
                 option: str = "data.path") -> tuple[datasets.DatasetDict, str]:
    """The dataset at ``path`` and how messages name it. A folder written by
    ``save_to_disk`` is read back with ``load_from_disk`` (a lone Dataset is the train
    split); any other folder, or a hub id, goes to ``load_dataset(path, config)``, which
    reads a folder of parquet/csv/json files by the split names in their file names."""
    local = Path(path).expanduser()
    if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
        loaded = datasets.load_from_disk(str(local))
        if isinstance(loaded, datasets.Dataset):
            loaded = datasets.DatasetDict({"train": loaded})
        return loaded, f"the dataset '{path}'"
    try:
        loaded = datasets.load_dataset(str(local) if local.is_dir() else path, config,
                                       **exact_csv(local))
    except Exception as err:  # offline, unknown id or config, unreadable files: all vary
        if local.is_dir():
            raise NlpseqError(f"Could not load the dataset folder '{path}' "
                              f"({first_line(err)})") from None
        raise NlpseqError(
            f"{option}='{path}' is not a local folder, and the hub dataset '{path}' could "
            f"not be loaded ({first_line(err)})") from None
    source = "the dataset" if local.is_dir() else "the hub dataset"
    return loaded, f"{source} '{path}'"


def exact_csv(folder: Path) -> dict:
    """For a local folder of .csv files: read every field as the text it is (pandas would
    make ``007`` the number 7 and ``NA`` a missing value), as ``data=files`` reads them."""
    files = [p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
             ] if folder.is_dir() else []
    if not files or any(p.suffix != ".csv" for p in files):
        return {}
    columns = {}
    for path in files:  # string columns make the csv builder pass dtype=str to pandas
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            columns.update(dict.fromkeys(next(csv.reader(handle), [])))
    features = datasets.Features({name: datasets.Value("string") for name in columns})
    return {"features": features, "keep_default_na": False, "na_filter": False}


def pick_splits(loaded: datasets.DatasetDict, splits: tuple[str, ...],
                mapping: dict[str, str | None], source: str, option: str) -> dict[str, Rows]:
    """Each of ``splits`` read from the dataset split ``mapping`` names for it, else from
    the split of its own name. A split the mapping names, and train, must exist (the error
    lists the dataset's splits); a validation or test split the dataset lacks is left out
    (the DataModule holds validation out of train, tests on validation)."""
    picked, read_as = {}, {}
    for split in splits:
        name = mapping.get(split) or split
        if name in read_as:
            raise NlpseqError(f"{option} reads the split '{name}' as both {read_as[name]} and "
                              f"{split}: a model would be scored on rows it saw; map them to "
                              "different splits")
        read_as[name] = split
        if name not in loaded:
            if mapping.get(split):
                raise NlpseqError(f"{source} has no split '{name}' ({option}.{split}={name}); "
                                  f"its splits: {', '.join(loaded)}")
            if split == "train":
                raise NlpseqError(f"{source} has no split 'train'; its splits: "
                                  f"{', '.join(loaded)}: pick one with {option}.train=...")
            continue
        rows = Rows(loaded[name], f"{source}, split '{name}'")
        if len(rows.dataset) == 0:
            raise NlpseqError(f"The {split} split is empty: {rows.source} holds no examples")
        picked[split] = rows
    return picked


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
    texts = [read_utf8(path) for path in paths]
    columns = {language: readers.parse(text, ".txt", str(path)).columns["text"]
               for path, language, text in zip(paths, languages, texts, strict=True)}
    counts = [len(column) for column in columns.values()]
    if counts[0] != counts[1]:
        raise NlpseqError(
            f"Parallel {split} files differ in length: '{paths[0]}' has {counts[0]} lines, "
            f"'{paths[1]}' has {counts[1]}")
    if counts[0] == 0:
        raise NlpseqError(f"The {split} split is empty: '{paths[0]}' holds no lines")
    return _cached_dataset(columns, cache_key(READER_VERSION, "parallel", languages, *texts))
