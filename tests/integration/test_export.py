"""nlpseq-export: ONNX and TorchScript files that give the checkpoint's outputs without
nlpseq — logits to 1e-4 at other batch sizes and lengths than traced, and the same greedy
generations and translations, run step by step in onnxruntime with numpy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import nlpseq
from nlpseq.errors import NlpseqError
from nlpseq.export.exporter import export_checkpoint
from nlpseq.export.runtime import load
from nlpseq.tasks.checkpoint import load_task
from tests.integration.conftest import error_line, run_cli, run_cli_cases

ort = pytest.importorskip("onnxruntime")

SAMPLE = Path(__file__).parents[2] / "nlpseq" / "data" / "sample"
TINY = ["task.embedding_dim=16", "encoder.hidden_size=16", "trainer.max_epochs=2",
        "optimizer.lr=0.01", "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false", "logger=none"]
RUNS = {  # a cell and a layout per task, so each exercises another state
    "sentiment": ["encoder=lstm", "encoder.bidirectional=true", "encoder.num_layers=2"],
    "generation": ["task=generation", "tokenizer=char", "encoder=lstm", "encoder.num_layers=2"],
    "translation": ["task=translation", "encoder=gru", "encoder.bidirectional=true",
                    "task.decoder.cell=lstm", "task.decoder.hidden_size=24",
                    "tokenizer.vocab_size=120"],
}
SHAPES = [(1, 4), (7, 11)]  # (batch, length) pairs other than the traced (2, 5)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per task."""
    found = {}
    for task, overrides in RUNS.items():
        run_dir = tmp_path_factory.mktemp("export") / task
        result = run_cli("train", *overrides, *TINY, f"hydra.run.dir={run_dir}")
        assert result.returncode == 0, result.stderr[-3000:]
        found[task] = run_dir
    return found


@pytest.fixture(scope="module")
def exports(runs, tmp_path_factory):
    """(task, format, quantize) -> export directory, through the Python entry point."""
    out = tmp_path_factory.mktemp("exported")
    return {(task, fmt, q): export_checkpoint(runs[task], fmt, out / f"{task}-{fmt}-{q}", q)
            for task in runs for fmt in ("onnx", "torchscript") for q in (None, "dynamic")}


