"""Class labels as files write them: names (``pos``) or integer class ids (``1``), read one
way only.

A label is an id when it is written as an integer and is not itself one of the label
names; anything else is a name. A typed number (parquet, hub datasets) is read as its text
would be, so ``2`` means the same in a .tsv and a .parquet file. One file may use names or
ids, never both: ``1`` taken as class 1 beside names would silently give a negative text the
name of class 1. Every refusal names the file and line of the rows involved.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter

from nlpseq.data.sources import Rows, column_values
from nlpseq.errors import NlpseqError

INTEGER = re.compile(r"[+-]?\d+")
MOST_EMPTY = 10  # integer ids may leave this many classes empty, or fewer than they fill
log = logging.getLogger(__name__)


def bare(value) -> str:
    """A value as text without surrounding spaces or a byte-order mark (files joined with
    their marks leave one at the start of a line, which the reader skips only at the
    start of the file)."""
    return str(value).strip().lstrip("\ufeff").strip()


def label_value(raw, names: dict[str, int] | set[str]) -> str | int | None:
    """A label as read: a name (str), a class id (int), or None when it is empty.

    A typed number (parquet and hub columns) is read as the same number written in a text
    file: ``2`` is the name ``'2'`` when that is one of ``names``, otherwise class id 2. A
    float holding an integer is that integer unless its own text (``'1.0'``) is a name
    (pandas stores an integer column with missing values as floats); NaN, pandas' missing
    value, and infinities are empty."""
    if raw is None or (isinstance(raw, float) and not math.isfinite(raw)):
        return None
    if isinstance(raw, float) and raw.is_integer() and str(raw) not in names:
        raw = int(raw)
    text = bare(raw)
    if not text:
        return None
    if text in names or not INTEGER.fullmatch(text):
        return text
    return int(text)


def read_labels(rows: Rows, column: str, names: list[str] | None) -> list[str | int]:
    """The labels of ``rows`` as names or ids; refuses an empty label and a file that
    mixes names and ids (naming a line of each)."""
    classes = class_names(rows.dataset, column)
    if names is None and classes:
        _check_class_label(classes, rows.source, column)
    known = set(names or ())
    values, first = [], {}  # first: kind -> the row where it first appears
    for index, raw in enumerate(column_values(rows.dataset, column)):
        value = label_value(raw, known)
        if value is None:
            raise NlpseqError(f"{rows.where(index)}: the label ('{column}', data.label_column) "
                              "is empty; every row needs a label")
        first.setdefault(type(value), index)
        values.append(value)
    if len(first) > 1:
        name, number = first[str], first[int]
        raise NlpseqError(
            f"{rows.source} mixes label names and integer class ids: {rows.position(name)} has "
            f"the name {values[name]!r}, {rows.position(number)} has the id {values[number]}; "
            "write every label as a name, or every label as a class id 0..C-1 (the position "
            "in data.label_names)")
    return values


def names_from(values: list[str | int], rows: Rows) -> list[str]:
    """The label names when none are given: the sorted distinct names of the training
    labels, or for ids 0..max the names "0".."max".

    Ids are refused when 0..max would leave more classes without a training row than with
    one, and more than ``MOST_EMPTY`` of them: a mistyped ``100000`` in a 0/1 file would
    otherwise build a head of 100,001 classes. Star ratings 1..5 (class 0 empty) or a small
    file missing a few of 0..4 pass; data.label_names names the classes when gaps are meant."""
    if values and isinstance(values[0], int):
        lowest, highest = min(values), max(values)
        if lowest < 0:
            raise NlpseqError(f"{rows.where(values.index(lowest))}: integer labels are class "
                              f"ids and must be >= 0; got {lowest}")
        empty = highest + 1 - len(set(values))
        if empty > max(MOST_EMPTY, len(set(values))):
            raise NlpseqError(
                f"{rows.where(values.index(highest))}: the label {highest} makes {highest + 1} "
                f"classes (integer labels are class ids 0..max), {empty} of them without a "
                "training row; fix the label, or set data.label_names to name every class")
        return [str(i) for i in range(highest + 1)]
    return sorted(set(values))


def class_names(dataset, column: str) -> list[str] | None:
    """The names of a ``datasets.ClassLabel`` column (hub datasets often store labels as
    ids with names beside them), or None for a column of plain values."""
    feature = dataset.features.get(column)
    names = getattr(feature, "names", None)
    return list(names) if isinstance(names, list) and names else None


def _check_class_label(classes: list[str], source: str, column: str) -> None:
    """A ``ClassLabel`` column holds ids whose names become the label names; a name that is
    an integer other than its own id (``'1'`` for id 0) would read id 1 as the name ``'1'``,
    class 0, so such names are refused rather than shifted."""
    ids = {str(i) for i in range(len(classes))}
    for i, name in enumerate(classes):
        if name in ids and name != str(i):
            raise NlpseqError(
                f"{source}: the label column '{column}' is a ClassLabel whose name {name!r} is "
                f"an integer other than its class id {i}, so ids and names cannot be told "
                "apart; set data.label_names to names that are not integers")


def check_names(names: list[str], train: list[str | int] | None, source: str) -> None:
    """A classifier needs two classes or more, each named once, and (when training)
    examples of at least two of them in ``train``, the labels of ``source``."""
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise NlpseqError(f"data.label_names lists {repeated[0]!r} more than once: {names}")
    classes = names if train is None else sorted({str(value) for value in train})
    if len(names) < 2 or len(classes) < 2:
        where = "data.label_names" if train is None else source
        raise NlpseqError(
            f"{where} has one label class only ({classes[0] if classes else 'none'!r}); a "
            "classifier needs examples of at least two classes: add rows of another class")


def check_known(rows: Rows, values: list[str | int], names: list[str], split: str) -> None:
    """Every label is one of ``names`` or a class id 0..len(names)-1."""
    ids = set(names)
    for index, value in enumerate(values):
        known = 0 <= value < len(names) if isinstance(value, int) else value in ids
        if not known:
            raise NlpseqError(
                f"The {split} split has label {value!r} ({rows.where(index)}), which is not one "
                f"of the labels {names} nor a class id 0..{len(names) - 1}; set "
                "data.label_names or fix the data")


def label_id(raw, label_ids: dict[str, int]) -> int:
    """The class id of a label ``read_labels`` and ``check_known`` accepted."""
    value = label_value(raw, label_ids)
    return value if isinstance(value, int) else label_ids[value]


def check_no_header_rows(rows: Rows, text_column: str, label_column: str) -> None:
    """Refuse a row that repeats the header (files joined with their headers, byte-order
    marks and all), which would otherwise become a class of its own."""
    texts = column_values(rows.dataset, text_column)
    for index, label in enumerate(column_values(rows.dataset, label_column)):
        if bare(label) == label_column and bare(texts[index]) == text_column:
            raise NlpseqError(f"{rows.where(index)} repeats the header ({text_column}, "
                              f"{label_column}); remove it (were files joined with their headers?)")


def warn_thin_classes(rows: Rows, values: list[str | int], names: list[str]) -> None:
    """Warn of classes a classifier can barely learn: classes with no training example
    (integer labels are class ids, so labels 1..5 leave class 0 empty) and classes of one or
    two examples beside far larger ones (a typo such as ``Pos`` beside ``pos``)."""
    named = [names[value] if isinstance(value, int) else value for value in values]
    counts = Counter(named)
    empty = [name for name in names if not counts[name]]
    if empty:
        log.warning("Class(es) %s have no training examples: integer labels are class ids "
                    "0..C-1 (labels 1..5 leave class 0 empty); relabel the data, or set "
                    "data.label_names if these classes are meant", empty)
    largest = max(counts.values())
    for name, count in sorted(counts.items()):
        if count <= 2 and largest >= 50 * count:
            log.warning("Class %r has %d training example(s) (the first at %s) against %d in "
                        "the largest class: a typo in a label?", name, count,
                        rows.where(named.index(name)), largest)
