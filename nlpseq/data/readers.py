"""Text files read exactly, with Python's ``csv`` and ``json`` modules: every value is the
text the file holds, and every row knows the line it starts on.

No column type is guessed: ``007``, ``null``, ``NA`` and ``1.0`` stay those strings. What a
format cannot read one way only is refused with the file and line: a row with more or
fewer fields than the header, an unclosed quote, a line that is not one JSON object, a key
given twice in one object, a required value that is missing or NaN, JSON nested deeper than
Python's ``json`` module reads.

- ``.tsv``: one row a line, fields split at tabs, no quoting (``csv.QUOTE_NONE``: a quote
  is a character of the text, as in the GLUE files); a text cannot hold a tab.
- ``.csv``: the ``csv`` module's default dialect: a field holding commas, quotes or line
  breaks is quoted with ``"``, a quote inside it doubled; malformed quoting is refused.
- ``.jsonl`` and ``.json``: one JSON object a line (a ``.json`` file may instead hold one
  array of objects). Strings are kept; numbers, ``true``/``false``, arrays and objects
  become their JSON text as ``json.dumps`` writes it; ``null`` or an absent key is missing.
- ``.txt``: one row a line in the column ``text``.

A byte-order mark is skipped, CRLF ends a line like LF, and blank lines are skipped (in
.txt files a blank line is a row).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import sys
from dataclasses import dataclass

from nlpseq.errors import NlpseqError

DELIMITED = {
    ".tsv": {"delimiter": "\t", "quoting": csv.QUOTE_NONE},
    ".csv": {"delimiter": ","},
}
FIELD_HINTS = {
    ".tsv": "a TSV row is one line with a tab between fields (a text cannot hold a tab)",
    ".csv": 'quote a field that holds commas, quotes or line breaks ("...", with "" for a '
            "quote inside it)",
}
JSON_HINT = "write one JSON object a line (a .json file may instead hold one array of objects)"
TOO_DEEP = ("JSON nested deeper than Python's json module reads (arrays or objects inside one "
            "another, about 1000 levels)")
STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')  # a JSON string (one holds no line break)


@dataclass
class Table:
    """Rows as columns of text (None: a missing JSON value) and where each row starts:
    ``lines[i]`` is a line number, or the item number in a JSON array (``unit``)."""

    columns: dict[str, list[str | None]]
    lines: list[int]
    unit: str = "line"


def parse(text: str, suffix: str, where: str, keep_linebreaks: bool = False,
          required: tuple[str, ...] = ()) -> Table:
    """The rows of ``text`` (a whole file, decoded) in the format of ``suffix``; errors
    name ``where`` (the file) and the line. JSON values of the ``required`` columns must be
    strings or numbers; ``keep_linebreaks`` keeps each .txt line's ``"\\n"``."""
    text = text.removeprefix("\ufeff")
    if suffix == ".txt":
        return _text_lines(text, keep_linebreaks)
    if suffix in DELIMITED:
        return _delimited(text, where, suffix)
    return _json(text, where, required)


def _text_lines(text: str, keep_linebreaks: bool) -> Table:
    """LF and CRLF end a line, as ``wc -l``, sacrebleu and Moses count lines; a lone CR (or
    U+2028) stays inside its line, so two parallel files stay aligned line for line."""
    lines = [line.removesuffix("\r\n") + "\n" if line.endswith("\r\n") else line
             for line in io.StringIO(text, newline="\n").readlines()]
    rows = lines if keep_linebreaks else [line.removesuffix("\n") for line in lines]
    return Table({"text": rows}, list(range(1, len(rows) + 1)))


def _delimited(text: str, where: str, suffix: str) -> Table:
    # A field may be as long as the file: long documents are cut by data.max_length later,
    # not refused here by the csv module's 128 KiB default.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    reader = csv.reader(io.StringIO(text, newline=""), strict=True, **DELIMITED[suffix])
    header: list[str] | None = None
    rows, lines = [], []
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            raise NlpseqError(f"{where}, line {start}: cannot be read as {suffix[1:]} ({err}); "
                              f"{FIELD_HINTS[suffix]}") from None
        if not row:  # a blank line
            continue
        if header is None:
            header = _header(row, where, start)
        elif len(row) != len(header):
            raise NlpseqError(
                f"{where}, line {start}: {len(row)} field(s) where the header has "
                f"{len(header)} ({', '.join(map(repr, header))}); every row needs a value for each "
                f"column: {FIELD_HINTS[suffix]}")
        else:
            rows.append(row)
            lines.append(start)
    columns = {name: [row[i] for row in rows] for i, name in enumerate(header or [])}
    return Table(columns, lines)


def _header(row: list[str], where: str, line: int) -> list[str]:
    seen = set()
    for name in row:
        if name in seen:
            raise NlpseqError(f"{where}, line {line}: the header names column {name!r} twice")
        seen.add(name)
    return row