def batch(vocab: int, b: int, t: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random ids (B, T) right-padded to random lengths (one row full)."""
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, t + 1, (b,), generator=gen)
    lengths[0] = t
    tokens = torch.randint(4, vocab, (b, t), generator=gen)
    tokens[torch.arange(t)[None, :] >= lengths[:, None]] = 0
    return tokens, lengths


def session(directory: Path, name: str = "model"):
    return ort.InferenceSession(str(directory / f"{name}.onnx"),
                                providers=["CPUExecutionProvider"])


def max_diff(ours, theirs) -> float:
    return float(np.abs(np.asarray(ours) - theirs.detach().numpy()).max())


def sentences(name: str) -> list[str]:
    return (SAMPLE / name).read_text(encoding="utf-8").splitlines()


# ------------------------------------------------------------------ sentiment
def test_sentiment_onnx_logits_and_labels_match(runs, exports):
    task, tokenizer, _ = load_task(runs["sentiment"])
    directory = exports["sentiment", "onnx", None]
    meta = json.loads((directory / "export.json").read_text())
    assert meta["task"] == "sentiment" and meta["label_names"] == task.label_names
    assert meta["inputs"]["model"] == ["tokens", "lengths"]
    model = session(directory)
    for seed, (b, t) in enumerate(SHAPES):
        tokens, lengths = batch(tokenizer.vocab_size, b, t, seed)
        with torch.no_grad():
            expected = task(tokens, lengths)
        (logits,) = model.run(None, {"tokens": tokens.numpy(), "lengths": lengths.numpy()})
        assert max_diff(logits, expected) <= 1e-4
    texts = [line.split("\t")[0] for line in sentences("sentiment_test.tsv")[1:30]]
    ours = load(directory / "model.onnx").predict(texts)
    assert nlpseq.load(directory / "model.onnx").predict(texts) == ours  # the Python API
    theirs = task.predict(texts)
    assert [r["label"] for r in ours] == [r["label"] for r in theirs]
    assert max(abs(a["probability"] - b["probability"])
               for a, b in zip(ours, theirs, strict=True)) < 1e-4


def test_sentiment_torchscript_and_int8_models_run(runs, exports):
    task, tokenizer, _ = load_task(runs["sentiment"])
    tokens, lengths = batch(tokenizer.vocab_size, *SHAPES[1], seed=3)
    with torch.no_grad():
        expected = task(tokens, lengths)
        scripted = torch.jit.load(str(exports["sentiment", "torchscript", None] / "model.pt"))
        assert max_diff(scripted(tokens, lengths), expected) <= 1e-4
        int8 = torch.jit.load(str(exports["sentiment", "torchscript", "dynamic"] / "model.pt"))
        assert int8(tokens, lengths).shape == expected.shape
    texts = [line.split("\t")[0] for line in sentences("sentiment_test.tsv")[1:]]
    full = [r["label"] for r in load(exports["sentiment", "onnx", None]).predict(texts)]
    quantized = [r["label"] for r in load(exports["sentiment", "onnx", "dynamic"]).predict(texts)]
    agreement = np.mean([a == b for a, b in zip(full, quantized, strict=True)])
    print(f"int8 ONNX agrees with fp32 on {agreement:.0%} of {len(texts)} texts")


# ------------------------------------------------------------------ generation
def test_generation_onnx_steps_match_and_greedy_text_is_nlpseqs(runs, exports):
    task, tokenizer, _ = load_task(runs["generation"])
    directory = exports["generation", "onnx", None]
    meta = json.loads((directory / "export.json").read_text())
    assert list(meta["state"]) == ["h", "c"] and meta["state"]["h"] == [2, "batch", 16]
    model = session(directory)
    for seed, (b, t) in enumerate(SHAPES):
        tokens, _ = batch(tokenizer.vocab_size, b, t, seed)
        state = torch.randn(2, 2, b, 16, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            logits, (h, c) = task.model(tokens, None, (state[0], state[1]))
        got = model.run(None, {"tokens": tokens.numpy(), "h": state[0].numpy(),
                               "c": state[1].numpy()})
        assert max(max_diff(a, b) for a, b in zip(got, (logits, h, c), strict=True)) <= 1e-4
    runtime = load(directory)
    for prompt in ["The ", "", "and then"]:
        ids = task.prompt_ids(prompt)
        assert runtime.generate_ids(ids, 40, stop_at_eos=False) == task.generate(
            ids, 40, greedy=True, stop_at_eos=False)
        expected = task.predict([prompt], max_new_tokens=40, greedy=True)[0]["continuation"]
        assert runtime.generate(prompt, 40, greedy=True) == expected


def test_generation_torchscript_and_int8_models_run(runs, exports):
    task, tokenizer, _ = load_task(runs["generation"])
    tokens, _ = batch(tokenizer.vocab_size, 3, 1, seed=0)
    state = torch.zeros(2, 3, 16)
    with torch.no_grad():
        expected, _ = task.model(tokens, None, (state, state))
        scripted = torch.jit.load(str(exports["generation", "torchscript", None] / "model.pt"))
        assert max_diff(scripted(tokens, state, state)[0], expected) <= 1e-4
        int8 = torch.jit.load(str(exports["generation", "torchscript", "dynamic"] / "model.pt"))
        assert int8(tokens, state, state)[0].shape == expected.shape
    text = load(exports["generation", "onnx", "dynamic"]).generate("The ", 20, greedy=True)
    assert isinstance(text, str)


# ------------------------------------------------------------------ translation
def test_translation_onnx_encoder_and_step_match_and_greedy_is_nlpseqs(runs, exports):
    task, tokenizer, _ = load_task(runs["translation"])
    directory = exports["translation", "onnx", None]
    meta = json.loads((directory / "export.json").read_text())
    state_names, memory_names = list(meta["state"]), meta["memory"]
    assert state_names == ["h", "c", "feed"] and memory_names == ["memory", "keys", "mask"]
    encoder, decoder = session(directory, "encoder"), session(directory, "decoder")
    for seed, (b, t) in enumerate(SHAPES):
        source, lengths = batch(tokenizer.source.vocab_size, b, t, seed)
        with torch.no_grad():
            state, memory = task.model.start(source, lengths)
            expected = [*state.hidden, state.feed, *memory]
            previous = torch.randint(4, tokenizer.target.vocab_size, (b,))
            logits, (following, _) = task.model.step(previous, (state, memory))
        started = encoder.run(None, {"source": source.numpy(), "lengths": lengths.numpy()})
        for ours, theirs in zip(started, expected, strict=True):
            if ours.dtype == bool:
                assert np.array_equal(ours, theirs.numpy())
            else:
                assert max_diff(ours, theirs) <= 1e-4
        stepped = decoder.run(None, {"tokens": previous.numpy(),
                                     **dict(zip(state_names + memory_names, started, strict=True))})
        assert max(max_diff(a, b) for a, b in
                   zip(stepped, (logits, *following.hidden, following.feed), strict=True)) <= 1e-4
    texts = sentences("translation_test.de")[:12]
    expected = [row["translations"][0]["text"] for row in task.predict(texts, beam_size=1)]
    assert load(directory).translate(texts) == expected
    assert load(directory).translate(texts[:3], batch_size=1) == expected[:3]


def test_translation_torchscript_and_int8_models_run(runs, exports):
    task, tokenizer, _ = load_task(runs["translation"])
    source, lengths = batch(tokenizer.source.vocab_size, *SHAPES[1], seed=5)
    directory = exports["translation", "torchscript", None]
    with torch.no_grad():
        state, memory = task.model.start(source, lengths)
        started = torch.jit.load(str(directory / "encoder.pt"))(source, lengths)
        assert max_diff(started[0], state.hidden[0]) <= 1e-4
        bos = torch.full((source.size(0),), tokenizer.bos_id)
        logits, _ = task.model.step(bos, (state, memory))
        stepped = torch.jit.load(str(directory / "decoder.pt"))(bos, *started)
        assert max_diff(stepped[0], logits) <= 1e-4
        int8 = exports["translation", "torchscript", "dynamic"]
        started = torch.jit.load(str(int8 / "encoder.pt"))(source, lengths)
        assert torch.jit.load(str(int8 / "decoder.pt"))(bos, *started)[0].shape == logits.shape
    texts = sentences("translation_test.de")[:5]
    assert len(load(exports["translation", "onnx", "dynamic"]).translate(texts)) == 5


# ------------------------------------------------------------------ the command
def test_export_command_writes_a_model_that_nlpseq_predict_reads(runs, tmp_path):
    out = tmp_path / "sst"
    exported, predicted = run_cli_cases([
        ("export", f"ckpt_path={runs['sentiment']}", f"output={out}"),
        ("predict", f"ckpt_path={out / 'model.onnx'}", "text=a moving film"),
    ])
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert exported.stdout.strip() == str(out)
    assert {p.name for p in out.iterdir()} == {"model.onnx", "export.json", "tokenizer.json",
                                              "tokenizer_meta.json"}
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    task, _, _ = load_task(runs["sentiment"])
    (row,) = [json.loads(line) for line in predicted.stdout.splitlines()]
    (expected,) = task.predict(["a moving film"])
    assert row["label"] == expected["label"]
    assert abs(row["probability"] - expected["probability"]) < 1e-4


def test_nlpseq_predict_answers_from_every_tasks_export_as_from_its_checkpoint(runs, exports):
    generated, translated, refused = run_cli_cases([
        ("predict", f"ckpt_path={exports['generation', 'onnx', None]}", "prompt=The",
         "greedy=true", "max_new_tokens=30"),
        ("predict", f"ckpt_path={exports['translation', 'onnx', None]}",
         "text=Wo ist die Ente?", "beam_size=1"),
        ("predict", f"ckpt_path={exports['sentiment', 'onnx', None]}", "prompt=The"),
    ])
    assert generated.returncode == 0, generated.stderr[-3000:]
    language_model, _, _ = load_task(runs["generation"])
    (expected,) = language_model.predict(["The"], max_new_tokens=30, greedy=True)
    assert json.loads(generated.stdout)["continuation"] == expected["continuation"]
    assert translated.returncode == 0, translated.stderr[-3000:]
    translator, _, _ = load_task(runs["translation"])
    (best,) = translator.translate(["Wo ist die Ente?"], beam_size=1)
    assert translated.stdout.splitlines() == [best[0][0]]
    assert refused.returncode == 2
    assert "is a 'sentiment' checkpoint; this command needs a 'generation' one" in \
        error_line(refused)


def test_export_errors_are_one_line_with_exit_status_2(runs, exports, tmp_path):
    run = runs["sentiment"]
    cases = [
        (("predict", f"ckpt_path={exports['translation', 'onnx', None]}", "text=Wo ist die Ente?",
          "beam_size=5"), "An exported translation model decodes greedily"),
        (("export", f"ckpt_path={tmp_path / 'missing'}"), "Checkpoint not found"),
        (("export", f"ckpt_path={run}", "format=tflite"),
         "format='tflite' is not valid: expected one of 'onnx', 'torchscript'"),
        (("export", f"ckpt_path={run}", "quantize=static"), "quantize='static' is not valid"),
    ]
    for (case, message), result in zip(cases, run_cli_cases([c for c, _ in cases]), strict=True):
        assert result.returncode == 2, (case, result.stderr[-2000:])
        assert message in error_line(result)


# ------------------------------------------------------------------ nothing destroyed
def test_nlpseq_predict_never_writes_over_an_export(runs, tmp_path):
    """An export's files are protected as checkpoints are, read from the export or not."""
    run = shutil.copytree(runs["sentiment"], tmp_path / "run")
    onnx = export_checkpoint(run)  # run/export/onnx
    before = {p.name: p.read_bytes() for p in onnx.iterdir()}
    cases = [(f"ckpt_path={onnx}", f"output_file={onnx / 'model.onnx'}"),
             (f"ckpt_path={run}", f"output_file={onnx / 'export.json'}"),
             (f"ckpt_path={onnx / 'model.onnx'}", f"output_file={onnx / 'tokenizer.json'}")]
    for case, result in zip(cases, run_cli_cases([("predict", *c, "text=good film")
                                                  for c in cases]), strict=True):
        assert result.returncode == 2, (case, result.stderr[-2000:])
        assert "is part of an exported model: writing it would destroy it; pick another " \
               "output_file" in error_line(result)
    assert {p.name: p.read_bytes() for p in onnx.iterdir()} == before


def test_export_never_writes_into_a_run_and_a_failed_export_leaves_nothing(runs, tmp_path,
                                                                           monkeypatch):
    from nlpseq.export import exporter

    other = runs["generation"]  # another finished run: its tokenizer must stay its own
    record = {p: p.read_bytes() for p in other.rglob("*") if p.is_file()}
    refused, inside = run_cli_cases([
        ("export", f"ckpt_path={runs['sentiment']}", f"output={other}"),
        ("export", f"ckpt_path={runs['sentiment']}", f"output={other / 'checkpoints'}")])
    assert refused.returncode == 2 and inside.returncode == 2, refused.stderr[-2000:]
    assert f"output '{other}' holds the record of a run (.hydra/, checkpoints/" in \
        error_line(refused)
    assert "holds the record of a run" in error_line(inside)
    assert {p: p.read_bytes() for p in other.rglob("*") if p.is_file()} == record

    mine = tmp_path / "mine"  # a folder that is no export keeps its files
    mine.mkdir()
    (mine / "tokenizer.json").write_text("my own")
    with pytest.raises(NlpseqError, match="already holds tokenizer.json and is not an export"):
        export_checkpoint(runs["sentiment"], output=mine)
    assert [p.name for p in mine.iterdir()] == ["tokenizer.json"]
    assert (mine / "tokenizer.json").read_text() == "my own"

    done = export_checkpoint(runs["sentiment"], output=tmp_path / "done")
    good = {p.name: p.read_bytes() for p in done.iterdir()}

    def fail(*args):
        raise NlpseqError("disk full")  # after the model file was written

    monkeypatch.setattr(exporter, "save_tokenizer", fail)
    for output in (done, tmp_path / "new" / "onnx"):
        with pytest.raises(NlpseqError, match="disk full"):
            export_checkpoint(runs["sentiment"], output=output)
    assert {p.name: p.read_bytes() for p in done.iterdir()} == good  # the old export whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done", "mine"]  # nothing half-made


def test_a_corrupt_export_is_one_line_naming_what_is_wrong(runs, tmp_path):
    good = export_checkpoint(runs["sentiment"], output=tmp_path / "good")
    meta = json.loads((good / "export.json").read_text())
    broken = {
        "no-task": ({k: v for k, v in meta.items() if k != "task"}, None),
        "a-list": ([meta], None),
        "truncated": (meta, (good / "model.onnx").read_bytes()[:2000]),
        "labels": ({**meta, "label_names": ["neg", "neutral", "pos"]}, None),
    }
    for name, (content, model) in broken.items():
        folder = shutil.copytree(good, tmp_path / name)
        (folder / "export.json").write_text(json.dumps(content))
        if model is not None:
            (folder / "model.onnx").write_bytes(model)
    expected = {"no-task": "export.json has no 'task'",
                "a-list": "export.json holds a JSON list, not an object",
                "truncated": "onnxruntime cannot read model.onnx (",
                "labels": "export.json has 3 label_names; model.onnx gives logits of shape"}
    results = run_cli_cases([("predict", f"ckpt_path={tmp_path / name}", "text=good film")
                             for name in broken])
    for (name, what), result in zip(expected.items(), results, strict=True):
        assert result.returncode == 2, (name, result.stderr[-2000:])
        assert error_line(result).startswith(
            f"error: {tmp_path / name} is not a valid nlpseq export: {what}"), name
        with pytest.raises(NlpseqError, match="is not a valid nlpseq export"):
            nlpseq.load(tmp_path / name / "model.onnx")
