"""nlpseq-predict reads its input lines as the data readers read training lines."""

import pytest

from nlpseq.cli.predict import read_lines
from nlpseq.errors import NlpseqError


def test_input_lines_end_at_line_breaks_only_and_lose_a_byte_order_mark(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufeffloved it\r\nwell\u2028made\n\nthe end".encode())
    assert read_lines(str(path)) == ["loved it", "well\u2028made", "the end"]
    assert read_lines(str(path), keep_empty=True) == ["loved it", "well\u2028made", "", "the end"]


def test_a_directory_as_input_file_is_named_as_one(tmp_path):
    with pytest.raises(NlpseqError, match="is a directory; give a file"):
        read_lines(str(tmp_path))


def test_a_runs_record_files_are_known_and_other_files_beside_them_are_not(tmp_path):
    from nlpseq.cli.predict import is_run_record

    for name in (".hydra/config.yaml", "metrics.json", "csv/version_0/metrics.csv",
                 "hypotheses.test.txt", "train.log", "mine.jsonl", "sub/mine.txt"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert [is_run_record(tmp_path / name) for name in (
        ".hydra/config.yaml", "metrics.json", "csv/version_0/metrics.csv",
        "hypotheses.test.txt", "train.log")] == [True] * 5
    assert not is_run_record(tmp_path / "mine.jsonl")  # a user's earlier predictions
    assert not is_run_record(tmp_path / "sub" / "mine.txt")
    assert not is_run_record(tmp_path / "new.jsonl")  # not written yet


def test_a_run_or_its_checkpoints_folder_names_the_best_checkpoint(tmp_path):
    from nlpseq.tasks.checkpoint import checkpoint_file

    best = tmp_path / "checkpoints" / "best.ckpt"
    best.parent.mkdir()
    best.write_bytes(b"")
    (tmp_path / ".hydra").mkdir()
    assert checkpoint_file(tmp_path) == best
    assert checkpoint_file(tmp_path / "checkpoints") == best
    with pytest.raises(NlpseqError, match="is a directory without checkpoints/best.ckpt"):
        checkpoint_file(best.parent.parent / ".hydra")  # a folder of a run that holds none


@pytest.mark.parametrize("text", ["dull, but short", "it's great", "Zwei Männer spielen (gut)!",
                                  "score=3 of [5]"])
def test_the_quoting_advice_passes_the_text_through_the_shell_and_hydra_unchanged(text):
    """The command line nlpseq suggests, run through a POSIX shell's word splitting and
    Hydra's override grammar, gives back the text as typed."""
    import re
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    from nlpseq.cli.common import quote_advice

    advice = quote_advice("text", text)
    suggested = re.search(r"quotes, (.+) \(nlpseq-predict", advice).group(1)
    [word] = shlex.split(suggested)
    [override] = OverridesParser.create().parse_overrides([word])
    assert override.value() == text


@pytest.mark.parametrize("text", ['say "hi", it\'s $5', "it's great!"])
def test_text_the_shell_cannot_quote_simply_goes_to_standard_input(text):
    """An apostrophe needs the shell's double quotes, where $, `, \\ and (in an interactive
    bash) ! are still read by the shell."""
    from nlpseq.cli.common import quote_advice

    assert quote_advice("text", text) == (
        "give the text on standard input instead (one text a line)")


def test_bytes_on_standard_input_that_are_not_utf8_are_named_as_in_an_input_file(monkeypatch):
    """Standard input is read as bytes and decoded as ``input_file`` is: the line and
    column of a bad byte, not a decoding traceback; a byte-order mark is dropped."""
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"ok\ngood \xff film\n")))
    with pytest.raises(NlpseqError, match=r"^standard input: line 2, column 6 is not valid "
                                          r"UTF-8 \(byte 0xff\)"):
        read_lines(None)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\ufeffgr\u00fcn\n".encode())))
    assert read_lines("-") == ["gr\u00fcn"]


def test_an_exports_files_are_known_and_other_files_beside_them_are_not(tmp_path):
    from nlpseq.export.checks import is_export_file

    for name in ("export.json", "model.onnx", "encoder.pt", "tokenizer.json",
                 "tokenizer_meta.json", "source_tokenizer/tokenizer.json", "mine.jsonl"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("{}")
    assert all(is_export_file(tmp_path / name) for name in (
        "export.json", "model.onnx", "encoder.pt", "tokenizer.json", "tokenizer_meta.json",
        "source_tokenizer/tokenizer.json"))
    assert not is_export_file(tmp_path / "mine.jsonl")  # a user's predictions
    assert not is_export_file(tmp_path / "new.jsonl")  # not written yet
    (tmp_path / "export.json").unlink()
    assert not is_export_file(tmp_path / "model.onnx")  # a folder that is no export