class _DuplicateKey(ValueError):
    pass


def _object(pairs: list[tuple[str, object]]) -> dict:
    """``json.loads`` keeps the last of two equal keys; nlpseq refuses the object."""
    found = dict(pairs)
    if len(found) < len(pairs):
        keys = [key for key, _ in pairs]
        raise _DuplicateKey(f"key {next(k for k in keys if keys.count(k) > 1)!r} appears twice")
    return found


def _json(text: str, where: str, required: tuple[str, ...]) -> Table:
    if text.lstrip().startswith("["):
        items, unit = _json_array(text, where), "item"
    else:
        items, unit = _json_lines(text, where), "line"
    columns: dict[str, list[str | None]] = {}
    for row, (number, item) in enumerate(items):
        for key in item:
            columns.setdefault(key, [None] * row)
        for key, values in columns.items():
            values.append(_json_text(item.get(key), key, key in required,
                                     f"{where}, {unit} {number}"))
    return Table(columns, [number for number, _ in items], unit)


def _json_lines(text: str, where: str) -> list[tuple[int, dict]]:
    items = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line, object_pairs_hook=_object)
        except ValueError as err:
            raise NlpseqError(f"{where}, line {number}: not one JSON object ({_reason(err)}); "
                              f"{JSON_HINT}") from None
        except RecursionError:
            raise NlpseqError(f"{where}, line {number}: {TOO_DEEP}") from None
        if not isinstance(item, dict):
            raise NlpseqError(f"{where}, line {number}: a JSON {type(item).__name__}, not an "
                              f"object; {JSON_HINT}")
        if "\\u" in line:
            _check_unicode(item, f"{where}, line {number}")
        items.append((number, item))
    return items


def _json_array(text: str, where: str) -> list[tuple[int, dict]]:
    try:
        items = json.loads(text, object_pairs_hook=_object)
    except ValueError as err:
        line = f", line {err.lineno}" if isinstance(err, json.JSONDecodeError) else ""
        raise NlpseqError(f"{where}{line}: not valid JSON ({_reason(err)})") from None
    except RecursionError:
        raise NlpseqError(f"{where}, line {_deepest_line(text)}: {TOO_DEEP}") from None
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise NlpseqError(f"{where}, item {number}: a JSON {type(item).__name__}, not an "
                              "object; a JSON array of rows holds one object a row")
        if "\\u" in text:
            _check_unicode(item, f"{where}, item {number}")
    return list(enumerate(items, start=1))


def _check_unicode(item: dict, where: str) -> None:
    """A ``\\ud800`` escape gives a lone surrogate: not a character, and not storable."""
    try:
        _dumps(item, where).encode("utf-8")
    except UnicodeEncodeError as err:
        code = ord(err.object[err.start])
        raise NlpseqError(f"{where}: the escape \\u{code:04x} is half of a surrogate pair, "
                          "not a character; write the character itself") from None


def _dumps(value, where: str) -> str:
    """``json.dumps``, refusing a value nested too deep to write: ``json.loads`` may just
    have managed to read it, a few calls less deep."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except RecursionError:
        raise NlpseqError(f"{where}: {TOO_DEEP}") from None


def _deepest_line(text: str) -> int:
    """The line where arrays and objects nest deepest (brackets inside strings ignored):
    where a file too deep for ``json.loads`` goes too deep."""
    depth = deepest = 0
    line = 1
    for number, row in enumerate(STRING.sub('""', text).split("\n"), start=1):
        for char in row:
            depth += (char in "[{") - (char in "]}")
            if depth > deepest:
                deepest, line = depth, number
    return line


def _reason(err: ValueError) -> str:
    if isinstance(err, json.JSONDecodeError):
        return f"{err.msg} at column {err.colno}"
    return str(err)


def _json_text(value, key: str, required: bool, where: str) -> str | None:
    """A JSON value as text (None stays None: a missing value). A column nlpseq reads
    (``required``) must hold a string or a number, not true/false, an array or an object,
    nor NaN or Infinity (not JSON, but Python's ``json.dumps`` writes them for float nan and
    inf; read as text they would become a class or a word "NaN")."""
    if required and isinstance(value, (bool, list, dict)):
        raise NlpseqError(f"{where}: {key!r} is {_dumps(value, where)[:40]}; "
                          "expected a string or a number")
    if required and isinstance(value, float) and not math.isfinite(value):
        raise NlpseqError(f"{where}: {key!r} is {json.dumps(value)}, which is not a JSON number "
                          "(Python's json.dumps writes it for a float nan or inf); expected a "
                          "string or a number")
    if value is None or isinstance(value, str):
        return value
    return _dumps(value, where)
