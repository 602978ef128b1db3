"""Wrong data and out-of-range optimizer numbers stop ``nlpseq-train`` with one line."""

import json

from tests.integration.conftest import TINY, error_line, run_cli_cases

GOOD = [("a fine film", "pos"), ("a dull film", "neg")] * 4


def write_tsv(path, rows, extra: str = ""):
    path.write_text("sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in rows) + extra)
    return path


def test_train_refuses_wrong_data_and_optimizer_numbers_in_one_line(tmp_path):
    good = write_tsv(tmp_path / "good.tsv", GOOD)
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_text("".join(json.dumps({"sentence": t, "label": 1 if y == "neg" else y}) + "\n"
                             for t, y in GOOD))
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text('{"sentence": "fine", "label": "pos"}\n{"label": "neg"}\n')
    cases = [
        (mixed, "mixed.jsonl mixes label names and integer class ids: line 1 has the name "
                "'pos', line 2 has the id 1"),
        (write_tsv(tmp_path / "short.tsv", GOOD, "no label\n"),
         "short.tsv, line 10: 1 field(s) where the header has 2"),
        (no_text, "no_text.jsonl, line 2: no value for 'sentence' (data.text_column)"),
        (write_tsv(tmp_path / "one.tsv", [("fine", "pos")] * 4),
         "one.tsv has one label class only ('pos')"),
    ]
    argvs = [("train", "data=files", f"data.train_file={path}", f"data.validation_file={good}")
             for path, _ in cases]
    bad_numbers = [("optimizer.lr=0", "optimizer.lr=0 is not valid: expected a number > 0"),
                   ("optimizer.lr=-1", "optimizer.lr=-1 is not valid: expected a number > 0"),
                   ("scheduler.warmup_steps=-1", "scheduler.warmup_steps=-1 is not valid")]
    argvs += [("train", override) for override, _ in bad_numbers]
    expected = [message for _, message in cases + bad_numbers]
    results = run_cli_cases(argvs, *TINY, f"hydra.run.dir={tmp_path}/run")
    for argv, message, result in zip(argvs, expected, results, strict=True):
        assert result.returncode == 2, (argv, result.stderr[-2000:])
        assert message in error_line(result), (argv, error_line(result))
        assert "Traceback" not in result.stderr, argv
