"""task=translation as a user runs it: train, evaluate with BLEU, translate files and
standard input, export attention, and the errors a user can cause."""

import json
import re

import pytest

import nlpseq
from nlpseq.cli.train import train
from nlpseq.data import TranslationDataModule
from tests.conftest import SHARED_DATA
from tests.integration.conftest import (
    TINY,
    compose_config,
    error_line,
    run_cli,
    run_cli_cases,
)

MT = ["task=translation", *TINY, "task.decoder.hidden_size=16", "tokenizer.vocab_size=120"]
SAMPLE_TEST = 100  # pairs in the embedded sample's test split


@pytest.fixture(scope="session")
def trained_mt(tmp_path_factory):
    """One small GRU translation model on the embedded German-English sample (shared)."""
    run_dir = tmp_path_factory.mktemp("mt") / "run"
    result = run_cli("train", "task=translation", "encoder=gru", "task.embedding_dim=48",
                     "encoder.hidden_size=48", "task.decoder.hidden_size=64",
                     "tokenizer.vocab_size=120", "optimizer.lr=0.01", "trainer.max_epochs=8",
                     "callbacks.early_stopping.patience=8", "task.beam_size=3",
                     "trainer.enable_progress_bar=false", "logger=csv",
                     f"hydra.run.dir={run_dir}")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


