"""Text files are read exactly as the csv and json modules read them, or refused in one line.

Two properties over generated files: a well-formed file (any quoting, embedded tabs,
commas, quotes and line breaks, CRLF, a byte-order mark, blank lines) is read row for row;
any file at all, well-formed or damaged, is either read as the csv/json modules read it or
refused with one NlpseqError line, never a traceback or a silently different row.
"""

import csv
import io
import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlpseq.data.readers import parse
from nlpseq.data.sources import load_file
from nlpseq.errors import NlpseqError

BOM = "\ufeff"
TRICKY = ["a", "b", " ", '"', "'", ",", "\t", "\n", "\r", "\r\n", "{", "}", "[", "]", ":",
          "1", "0", "-", ".", "\\", "é", BOM, "null", "NA", "true"]
pieces = st.lists(st.sampled_from(TRICKY), max_size=8).map("".join)
text_values = pieces | st.text(max_size=6)
names = st.text("abcdefgh_", min_size=1, max_size=5)
CHECKS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def tables(draw, values=text_values):
    columns = draw(st.lists(names, min_size=2, max_size=4, unique=True))
    rows = draw(st.lists(st.lists(values, min_size=len(columns), max_size=len(columns)),
                         min_size=1, max_size=6))
    return columns, rows


def read(text: str, suffix: str, required=()) -> list[dict]:
    """load_file on ``text`` written as UTF-8; the rows as dicts."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"data{suffix}"
        path.write_bytes(text.encode("utf-8"))
        dataset = load_file(path, "train", required={c: f"data.{c}" for c in required}).dataset
        return dataset.to_list()


def dress(draw, lines: list[str], newline: str) -> str:
    """Blank lines between rows, an optional byte-order mark, the chosen line end."""
    out = []
    for line in lines:
        out += [""] * draw(st.integers(0, 2)) + [line]
    return (BOM if draw(st.booleans()) else "") + newline.join(out) + newline


# ------------------------------------------------------------------ well-formed files
@CHECKS
@given(tables(), st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL, csv.QUOTE_NONNUMERIC]),
       st.sampled_from(["\n", "\r\n"]), st.data())
def test_a_well_formed_csv_is_read_row_for_row(table, quoting, newline, data):
    columns, rows = table
    lines = []
    for row in [columns, *rows]:
        buffer = io.StringIO()
        csv.writer(buffer, quoting=quoting).writerow(row)  # quotes fields holding \r or \n
        lines.append(buffer.getvalue().removesuffix("\r\n"))
    text = dress(data.draw, lines, newline)
    assert read(text, ".csv") == [dict(zip(columns, row, strict=True)) for row in rows]


@CHECKS
@given(tables(st.text(st.characters(blacklist_characters="\t\r\n", blacklist_categories=["Cs"]),
                      max_size=8)),
       st.sampled_from(["\n", "\r\n"]), st.data())
def test_a_well_formed_tsv_is_read_row_for_row_quotes_and_all(table, newline, data):
    columns, rows = table
    text = dress(data.draw, ["\t".join(row) for row in [columns, *rows]], newline)
    assert read(text, ".tsv") == [dict(zip(columns, row, strict=True)) for row in rows]


@CHECKS
@given(tables(text_values | st.integers(-5, 5)), st.sampled_from(["\n", "\r\n"]), st.data())
def test_well_formed_json_lines_are_read_row_for_row(table, newline, data):
    columns, rows = table
    lines = [json.dumps(dict(zip(columns, row, strict=True)),
                        ensure_ascii=data.draw(st.booleans())) for row in rows]
    text = dress(data.draw, lines, newline)
    expected = [{c: str(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    assert read(text, ".jsonl", required=columns) == expected


# ----------------------------------------------------------------------- any file
def reference(text: str, suffix: str, required=()) -> list[dict] | None:
    """The rows as Python's csv or json module reads them (header first, blank lines
    skipped, JSON scalars other than strings as their JSON text), or None where no
    row-for-row reading exists (ragged rows, no rows, a line that is not an object, a
    required JSON value missing or not a string or number)."""
    text = text.removeprefix(BOM)
    if suffix in (".csv", ".tsv"):
        dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {}
        try:
            rows = [row for row in csv.reader(io.StringIO(text, newline=""), **dialect) if row]
        except csv.Error:
            return None
        if len(rows) < 2 or len(set(rows[0])) < len(rows[0]):
            return None
        if any(len(row) != len(rows[0]) for row in rows):
            return None
        return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    try:
        if text.lstrip().startswith("["):
            items = json.loads(text)
        else:
            items = [json.loads(line) for line in text.split("\n") if line.strip()]
    except ValueError:
        return None
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    keys = list(dict.fromkeys(key for item in items for key in item))
    for item in items:
        if any(not isinstance(item.get(key), (str, int, float)) or item[key] is True
               or item[key] is False for key in required if key in keys):
            return None
    return [{key: value if value is None or isinstance(value, str)
             else json.dumps(value, ensure_ascii=False)
             for key in keys for value in [item.get(key)]} for item in items]


@st.composite
def damaged(draw, suffix):
    """A well-formed file with a few random characters inserted or deleted."""
    columns, rows = draw(tables(text_values | st.integers(0, 3)))
    if suffix == ".jsonl":
        lines = [json.dumps(dict(zip(columns, row, strict=True))) for row in rows]
    else:
        delimiter = "\t" if suffix == ".tsv" else ","
        lines = [delimiter.join(str(v) for v in row) for row in [columns, *rows]]
    text = dress(draw, lines, draw(st.sampled_from(["\n", "\r\n"])))
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:at] + draw(st.sampled_from(TRICKY)) + text[at:]
        else:
            text = text[:at] + text[at + draw(st.integers(1, 3)):]
    return text


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_any_file_is_read_as_the_csv_and_json_modules_read_it_or_refused(suffix):
    @CHECKS
    @given(damaged(suffix) | st.lists(st.sampled_from(TRICKY), max_size=30).map("".join),
           st.booleans())
    def check(text, require_first):
        required = ()
        if require_first and suffix == ".jsonl":
            first = reference(text, suffix)
            required = tuple(first[0])[:1] if first else ()
        expected = reference(text, suffix, required)
        try:
            rows = read(text, suffix, required)
        except NlpseqError as err:
            message = str(err)
            assert "\n" not in message and "\r" not in message, message
            assert f"data{suffix}" in message, message  # names the file
            return
        assert expected is not None, f"read {rows!r}; csv/json gives no rows for {text!r}"
        assert rows == expected

    check()


# ------------------------------------------------------------------- named cases
@pytest.mark.parametrize("suffix, text, message", [
    (".tsv", "sentence\tlabel\ngood film\tpos\nno label here\n",
     r"data.tsv, line 3: 1 field\(s\) where the header has 2"),
    (".tsv", "sentence\tlabel\na\tb\tc\n", r"line 2: 3 field\(s\).*cannot hold a tab"),
    (".csv", 'sentence,label\n"unclosed,pos\nmore,neg\n', r"data.csv, line 2: cannot be read"),
    (".csv", 'sentence,label\n"quoted" tail,pos\n', r"line 2: cannot be read as csv"),
    (".csv", "a,a\n1,2\n", r"line 1: the header names column 'a' twice"),
    (".jsonl", '{"sentence": "x", "label": "pos"}\n{"sentence": "y", "label": "neg"\n',
     r"data.jsonl, line 2: not one JSON object"),
    (".jsonl", '{"sentence": "x", "label": "pos"}\n["y", "neg"]\n',
     r"line 2: a JSON list, not an object"),
    (".jsonl", '{"sentence": "x", "label": "pos", "label": "neg"}\n',
     r"line 1: not one JSON object \(key 'label' appears twice\)"),
    (".jsonl", '{"label": "pos"}\n\n{"text": "y", "label": "neg"}\n',
     r"data.jsonl, line 1: no value for 'text' \(data.text\)"),
    (".jsonl", '{"text": null, "label": "pos"}\n', r"line 1: no value for 'text'"),
    (".jsonl", '{"text": ["a", "b"], "label": "pos"}\n',
     r"line 1: 'text' is \[\"a\", \"b\"\]; expected a string or a number"),
    (".json", '[{"text": "a"},\n "b"]', r"data.json, item 2: a JSON str, not an object"),
    (".jsonl", '{"text": "a", "label": true}\n', r"line 1: 'label' is true; expected a string"),
    (".jsonl", '{"text": "a \\ud800", "label": "pos"}\n',
     r"data.jsonl, line 1: the escape \\ud800 is half of a surrogate pair"),
    (".jsonl", '{"text": "a", "label": "pos"}\n{"text": "b", "label": NaN}\n',
     r"/data.jsonl, line 2: 'label' is NaN, which is not a JSON number \(Python's json.dumps "
     r"writes it for a float nan or inf\); expected a string or a number$"),
    (".jsonl", '{"text": -Infinity, "label": "pos"}\n',
     r"/data.jsonl, line 1: 'text' is -Infinity"),
    (".json", '[{"text": "a", "label": "pos"},\n {"text": "b", "label": Infinity}]',
     r"/data.json, item 2: 'label' is Infinity, which is not a JSON number"),
])
def test_malformed_rows_are_refused_with_file_and_line(suffix, text, message):
    with pytest.raises(NlpseqError, match=message):
        read(text, suffix, required=("text", "label"))


def test_values_keep_the_text_of_the_file():
    rows = read('id,text,score\n007,"null",1.0\nNA,"a, ""b""\r\nc",\n', ".csv")
    assert rows == [{"id": "007", "text": "null", "score": "1.0"},
                    {"id": "NA", "text": 'a, "b"\r\nc', "score": ""}]


def test_json_numbers_and_missing_keys():
    rows = read('{"text": "a", "n": 1}\n{"text": 2.5, "extra": true}\n', ".jsonl",
                required=("text",))
    assert rows == [{"text": "a", "n": "1", "extra": None},
                    {"text": "2.5", "n": None, "extra": "true"}]


def test_a_json_array_of_objects_is_rows():
    assert read('[{"text": "a"}, {"text": "b"}]', ".json") == [{"text": "a"}, {"text": "b"}]


def test_text_lines_read_crlf_as_line_ends_and_keep_the_rest():
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.txt"
        path.write_bytes(f"{BOM}one\r\ntwo\u2028half\n\nin\rside\nlast".encode())
        assert load_file(path, "train").dataset["text"] == [
            "one", "two\u2028half", "", "in\rside", "last"]
        kept = load_file(path, "train", keep_linebreaks=True).dataset["text"]
        assert kept == ["one\n", "two\u2028half\n", "\n", "in\rside\n", "last"]


@given(st.lists(st.text(st.characters(blacklist_characters="\n\ufeff",
                                      blacklist_categories=["Cs"]))),
       st.sampled_from(["\n", "\r\n"]))
def test_text_lines_are_counted_as_wc_counts_them(lines, end):
    """Only LF (or CRLF) ends a line: two parallel files whose ``wc -l`` agree have as many
    rows, whatever lone CRs their lines hold."""
    lines = [line.rstrip("\r") for line in lines]  # a CR before the end would make a CRLF
    text = "".join(line + end for line in lines)
    assert parse(text, ".txt", "t.txt").columns["text"] == lines


def test_a_field_longer_than_the_csv_default_limit_is_read():
    long = "w " * 100_000
    assert read(f"text,label\n{long},pos\n", ".csv")[0]["text"] == long


def test_nan_in_a_column_nlpseq_does_not_read_is_its_json_text():
    assert read('{"text": "a", "score": NaN}\n', ".jsonl", required=("text",)) == [
        {"text": "a", "score": "NaN"}]


DEEP = "[" * 100_000 + "]" * 100_000
TOO_DEEP = (r"JSON nested deeper than Python's json module reads \(arrays or objects inside one "
            r"another, about 1000 levels\)$")


@pytest.mark.parametrize("suffix, text, where", [
    (".jsonl", f'{{"text": "a"}}\n\n{{"text": "b", "label": {DEEP}}}\n', "data.jsonl, line 3"),
    (".jsonl", f'{{"text": {DEEP}}}\n', "data.jsonl, line 1"),
    (".json", f'[{{"text": "a"}},\n {{"text": "[[[ in a string"}},\n {{"x": {DEEP}}}]',
     "data.json, line 3"),
])
def test_json_nested_too_deep_is_refused_with_its_line(suffix, text, where):
    with pytest.raises(NlpseqError, match=rf"/{where}: {TOO_DEEP}"):
        read(text, suffix, required=("text",))


@pytest.mark.parametrize("shape", [
    '{"text": "a", "x": DEEP}', '{"text": "\\u00e9", "x": DEEP}', '{"text": DEEP}',
    '[{"text": DEEP}]'])
def test_json_nested_near_the_limit_is_read_or_refused_never_a_traceback(shape):
    """``json.loads`` may read a value ``json.dumps`` then finds too deep to write."""
    for depth in range(800, 1000):
        text = shape.replace("DEEP", "[" * depth + "]" * depth)
        try:
            parse(text, ".jsonl", "data.jsonl", required=("text",))
        except NlpseqError as err:
            assert re.match(rf"data.jsonl, (line|item) 1: ({TOO_DEEP}|'text' is \[)", str(err))
