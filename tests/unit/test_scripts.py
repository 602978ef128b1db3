"""The benchmark scripts: each still imports against today's package (they run only in
benchmarks, so nothing else would notice a rename), and the long-text builder keeps one
label per text at the regime's size."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


def load_script(name: str, monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPTS))  # scripts import one another by name
    spec = importlib.util.spec_from_file_location(f"nlpseq_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", sorted(p.stem for p in SCRIPTS.glob("*.py")))
def test_every_script_imports_and_has_a_main(name, monkeypatch):
    assert callable(load_script(name, monkeypatch).main)


def sentences(n: int, words: int = 10) -> list[tuple[str, str]]:
    """n sentences of ``words`` words, labels alternating in runs of three."""
    return [(" ".join([f"w{i}"] * words), "pos" if i // 3 % 2 else "neg") for i in range(n)]


def test_paragraph_texts_hold_one_label_each_and_stay_within_their_size(monkeypatch):
    bench = load_script("bench_lengths", monkeypatch)
    texts = bench.join_texts(sentences(3000), "paragraphs", seed=0)
    for text, label in texts:
        ids = {int(word[1:]) for word in text.split()}
        assert {"pos" if i // 3 % 2 else "neg" for i in ids} == {label}
        assert 200 - 10 < len(text.split()) <= 300  # ±20 % of 250, cut at a 10-word sentence
    assert 100 < len(texts) < 150  # 30,000 words in texts of 200-300


def test_review_texts_spread_over_a_long_tail(monkeypatch):
    bench = load_script("bench_lengths", monkeypatch)
    sizes = sorted(len(text.split()) for text, _ in bench.join_texts(sentences(60000, 1),
                                                                     "reviews", seed=0))
    median = sizes[len(sizes) // 2]
    assert 150 <= median <= 200  # log-normal around 175 words
    assert sizes[-1] > 3 * median and sizes[0] < median / 3
    assert sizes[-1] <= bench.REVIEW_RANGE[1]


def test_the_cell_study_runs_from_the_installed_package(tmp_path):
    """The README's study commands are ``python -m nlpseq.study.*``: they run from any
    directory, without the repository's scripts/."""
    import json

    result = subprocess.run(
        [sys.executable, "-m", "nlpseq.study.bench_cells", "--hidden", "8", "--batch", "2",
         "--seq", "4", "--steps", "1", "--rounds", "1", "--json", "cells.json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads((tmp_path / "cells.json").read_text())
    assert {"rnn", "gru", "lstm"} <= {row["cell"] for row in found["rows"]}
    help_text = subprocess.run([sys.executable, "-m", "nlpseq.study.long_range", "--help"],
                               cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "--probe" in help_text.stdout


TINY_RUNS = {  # a tiny trained run on the embedded sample, and the data to score it on
    "sentiment": (["encoder=gru"], ["sentiment_test.tsv"]),
    "generation": (["task=generation", "tokenizer=char", "encoder=gru"], ["lm_train.txt"]),
}


@pytest.mark.parametrize("task", sorted(TINY_RUNS))
def test_bench_quantization_prints_a_row_per_contender(task, tmp_path, monkeypatch, capsys):
    pytest.importorskip("onnxruntime")
    overrides, data = TINY_RUNS[task]
    run_dir = tmp_path / "run"
    trained = subprocess.run(
        [sys.executable, "-m", "nlpseq.cli.train", *overrides, "task.embedding_dim=16",
         "encoder.hidden_size=16", "trainer.max_epochs=1", "trainer.enable_progress_bar=false",
         "trainer.enable_model_summary=false", "logger=none", f"hydra.run.dir={run_dir}"],
        capture_output=True, text=True, timeout=600)
    assert trained.returncode == 0, trained.stderr[-3000:]
    bench = load_script("bench_quantization", monkeypatch)
    sample = SCRIPTS.parent / "nlpseq" / "data" / "sample"
    monkeypatch.setattr(sys, "argv", ["bench_quantization.py", str(run_dir), "--data",
                                      *(str(sample / name) for name in data),
                                      "--rounds", "1", "--texts", "4", "--threads", "1"])
    bench.main()
    rows = {line.split(" | ")[0][2:]: line.split(" | ")[1:3]
            for line in capsys.readouterr().out.splitlines() if line.startswith("| ")}
    assert set(rows) >= {"torch fp32", "onnx fp32", "onnx int8", "torch int8"}
    assert float(rows["onnx fp32"][1]) == 0  # fp32 ONNX scores as PyTorch fp32 does


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_bench_execution_raw_times_the_bare_torch_module_on_the_same_tokens(cell, monkeypatch):
    bench = load_script("bench_execution", monkeypatch)
    args = SimpleNamespace(input=4, hidden=3, layers=2, unidirectional=False, batch=5,
                           repeats=1, raw=True)
    row = bench.measure(cell, 6, 0.5, args, torch.device("cpu"))
    assert row["padding"] > 0  # lengths spread over [3, 6]
    tokens = row["dense_tokens_per_s"] * row["dense_ms"] / 1000  # real tokens (ms rounded)
    assert row["raw_tokens_per_s"] * row["raw_ms"] / 1000 == pytest.approx(tokens, rel=0.1)
    assert row["dense_over_raw"] == pytest.approx(row["dense_ms"] / row["raw_ms"], rel=0.05)
    assert "raw_ms" not in bench.measure(cell, 6, 0.5, SimpleNamespace(**{**vars(args),
                                                                          "raw": False}),
                                         torch.device("cpu"))


def test_gpu_checks_script_refuses_an_unknown_step_with_its_usage(tmp_path):
    done = subprocess.run(["bash", str(SCRIPTS / "gpu_checks.sh"), "nonsense"],
                          env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable,
                               "OUT": str(tmp_path), "ACCEL": "cpu"},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "usage: bash scripts/gpu_checks.sh speed|lm" in done.stdout + done.stderr
    assert (tmp_path / "gpu_checks_nonsense.log").is_file()


def test_whole_sentences_are_the_rows_no_other_row_contains(monkeypatch):
    bench = load_script("bench_transfer", monkeypatch)
    rows = [("a fine film", "1"), ("fine", "1"), ("a fine film , but long", "0"),
            ("film , but", "0"), ("but long", "0"), ("finest hour", "1"), ("a fine film", "1"),
            ("long", "0")]
    # "fine" lies inside "a fine film" (not inside "finest": token boundaries count); the
    # repeated row is kept once
    assert bench.whole_sentences(rows) == [("a fine film , but long", "0"),
                                           ("finest hour", "1")]


def test_bench_transfer_full_size_runs_the_shipped_protocol_and_tables_last(tmp_path, monkeypatch):
    bench = load_script("bench_transfer", monkeypatch)
    assert bench.size_arg("all") == "all" and bench.size_arg("2000") == 2000
    overrides, chosen_on = bench.run_data("all", {}, None, seed=3)
    assert overrides == ["seed=3"] and "5 % of train.tsv" in chosen_on
    overrides, chosen_on = bench.run_data(100, {100: Path("t.tsv")}, Path("v.tsv"), seed=1)
    assert "data.train_file=t.tsv" in overrides and "whole train sentences" in chosen_on
    results = [{"size": size, "seed": seed, "start": start, "dev_acc": acc}
               for size, acc in (("all", 0.8), (100, 0.6))
               for seed in (1, 2) for start in ("scratch", "transferred")]
    bench.summarize(results, tmp_path)
    rows = (tmp_path / "transfer.md").read_text().splitlines()[2:]
    assert rows == ["| 100 | 60.00 ± 0.00 | 60.00 ± 0.00 | 2 |",
                    "| all of train.tsv but the held-out sentences | 80.00 ± 0.00 | 80.00 ± 0.00 "
                    "| 2 |"]


def test_bench_transfer_extra_overrides_reach_the_runs_they_name(tmp_path, monkeypatch):
    bench = load_script("bench_transfer", monkeypatch)
    calls = {}

    def fake_train(run_dir, overrides, data_dir):
        calls[run_dir.name] = overrides
        return {"test/acc": 0.5}

    monkeypatch.setattr(bench, "train", fake_train)
    monkeypatch.setattr(bench, "scratch_settings", lambda out, backward: ["encoder.num_layers=2"])
    monkeypatch.setattr(sys, "argv", [
        "bench_transfer.py", "--data-dir", str(tmp_path), "--out", str(tmp_path / "out"),
        "--sizes", "all", "--seeds", "1", "--backward",
        "--transfer-extra", "task.finetune.unfreeze_schedule=gradual",
        "--classifier-extra", "data.holdout=rows"])
    bench.main()
    assert set(calls) == {"lm_forward", "lm_backward", "transferred_all_s1", "scratch_all_s1"}
    assert calls["transferred_all_s1"][-3:] == ["task.finetune.unfreeze_schedule=gradual", "seed=1",
                                                "data.holdout=rows"]
    assert calls["scratch_all_s1"][-1] == "data.holdout=rows"
    assert "data.holdout=rows" not in calls["lm_forward"] + calls["lm_backward"]
    assert "task.finetune.unfreeze_schedule=gradual" not in calls["scratch_all_s1"]
    assert "encoder.init_from=null" in calls["scratch_all_s1"]
    assert any(o.startswith("encoder.init_from_backward=") for o in calls["transferred_all_s1"])


@pytest.mark.slow  # trains two language models and eight classifiers (make test-all)
def test_bench_transfer_writes_a_table_and_a_plot(tmp_path, monkeypatch, capsys):
    sample = SCRIPTS.parent / "nlpseq" / "data" / "sample"
    data = tmp_path / "data" / "sst2"
    data.mkdir(parents=True)
    lines = (sample / "sentiment_train.tsv").read_text().splitlines()
    (data / "train.tsv").write_text("\n".join(lines) + "\n")
    (data / "dev.tsv").write_text((sample / "sentiment_test.tsv").read_text())
    tiny = ["task.embedding_dim=16", "encoder.hidden_size=16", "trainer.max_epochs=1",
            "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false",
            "logger=none"]
    bench = load_script("bench_transfer", monkeypatch)
    monkeypatch.setattr(sys, "argv", [
        "bench_transfer.py", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
        "--sizes", "100", "200", "--seeds", "1", "2", "--validation", "50", "--backward",
        "--extra", *[o for o in tiny if not o.startswith(("task.", "encoder."))],
        "--lm-extra", *tiny[:2], "encoder.num_layers=1"])
    bench.main()
    results = json.loads((tmp_path / "out" / "transfer.json").read_text())
    assert len(results) == 8 and {r["start"] for r in results} == {"scratch", "transferred"}
    assert all(0 <= r["dev_acc"] <= 1 for r in results)
    assert (tmp_path / "out" / "transfer.png").stat().st_size > 0
    assert "| 200 |" in capsys.readouterr().out


def test_bleu_vs_time_runs_short_budgets_first_and_rotates_which_lane_starts(monkeypatch):
    bench = load_script("bench_bleu_vs_time", monkeypatch)
    lanes = ["nlpseq", "nlpseq_unbucketed", "joeynmt_matched"]
    jobs = bench.job_order(lanes, seeds=[1, 2, 3], budgets=[600.0, 150.0])
    assert [budget for _, _, budget in jobs] == [150.0] * 9 + [600.0] * 9
    first_of_each_seed = [jobs[i][0] for i in (0, 3, 6)]
    assert first_of_each_seed == ["nlpseq", "nlpseq_unbucketed", "joeynmt_matched"]
    for start in range(0, 18, 3):  # every seed runs every lane once per budget
        assert sorted(lane for lane, _, _ in jobs[start:start + 3]) == sorted(lanes)
        assert len({seed for _, seed, _ in jobs[start:start + 3]}) == 1


def test_bleu_vs_time_table_gives_mean_and_std_per_lane_and_budget(monkeypatch):
    bench = load_script("bench_bleu_vs_time", monkeypatch)
    results = [
        {"lane": "nlpseq", "seed": 2, "budget_s": 150.0, "bleu_test_beam5": 20.0,
         "tokens_per_s": 3000.0},
        {"lane": "nlpseq", "seed": 1, "budget_s": 150.0, "bleu_test_beam5": 22.0,
         "tokens_per_s": 3200.0, "val_bleu_at_steps": {200: 15.0}},
        {"lane": "joeynmt_matched", "seed": 1, "budget_s": 150.0, "bleu_test_beam5": 5.0,
         "bleu_test_beam5_joeynmt": 5.1, "tokens_per_s": 1500.0},
    ]
    rows = bench.summarize(results, ["nlpseq", "joeynmt_matched"], [150.0]).splitlines()
    assert rows[2] == "| 150 s | nlpseq | 21.00 ± 1.41 | - | 3100 ± 141 | 15.0 / - | 1 2 |"
    assert rows[3] == ("| 150 s | joeynmt_matched | 5.00 ± 0.00 | 5.10 ± 0.00 | 1500 ± 0 "
                       "| - / - | 1 |")


def test_bleu_vs_time_csv_keeps_the_means_the_plot_is_redrawn_from(tmp_path, monkeypatch):
    bench = load_script("bench_bleu_vs_time", monkeypatch)
    results = [{"lane": "nlpseq", "budget_s": 150.0, "bleu_test_beam5": bleu}
               for bleu in (20.0, 22.0, 24.5)]
    results.append({"lane": "joeynmt_matched", "budget_s": 600.0, "bleu_test_beam5": 5.0})
    rows = bench.summary_rows(results, ["nlpseq", "joeynmt_matched"], [150.0, 600.0])
    assert rows == [
        {"lane": "nlpseq", "budget_s": 150.0, "bleu_mean": 22.17, "bleu_std": 2.25, "seeds": 3},
        {"lane": "joeynmt_matched", "budget_s": 600.0, "bleu_mean": 5.0, "bleu_std": 0.0,
         "seeds": 1}]
    path = tmp_path / "bleu_vs_time.csv"
    bench.write_summary_csv(rows, path)
    assert bench.read_summary_csv(path) == rows
    bench.main(["--plot-from", str(path)])
    assert (tmp_path / "bleu_vs_time.png").stat().st_size > 0


def test_bleu_vs_time_reads_val_bleu_at_equal_steps_from_each_tools_log(tmp_path, monkeypatch):
    bench = load_script("bench_bleu_vs_time", monkeypatch)
    csv_dir = tmp_path / "n" / "train" / "csv"
    csv_dir.mkdir(parents=True)
    (csv_dir / "metrics.csv").write_text(  # nlpseq: 0-based steps, a row per log call
        "epoch,step,train/loss,val/bleu\n0,49,5.1,\n0,199,,15.5\n0,399,,23.0\n1,653,,24.0\n")
    assert bench.val_bleu_at_steps(tmp_path / "n", "nlpseq") == {200: 15.5, 400: 23.0}
    log = tmp_path / "j" / "joeynmt" / "model" / "train.log"
    log.parent.mkdir(parents=True)
    log.write_text("".join(  # JoeyNMT: the k-th greedy validation is at step 200 k
        f"2026-01-01 00:00:0{k},000 - INFO - joeynmt.prediction - Evaluation result (greedy): "
        f"bleu:   {b}, loss:   4.79, ppl: 120.79, acc:   0.14, 0.0984[sec]\n"
        for k, b in enumerate(["0.00", "2.12", "5.50"])))
    assert bench.val_bleu_at_steps(tmp_path / "j", "joeynmt_matched") == {200: 0.0, 400: 2.12}
    run_dir = tmp_path / "out" / "nlpseq" / "b600_s1"  # a run done before: not rerun, and its
    (run_dir / "train").mkdir(parents=True)             # steps are numbers as when it was run
    shutil.copytree(csv_dir, run_dir / "train" / "csv")
    (run_dir / "result.json").write_text('{"lane": "nlpseq", "val_bleu_at_steps": {"200": 1.0}}')
    done = bench.run_job(("nlpseq", 1, 600.0), SimpleNamespace(out=tmp_path / "out"), {})
    assert done["val_bleu_at_steps"] == {200: 15.5, 400: 23.0}
    assert bench.summarize([{**done, "seed": 1, "budget_s": 600.0, "bleu_test_beam5": 1.0,
                             "tokens_per_s": 9.0}], ["nlpseq"], [600.0]).splitlines()[2] == \
        "| 600 s | nlpseq | 1.00 ± 0.00 | - | 9 ± 0 | 15.5 / 23.0 | 1 |"


@pytest.mark.parametrize(("setup", "init"), [("matched", "joeynmt"), ("matched", "torch"),
                                           ("recommended", "torch")])
def test_joeynmt_configs_fill_every_placeholder_with_the_seed_and_setup(setup, init, monkeypatch):
    import yaml
    bench = load_script("bench_joeynmt", monkeypatch)
    values = {key: "x" for key in ("MODEL_DIR", "TRAIN_PREFIX", "TEST_PREFIX", "SRC_VOCAB",
                                   "SRC_SPM", "TRG_VOCAB", "TRG_SPM", "DEV_PREFIX")}
    values.update(EPOCHS="9", LOGGING_FREQ="10", VALIDATION_FREQ="200", DEV_SUBSET="-1",
                  LR="0.001", LABEL_SMOOTHING="0.1", SEED="7", NORMALIZATION="tokens",
                  LOAD_MODEL="null", **bench.INITS[init])
    cfg = yaml.safe_load(bench.fill_template(bench.TEMPLATES[setup].read_text(), values))
    assert cfg["random_seed"] == 7
    assert cfg["training"]["normalization"] == "tokens"
    assert cfg["training"]["validation_freq"] == 200
    decoder = cfg["model"]["decoder"]
    if setup == "matched":  # nlpseq's model: 256 wide, Luong attention, Adam 1e-3
        assert (decoder["hidden_size"], decoder["attention"]) == (256, "luong")
        assert cfg["training"]["learning_rate"] == 0.001
        model = cfg["model"]
        if init == "joeynmt":  # JoeyNMT's own defaults
            assert (model["initializer"], model["embed_initializer"],
                    model["bias_initializer"]) == ("xavier_uniform", "xavier_uniform", "zeros")
        else:  # PyTorch's: uniform +-1/sqrt(H) for the 256-wide GRUs, N(0, 1) embeddings
            assert (model["initializer"], model["init_weight"]) == ("uniform", 0.0625)
            assert (model["embed_initializer"], model["embed_init_weight"]) == ("normal", 1.0)
            assert (model["bias_initializer"], model["bias_init_weight"]) == ("uniform", 0.0625)
    else:  # JoeyNMT's own recipe, untouched by the matched set-up's options
        assert (decoder["hidden_size"], decoder["attention"]) == (1000, "bahdanau")
        assert cfg["training"]["learning_rate"] == 0.0002
        assert cfg["training"]["scheduling"] == "plateau"
        assert "initializer" not in cfg["model"]  # the recipe keeps JoeyNMT's default
    with pytest.raises(bench.BenchError, match="NORMALIZATION"):
        bench.fill_template(bench.TEMPLATES["matched"].read_text(),
                            {k: v for k, v in values.items() if k != "NORMALIZATION"})


def test_joeynmt_weights_at_the_stop_are_validated_greedily_on_val(tmp_path, monkeypatch):
    """As nlpseq validates when its time limit stops it, JoeyNMT's weights at the stop get
    the validation it would have run (greedy, all of val) and win only if they beat best."""
    bench = load_script("bench_joeynmt", monkeypatch)
    seen = {}

    def fake_test(args, cfg_path, stdout, hyps, env, search="beam search"):
        seen["cfg"], seen["search"] = cfg_path.read_text(), search
        return 12.5, None, 1.0

    monkeypatch.setattr(bench, "run_joey_test", fake_test)
    values = {key: "x" for key in ("MODEL_DIR", "TRAIN_PREFIX", "SRC_VOCAB", "SRC_SPM",
                                   "TRG_VOCAB", "TRG_SPM")}
    values.update(EPOCHS="9", LOGGING_FREQ="10", VALIDATION_FREQ="200", DEV_SUBSET="-1",
                  LR="0.001", LABEL_SMOOTHING="0.1", SEED="7", NORMALIZATION="tokens",
                  **bench.INITS["joeynmt"])
    template = bench.TEMPLATES["matched"].read_text()
    latest = tmp_path / "latest.ckpt"
    assert bench.validate_at_stop(None, template, values, tmp_path, {}, Path("/d"), latest, 12.0)
    assert not bench.validate_at_stop(None, template, values, tmp_path, {}, Path("/d"), latest,
                                      13.0)
    assert seen["search"] == "greedy"
    assert "    beam_size: 1\n" in seen["cfg"] and "beam_size: 5" not in seen["cfg"]
    assert 'test: "/d/val"' in seen["cfg"] and f'load_model: "{latest}"' in seen["cfg"]