def test_a_model_learns_the_sample_and_reports_bleu_chrf_and_hypotheses(trained_mt):
    metrics = json.loads((trained_mt / "metrics.json").read_text())
    assert metrics["val/bleu"] > 40 and metrics["test/bleu"] > 40  # a copy of nothing is ~0
    assert metrics["test/chrf"] > 50
    assert metrics["test/bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert metrics["test/beam_size"] == 3 and metrics["test/sentences"] == SAMPLE_TEST
    hypotheses = (trained_mt / "hypotheses.test.txt").read_text().splitlines()
    assert len(hypotheses) == SAMPLE_TEST and sum(h.endswith((".", "?")) for h in hypotheses) > 80
    assert (trained_mt / "source_tokenizer" / "tokenizer_meta.json").is_file()
    assert (trained_mt / "target_tokenizer" / "tokenizer_meta.json").is_file()


def test_eval_reports_beam_and_greedy_bleu_and_writes_hypotheses(trained_mt, tmp_path):
    for beam in (1, 4):
        result = run_cli("evaluate", f"ckpt_path={trained_mt}", f"beam_size={beam}",
                         f"hydra.run.dir={tmp_path}/beam{beam}")
        assert result.returncode == 0, result.stderr[-3000:]
        assert "sacrebleu BLEU nrefs:1" in result.stdout
    greedy, beam = (json.loads((tmp_path / f"beam{b}" / "metrics.json").read_text())
                    for b in (1, 4))
    assert greedy["test/beam_size"] == 1 and beam["test/beam_size"] == 4
    assert greedy["test/bleu"] > 30 and beam["test/bleu"] > 30
    lines = (tmp_path / "beam4" / "hypotheses.test.txt").read_text().splitlines()
    assert len(lines) == SAMPLE_TEST


def test_eval_reads_other_parallel_files_and_answers_every_pair_line_for_line(trained_mt,
                                                                                tmp_path):
    """Other files in the checkpoint's direction (de -> en), an empty side included."""
    (tmp_path / "mine.de").write_text("Der Hund ist rot.\n\nWo ist die Katze?\nDer Hund.\n")
    (tmp_path / "mine.en").write_text("The dog is red.\nA lost line.\nWhere is the cat?\n\n")
    result = run_cli("evaluate", f"ckpt_path={trained_mt}", "data=files",
                     f"data.test_file={tmp_path}/mine", f"hydra.run.dir={tmp_path}/run")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 of 4 test pairs have an empty source" in result.stdout + result.stderr
    lines = (tmp_path / "run" / "hypotheses.test.txt").read_text().split("\n")[:-1]
    assert len(lines) == 4 and lines[1] == ""  # the empty source gets the empty hypothesis
    assert "cat" in lines[2] and "dog" in lines[3]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test/sentences"] == 4 and metrics["test/bleu"] > 0


def test_predict_translates_a_file_line_for_line_keeping_empty_lines(trained_mt, tmp_path):
    source = tmp_path / "src.de"
    source.write_text("Der Hund ist rot.\n\nWo ist die Katze?\n")
    output = tmp_path / "hyp.en"
    result = run_cli("predict", f"ckpt_path={trained_mt}", f"input_file={source}",
                     f"output_file={output}", "beam_size=3")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = output.read_text().split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == ""
    assert "dog" in lines[0] and "cat" in lines[2]

    piped = run_cli("predict", f"ckpt_path={trained_mt}", stdin="Wo ist die Katze?\n")
    assert piped.returncode == 0, piped.stderr[-2000:]
    assert piped.stdout.splitlines() == [lines[2]]


def test_predict_n_best_gives_sorted_json_lines(trained_mt):
    result = run_cli("predict", f"ckpt_path={trained_mt}", "text=Der Hund ist rot.",
                     "beam_size=4", "n_best=3")
    assert result.returncode == 0, result.stderr[-2000:]
    row = json.loads(result.stdout)
    scores = [t["score"] for t in row["translations"]]
    assert len(scores) == 3 and scores == sorted(scores, reverse=True)
    assert len({t["text"] for t in row["translations"]}) == 3


def test_attention_weights_export_as_json_and_png(trained_mt, tmp_path):
    for name in ("att.json", "att.png"):
        result = run_cli("predict", f"ckpt_path={trained_mt}", "text=Der Hund ist rot.",
                         f"attention_file={tmp_path / name}")
        assert result.returncode == 0, result.stderr[-2000:]
    attention = json.loads((tmp_path / "att.json").read_text())
    weights = attention["weights"]
    assert len(weights) == len(attention["target_tokens"]) and attention["target_tokens"][-1] == \
        "<eos>"
    assert all(len(row) == len(attention["source_tokens"]) for row in weights)
    assert all(abs(sum(row) - 1) < 1e-4 for row in weights)
    assert (tmp_path / "att.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attention_of_only_empty_lines_is_refused_in_one_line(trained_mt, tmp_path):
    model = nlpseq.load(trained_mt, device="cpu")
    with pytest.raises(nlpseq.NlpseqError, match="attention_file needs a non-empty line"):
        model.predict(["", "  "], attention_file=str(tmp_path / "att.json"))
    assert not (tmp_path / "att.json").exists()
    assert model.predict(["", "Der Hund."])[0]["translations"] == [{"text": "", "score": 0.0}]


def test_predict_rejects_bad_options_and_a_prompt_in_one_line(trained_mt):
    text = "text=Der Hund ist rot."
    cases = [
        ((text, "beam_size=0"), "beam_size must be an integer >= 1; got 0"),
        ((text, "beam_size=2", "n_best=3"), r"n_best must be an integer in \[1, beam_size=2\]"),
        ((text, "attention_file=att.gif"), "must end in .json or .png"),
        (("prompt=Der",), "is a 'translation' checkpoint; this command needs a 'generation' one"),
    ]
    results = run_cli_cases([("predict", f"ckpt_path={trained_mt}", *args) for args, _ in cases])
    for (args, message), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert re.search(message, error_line(result)), args


def test_eval_rejects_beam_size_zero_and_beam_options_for_other_tasks(trained_mt, trained_run,
                                                                     tmp_path):
    cases = [
        (("evaluate", f"ckpt_path={trained_mt}", "beam_size=0", f"hydra.run.dir={tmp_path}/a"),
         "beam_size must be an integer >= 1"),
        (("evaluate", f"ckpt_path={trained_run}", "beam_size=2", f"hydra.run.dir={tmp_path}/b"),
         "applies to translation checkpoints"),
        (("predict", f"ckpt_path={trained_run}", "text=great film", "attention_file=a.json"),
         "attention_file needs a translation checkpoint"),
    ]
    results = run_cli_cases([args for args, _ in cases])
    for (args, message), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert message in error_line(result), args


def test_training_refuses_unaligned_files_unknown_suffixes_and_a_blind_decoder(tmp_path):
    (tmp_path / "train.de").write_text("a\nb\nc\n")
    (tmp_path / "train.en").write_text("a\nb\n")
    common = ["task=translation", "data=files", f"data.train_file={tmp_path}/train"]
    cases = [
        ((*common, f"hydra.run.dir={tmp_path}/a"), ["has 3 lines", "has 2"]),
        ((*common, "data.source_lang=fr", f"hydra.run.dir={tmp_path}/b"),
         ["language suffix 'fr'", "de, en"]),
        (("task=translation", "data=sst2", f"hydra.run.dir={tmp_path}/c"),
         ["sentiment dataset"]),
        (("task=translation", "task.decoder.attention=none", "task.decoder.bridge=zero",
          f"hydra.run.dir={tmp_path}/d"),
         ["attention=none with bridge=zero never reads the source"]),
    ]
    results = run_cli_cases([("train", *args) for args, _ in cases])
    for (args, messages), result in zip(cases, results, strict=True):
        assert result.returncode == 2, (args, result.stderr[-2000:])
        assert all(message in error_line(result) for message in messages), args


@pytest.mark.parametrize("overrides", [
    ["encoder=lstm", "task.decoder.cell=gru", "task.decoder.attention=bahdanau"],
    ["encoder=gru", "task.decoder.cell=lstm", "task.decoder.input_feeding=false",
     "encoder.num_layers=2", "task.decoder.num_layers=2"],
    ["encoder=rnn", "task.decoder.attention=luong_dot", "task.decoder.hidden_size=32",
     "task.teacher_forcing=1.0", "task.teacher_forcing_final=0.5", "data.max_tokens=300"],
    ["encoder=gru", "encoder.bidirectional=false", "task.decoder.attention=none",
     "task.joint_vocabulary=true", "tokenizer=sp_bpe"],
])
def test_every_cell_pairing_and_attention_trains_a_step(tmp_path, overrides):
    cfg = compose_config("train", [*MT, "debug=fdr", *overrides], tmp_path)
    metrics = train(cfg)
    assert metrics["params"] > 0 and metrics["train/tokens_per_s"] > 0


@pytest.mark.skipif(not (SHARED_DATA / "multi30k").is_dir(), reason="shared data absent")
@pytest.mark.parametrize("source_lang,target_lang", [("de", "en"), ("en", "de")])
def test_multi30k_local_copy_loads_all_splits_in_either_direction(monkeypatch, source_lang,
                                                                  target_lang):
    monkeypatch.setenv("NLPSEQ_DATA_DIR", str(SHARED_DATA))
    data = TranslationDataModule(name="multi30k", train_file="train", validation_file="val",
                                 test_file="test_2016_flickr", hub_id="bentrevett/multi30k",
                                 source_lang=source_lang, target_lang=target_lang)
    data.load()
    assert {split: len(ds) for split, ds in data.raw.items()} == {
        "train": 29000, "validation": 1014, "test": 1000}
    first = data.raw["train"][0]
    german = first["source"] if source_lang == "de" else first["target"]
    assert german.startswith("Zwei junge weiße Männer")
