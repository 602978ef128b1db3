"""Benchmark: JoeyNMT 2.3.0 on Multi30k de->en under a wall-clock budget (baseline for nlpseq).

Trains a JoeyNMT recurrent model for --budget-s seconds of training: with `--setup matched`
(default) the model nlpseq's side trains (scripts/joeynmt/multi30k_gru.yaml: bi-GRU 1x256
encoder, GRU 1x256 decoder, Luong "general" attention, input feeding, bridge init, tied
target softmax, emb 256, dropout 0.2, label smoothing 0.1, Adam 1e-3, gradient norm clip
1.0, batches of 64 sentences, the loss per target token or with `--normalization batch` per
sentence); with `--setup recommended` JoeyNMT's own published recurrent recipe
(scripts/joeynmt/multi30k_rnn_recommended.yaml: 620/500x2/1000 GRUs, Bahdanau attention,
Adam 2e-4 with a plateau schedule, 80 sentences a batch). Then it
stops it with SIGINT (JoeyNMT catches it and saves the current weights), decodes
test_2016_flickr with beam 5 from the best validation checkpoint (the config's
early_stopping_metric: greedy BLEU matched, loss recommended) and prints one JSON line:

    {"tool": "joeynmt", "tokens_per_s": ..., "bleu_test_beam5": ..., "steps": ...,
     "epochs": ..., "budget_s": ..., ...more detail keys}

    python scripts/bench_joeynmt.py --budget-s 600 --joey-python /tmp/joey/bin/python \
        --data-dir ../shared/data/multi30k --out outputs/bench_joeynmt
    python scripts/bench_joeynmt.py --budget-s 60 --max-sentences 2000 --validation-freq 20 \
        --dev-subset 100 --out outputs/bench_joeynmt_quick                # pipeline check

The script itself needs only the standard library; sentencepiece, sacrebleu and torch are
used inside --joey-python. Data never gets copied next to the repo: the full training split
is read where it lies; --max-sentences N writes the first N pairs into a temporary work dir
outside the repository. Written under --out: spm/ (sentencepiece models, vocab files),
train.yaml / test.yaml (the filled template), model/ (JoeyNMT's model dir: train.log,
checkpoints), train.stdout.log, test.stdout.log, test_beam5.test (hypotheses), result.json.

What is measured
- tokens_per_s: training *target* tokens per second of pure training time, the way JoeyNMT
  counts them (Batch.ntokens = non-pad tokens of the shifted target: </s> counted, <s> not;
  source tokens are not counted). Per logging interval JoeyNMT logs "Tokens per Sec" over
  the time since the previous log line minus validation; the interval's seconds are taken
  from the log timestamps (log record -> previous log record, so validation and epoch-end
  records are cut out) and its tokens = rate * seconds; tokens_per_s = sum tokens / sum s.
  Steps after an epoch's last logging step are not in any interval (< logging_freq steps).
- train_target_tokens / steps / epochs: exact counters from the checkpoint JoeyNMT saves when
  interrupted (stats_state), checked against the log.
- tokens_per_wall_s: train_target_tokens / wall seconds from the first "EPOCH 1" record to
  the interrupt (validation included).
- the budget clock starts when JoeyNMT logs "EPOCH 1" (after loading, tokenizing and building
  the model; their time is startup_s) unless --budget-from launch.
- bleu_test_beam5: JoeyNMT's own test BLEU (sacrebleu corpus BLEU, 13a, on detokenized
  output vs the raw references), re-checked here with sacrebleu on the written hypotheses.

Tokenization: two separate sentencepiece models (de and en; unigram by default as nlpseq's
translation task, --spm-model-type bpe), vocab_size 8000 each with the specials included,
character_coverage 1.0, nmt_nfkc, hard_vocab_limit false (nlpseq's sp_* settings), trained
on the training split used (the first N pairs with --max-sentences). JoeyNMT does not train
sentencepiece models itself. Loss: cross-entropy with label smoothing 0.1 (--label-smoothing),
as nlpseq's translation task; Adam at a constant --lr 0.001.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = {  # --setup: the model nlpseq matches, or JoeyNMT's own recommended recipe
    "matched": REPO / "scripts" / "joeynmt" / "multi30k_gru.yaml",
    "recommended": REPO / "scripts" / "joeynmt" / "multi30k_rnn_recommended.yaml",
}
SRC, TRG = "de", "en"
INITS = {  # --init: the matched model's initialisers (model.* keys of JoeyNMT 2.3.0)
    "joeynmt": {"INITIALIZER": "xavier_uniform", "INIT_WEIGHT": "0.01",  # JoeyNMT's defaults
                "EMBED_INITIALIZER": "xavier_uniform", "EMBED_INIT_WEIGHT": "0.01",
                "BIAS_INITIALIZER": "zeros"},
    "torch": {"INITIALIZER": "uniform", "INIT_WEIGHT": "0.0625",  # 1/sqrt(256), as nn.GRU
              "EMBED_INITIALIZER": "normal", "EMBED_INIT_WEIGHT": "1.0",  # as nn.Embedding
              "BIAS_INITIALIZER": "uniform"},
}


def install_commands() -> list[str]:
    """How the JoeyNMT venv was made (Python 3.11.2, Debian; torch from the local CPU wheel).

    joeynmt 2.3.0 installs with its declared dependencies as long as torch is pinned to the
    local CPU build (the constraint keeps pip from fetching a CUDA torch); the resolver then
    picks protobuf 3.20.3 (joeynmt pins <3.21), numpy 2.x, sacrebleu 2.x. Two fixes by hand:
    - joeynmt imports `importlib_metadata` without declaring it: install it;
    - sentencepiece 0.2.3 (the newest, picked by default) has no
      SentencePieceProcessor.SetVocabulary, which joeynmt calls when loading data
      (AttributeError): pin sentencepiece==0.2.1.
    - torch 2.13's ReduceLROnPlateau no longer takes the `verbose` argument JoeyNMT 2.3.0
      passes with `scheduling: plateau` (TypeError): a `sitecustomize.py` in the venv drops
      that one argument (JoeyNMT passes verbose=False, the default, so nothing else changes).
    `pip check` is clean afterwards. Verified set: joeynmt 2.3.0, torch 2.13.0+cpu,
    numpy 2.4.6, sentencepiece 0.2.1, sacrebleu 2.6.0, protobuf 3.20.3, PyYAML 6.0.4,
    importlib-metadata 10.2.0.
    """
    return [
        "python3 -m venv /tmp/joey",
        "printf 'torch==2.13.0\\nsentencepiece==0.2.1\\n' > /tmp/joey-constraints.txt",
        "/tmp/joey/bin/pip install -c /tmp/joey-constraints.txt joeynmt==2.3.0"
        " importlib-metadata",
        "/tmp/joey/bin/python -c " + repr(PLATEAU_SHIM_INSTALL),
    ]


# Writes sitecustomize.py into the venv: ReduceLROnPlateau without `verbose` (see above).
PLATEAU_SHIM_INSTALL = (
    "import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()['purelib'],"
    " 'sitecustomize.py').write_text('import torch.optim.lr_scheduler as s\\n"
    "_init = s.ReduceLROnPlateau.__init__\\n"
    "def _no_verbose(self, *a, verbose=None, **k):\\n    _init(self, *a, **k)\\n"
    "s.ReduceLROnPlateau.__init__ = _no_verbose\\n')")


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and where to look."""


def log(msg: str) -> None:
    print(f"[bench_joeynmt {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def tail(path: Path, n: int = 30) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no output file)"
    return "\n".join(lines[-n:])


# --------------------------------------------------------------------------- data, vocab

def first_lines(src: Path, dst: Path, n: int) -> int:
    count = 0
    with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8") as fout:
        for line in fin:
            if count == n:
                break
            fout.write(line)
            count += 1
    return count


SPM_TRAIN = r"""
import json, sys
import sentencepiece as spm
a = json.loads(sys.argv[1])
spm.SentencePieceTrainer.train(
    input=a["input"], model_prefix=a["prefix"], model_type=a["model_type"],
    vocab_size=a["vocab_size"], character_coverage=1.0,
    normalization_rule_name="nmt_nfkc", hard_vocab_limit=False,
    unk_id=0, pad_id=1, bos_id=2, eos_id=3,
    unk_piece="<unk>", pad_piece="<pad>", bos_piece="<s>", eos_piece="</s>",
    input_sentence_size=10000000, shuffle_input_sentence=False,
    num_threads=2, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=a["prefix"] + ".model")
pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())]
assert pieces[:4] == ["<unk>", "<pad>", "<s>", "</s>"], pieces[:4]
# JoeyNMT's vocab file lists the non-special tokens; it puts <unk> <pad> <s> </s> first
# itself, so token ids coincide with the sentencepiece ids.
with open(a["vocab"], "w", encoding="utf-8") as f:
    f.write("\n".join(pieces[4:]) + "\n")
print(sp.get_piece_size())
"""


def train_spm(
    joey_python: str, text: Path, prefix: Path, vocab_size: int, model_type: str
) -> tuple[Path, Path, int]:
    vocab = Path(f"{prefix}.vocab.txt")
    arg = json.dumps({"input": str(text), "prefix": str(prefix), "vocab_size": vocab_size,
                      "vocab": str(vocab), "model_type": model_type})
    res = subprocess.run([joey_python, "-c", SPM_TRAIN, arg], capture_output=True, text=True)
    if res.returncode != 0:
        raise BenchError(f"sentencepiece training on {text} failed:\n{res.stderr[-3000:]}")
    return Path(f"{prefix}.model"), vocab, int(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- config

def fill_template(template: str, values: dict[str, str]) -> str:
    """The template's text with every @KEY@ replaced; values a template does not use are
    ignored (the recommended set-up fixes its own learning rate and loss). The text is read
    once, when the benchmark starts: editing the file while a run trains changes nothing."""
    text = template
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = sorted(set(re.findall(r"@[A-Z_]+@", text)))
    if left:
        raise BenchError(f"placeholders left unfilled in the JoeyNMT template: {left}")
    return text


def q(path: Path | str) -> str:
    return json.dumps(str(path))  # a JSON string is a valid double-quoted YAML scalar


# --------------------------------------------------------------------------- training run

def start_proc(cmd: list[str], out_file: Path, env: dict) -> subprocess.Popen:
    fout = out_file.open("w", encoding="utf-8")
    # Own session: the SIGINT we send goes to JoeyNMT only, never to this script. SIGINT
    # back to its default: a shell starts background jobs with it ignored, and Python then
    # never raises the KeyboardInterrupt on which JoeyNMT saves and stops.
    return subprocess.Popen(cmd, stdout=fout, stderr=subprocess.STDOUT, cwd=REPO, env=env,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stop(proc: subprocess.Popen, grace_s: float) -> str:
    """SIGINT (JoeyNMT saves the current weights and exits), then SIGTERM, then SIGKILL."""
    for sig, wait_s in ((signal.SIGINT, grace_s), (signal.SIGTERM, 20), (signal.SIGKILL, 20)):
        if proc.poll() is not None:
            return "exited"
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait_s)
            return sig.name
        except subprocess.TimeoutExpired:
            continue
    return "unkillable"


def run_training(args, cfg_path: Path, out: Path, env: dict) -> dict:
    stdout = out / "train.stdout.log"
    cmd = [args.joey_python, "-m", "joeynmt", "train", str(cfg_path), "--skip-test"]
    log("train: " + " ".join(cmd))
    t_launch = time.monotonic()
    proc = start_proc(cmd, stdout, env)
    t_budget0 = t_launch if args.budget_from == "launch" else None
    while True:
        if proc.poll() is not None:
            raise BenchError(
                f"JoeyNMT training exited by itself (rc={proc.returncode}) before the budget "
                f"ran out: a crash, or --epochs too small. Last lines of {stdout}:\n"
                + tail(stdout))
        now = time.monotonic()
        if t_budget0 is None:
            if "EPOCH 1" in stdout.read_text(encoding="utf-8", errors="replace"):
                t_budget0 = now
                log(f"training started after {now - t_launch:.1f}s of startup; "
                    f"budget {args.budget_s:.0f}s")
            elif now - t_launch > args.startup_timeout_s:
                stop(proc, 10)
                raise BenchError(f"no 'EPOCH 1' in {stdout} after {args.startup_timeout_s}s "
                                 "(JoeyNMT still loading, or its log format changed):\n"
                                 + tail(stdout))
        elif now - t_budget0 >= args.budget_s:
            break
        time.sleep(0.25)
    how = stop(proc, args.grace_s)
    log(f"budget reached; JoeyNMT stopped by {how} (rc={proc.returncode})")
    return {"startup_s": (t_budget0 - t_launch) if args.budget_from == "train" else None,
            "stopped_by": how}


# --------------------------------------------------------------------------- log parsing

RECORD = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - ([A-Z]+) - (\S*) - (.*)$")
RATE = re.compile(r"Epoch\s+(\d+), Step:\s+(\d+), Batch Loss:\s+(\S+), Batch Acc: (\S+), "
                  r"Tokens per Sec:\s+(\d+), Lr: (\S+)")
EPOCH_END = re.compile(r"Epoch\s+(\d+), total training loss: (\S+), num\. of seqs: (\d+), "
                       r"num\. of tokens: (\d+), (\S+)\[sec\]")
EPOCH_START = re.compile(r"^EPOCH (\d+)$")
INTERRUPT = re.compile(r"Interrupt at epoch (\d+), step (\d+)\.")
PARAMS = re.compile(r"Total params: (\d+)")
EVAL = re.compile(r"Evaluation result \((greedy|beam search)\): (.*?), (\S+)\[sec\]")


def eval_scores(match: re.Match) -> dict[str, float]:
    """The scores of an EVAL record: {"bleu": 2.12, "loss": 4.5, ...}."""
    return {k: float(v) for k, v in (kv.split(": ") for kv in match.group(2).split(", "))}


def validation_bleus(path: Path) -> list[float]:
    """Greedy BLEU of each validation in a JoeyNMT train.log, in order (step
    validation_freq x k for the k-th)."""
    return [eval_scores(m)["bleu"] for _, s in parse_records(path)
            if (m := EVAL.search(s)) and m.group(1) == "greedy"]


def parse_records(path: Path) -> list[tuple[float, str]]:
    """(unix time, message) per log record; continuation lines are dropped."""
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = RECORD.match(line)
        if m:
            t = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            records.append((t, m.group(4)))
    return records


def parse_train_log(path: Path) -> dict:
    if not path.is_file():
        raise BenchError(f"JoeyNMT training log {path} not found")
    records = parse_records(path)
    if not records:
        raise BenchError(f"{path}: no records in the format "
                         "'YYYY-MM-DD HH:MM:SS,mmm - LEVEL - name - message'")
    params = [int(m.group(1)) for _, s in records if (m := PARAMS.search(s))]
    starts = [(t, int(m.group(1))) for t, s in records if (m := EPOCH_START.match(s))]
    ends = [(t, m) for t, s in records if (m := EPOCH_END.search(s))]
    interrupts = [(t, m) for t, s in records if (m := INTERRUPT.search(s))]
    if not starts:
        raise BenchError(f"{path}: no 'EPOCH 1' record: training never started")
    if not interrupts:
        raise BenchError(f"{path}: no 'Interrupt at epoch E, step S.' record: JoeyNMT did not "
                         "stop on SIGINT as expected (killed instead? see train.stdout.log)")
    intervals = []  # (seconds, tokens, step) per "Tokens per Sec" record
    for i, (t, s) in enumerate(records):
        m = RATE.search(s)
        if m and i > 0:
            seconds = t - records[i - 1][0]
            intervals.append((seconds, int(m.group(5)) * seconds, int(m.group(2))))
    if not intervals:
        raise BenchError(f"{path}: no 'Epoch E, Step: S, ... Tokens per Sec: N, Lr: X' "
                         "records: the budget ended before the first logging step "
                         "(lower --logging-freq or raise --budget-s), or the format changed")
    evals = [(t, m.group(2)) for t, s in records if (m := EVAL.search(s))]
    t_start, t_stop = starts[0][0], interrupts[-1][0]
    secs = sum(iv[0] for iv in intervals)
    toks = sum(iv[1] for iv in intervals)
    return {
        "total_params": params[0] if params else None,
        "log_train_s": secs,
        "log_target_tokens": toks,
        "tokens_per_s": toks / secs,
        "log_last_step": intervals[-1][2],
        "interrupt_epoch": int(interrupts[-1][1].group(1)),
        "interrupt_step": int(interrupts[-1][1].group(2)),
        "train_wall_s": t_stop - t_start,
        "completed_epochs": [
            {"epoch": int(m.group(1)), "target_tokens": int(m.group(4)),
             "train_s": float(m.group(5))} for _, m in ends],
        "validations": len(evals),
        "last_validation": evals[-1][1] if evals else None,
    }


CKPT_STATS = r"""
import json, sys, torch
ckpt = torch.load(sys.argv[1], map_location="cpu", weights_only=False)
print(json.dumps(ckpt["stats_state"]))
"""


def checkpoint_stats(joey_python: str, ckpt: Path) -> dict:
    res = subprocess.run([joey_python, "-c", CKPT_STATS, str(ckpt)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        raise BenchError(f"could not read the training stats of {ckpt}:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- test

def parse_test_output(path: Path, search: str = "beam search") -> tuple[float, str | None]:
    """BLEU and sacrebleu signature of a `joeynmt test` run decoded with ``search``."""
    records = parse_records(path)
    in_test, bleu, signature = False, None, None
    for _, s in records:
        if re.search(r"(Decoding|Scoring) on test set", s):
            in_test = True
        elif in_test and s.startswith("nrefs:"):
            signature = s
        elif in_test and (m := EVAL.search(s)):
            scores = eval_scores(m)
            if m.group(1) != search or "bleu" not in scores:
                raise BenchError(f"{path}: expected a {search} BLEU, got: {s}")
            bleu = scores["bleu"]
            break
    if bleu is None:
        raise BenchError(f"{path}: no 'Decoding on test set' followed by 'Evaluation result "
                         "(beam search): bleu: X, ...' record. Last lines:\n" + tail(path))
    return bleu, signature


BLEU_CHECK = r"""
import sys, sacrebleu
hyps = open(sys.argv[1], encoding="utf-8").read().splitlines()
refs = open(sys.argv[2], encoding="utf-8").read().splitlines()
assert len(hyps) == len(refs), (len(hyps), len(refs))
print(sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score)
"""


def run_joey_test(args, cfg_path: Path, stdout: Path, hyps: Path, env: dict,
                  search: str = "beam search") -> tuple[float, str | None, float]:
    """`joeynmt test CONFIG`: (its BLEU, the sacrebleu signature, seconds)."""
    cmd = [args.joey_python, "-m", "joeynmt", "test", str(cfg_path), "-o", str(hyps)]
    log("test: " + " ".join(cmd))
    t0 = time.monotonic()
    proc = start_proc(cmd, stdout, env)
    try:
        rc = proc.wait(timeout=args.test_timeout_s)
    except subprocess.TimeoutExpired:
        stop(proc, 10)
        raise BenchError(f"JoeyNMT test ran over {args.test_timeout_s}s; see {stdout}") from None
    if rc != 0:
        raise BenchError(f"JoeyNMT test failed (rc={rc}). Last lines of {stdout}:\n"
                         + tail(stdout))
    return (*parse_test_output(stdout, search), time.monotonic() - t0)


def validate_at_stop(args, template: str, values: dict, out: Path, env: dict,
                     data: Path, latest: Path, best_score: float | None) -> bool:
    """Whether the weights at the stop beat the best validated checkpoint on val.

    nlpseq validates once more when its time limit stops training, so its final weights
    can be chosen; JoeyNMT, stopped by SIGINT, saves them unvalidated. Here they get the
    validation JoeyNMT would have run: greedy BLEU on all of val (its validation decodes
    greedily), compared with the best validation score the checkpoint records."""
    cfg_text = fill_template(template, {**values, "TEST_PREFIX": str(data / "val"),
                                        "DEV_PREFIX": "null", "LOAD_MODEL": q(latest)})
    if cfg_text.count("    beam_size: 5\n") != 1:
        raise BenchError("the JoeyNMT template: expected one 'beam_size: 5' line under testing")
    cfg = out / "validate_stop.yaml"
    cfg.write_text(cfg_text.replace("    beam_size: 5\n", "    beam_size: 1\n"), encoding="utf-8")
    bleu, _, seconds = run_joey_test(args, cfg, out / "validate_stop.stdout.log",
                                     out / "validate_stop", env, search="greedy")
    log(f"weights at the stop: val greedy BLEU {bleu:.2f} (best validated: {best_score}) "
        f"in {seconds:.0f}s")
    return best_score is None or bleu > best_score


def run_test(args, cfg_path: Path, out: Path, env: dict, test_prefix: Path) -> dict:
    hyps = out / "test_beam5"
    bleu, signature, seconds = run_joey_test(args, cfg_path, out / "test.stdout.log", hyps, env)
    result = {"bleu_test_beam5": bleu, "sacrebleu_signature": signature, "test_s": seconds}
    hyp_file = Path(f"{hyps}.test")
    res = subprocess.run([args.joey_python, "-c", BLEU_CHECK, str(hyp_file),
                          f"{test_prefix}.{TRG}"], capture_output=True, text=True)
    if res.returncode == 0:
        result["bleu_test_beam5_recheck"] = float(res.stdout.strip().splitlines()[-1])
    else:
        log(f"BLEU re-check failed (JoeyNMT's own BLEU still reported):\n{res.stderr[-1000:]}")
    return result


# --------------------------------------------------------------------------- main

def joey_versions(joey_python: str, threads: int | None = None) -> dict:
    code = ("import json, importlib.metadata as m, torch\n"
            "print(json.dumps({'joeynmt': m.version('joeynmt'), 'torch': torch.__version__,"
            " 'torch_threads': torch.get_num_threads()}))")
    env = dict(os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {}))
    res = subprocess.run([joey_python, "-c", code], capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise BenchError(f"{joey_python} cannot import joeynmt/torch; create the venv with:\n  "
                         + "\n  ".join(install_commands()) + f"\n{res.stderr[-1500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget-s", type=float, default=600.0, help="training seconds")
    p.add_argument("--setup", choices=sorted(TEMPLATES), default="matched",
                   help="matched: the model and training settings nlpseq's side uses "
                        "(scripts/joeynmt/multi30k_gru.yaml); recommended: JoeyNMT's own "
                        "published recurrent recipe (multi30k_rnn_recommended.yaml)")
    p.add_argument("--seed", type=int, default=42, help="JoeyNMT's random_seed")
    p.add_argument("--normalization", choices=["tokens", "batch"], default="tokens",
                   help="matched set-up's loss normalisation: per target token (as nlpseq) "
                        "or per sentence (JoeyNMT's default)")
    p.add_argument("--init", choices=sorted(INITS), default="joeynmt",
                   help="matched set-up's initialisers: JoeyNMT's defaults (xavier) or close "
                        "to PyTorch's (as nlpseq's model starts)")
    p.add_argument("--budget-from", choices=["train", "launch"], default="train",
                   help="start the clock at JoeyNMT's 'EPOCH 1' record (default) or at launch")
    p.add_argument("--joey-python", default="/tmp/joey/bin/python")
    p.add_argument("--data-dir", type=Path, default=Path("../shared/data/multi30k"))
    p.add_argument("--out", type=Path, default=Path("outputs/bench_joeynmt"))
    p.add_argument("--work-dir", type=Path, default=None,
                   help="where --max-sentences writes its data subset (default: a new "
                        "temporary dir, deleted at the end unless --keep-work-dir); "
                        "never inside the repository")
    p.add_argument("--keep-work-dir", action="store_true")
    p.add_argument("--max-sentences", type=int, default=None,
                   help="train on the first N pairs only (quick check)")
    p.add_argument("--vocab-size", type=int, default=8000, help="per language, specials in")
    p.add_argument("--spm-model-type", choices=["unigram", "bpe"], default="unigram",
                   help="sentencepiece model type (nlpseq's translation task: sp_unigram)")
    p.add_argument("--lr", type=float, default=0.001,
                   help="matched set-up: Adam learning rate (constant)")
    p.add_argument("--label-smoothing", type=float, default=0.1,
                   help="matched set-up: as nlpseq's translation task (0.1); 0 for plain "
                        "cross-entropy")
    p.add_argument("--logging-freq", type=int, default=10, help="steps between rate records")
    p.add_argument("--validation-freq", type=int, default=200,
                   help="steps between validations/checkpoints (multiple of --logging-freq)")
    p.add_argument("--dev-subset", type=int, default=-1,
                   help="validate on N random val pairs (JoeyNMT's sample_dev_subset); "
                        "-1: all 1014 (default); the test set is always decoded whole")
    p.add_argument("--epochs", type=int, default=1000, help="large: the budget stops training")
    p.add_argument("--ckpt", choices=["best", "latest"], default="best",
                   help="checkpoint to test: best greedy dev BLEU, or the weights at the stop")
    p.add_argument("--no-validate-at-stop", dest="validate_at_stop", action="store_false",
                   help="test best.ckpt as it is, without validating the weights at the "
                        "stop (done by default for set-ups that choose by val BLEU, as "
                        "nlpseq validates when its time limit stops training)")
    p.add_argument("--torch-threads", type=int, default=None,
                   help="OMP_NUM_THREADS for JoeyNMT (default: inherited, i.e. torch's own "
                        "choice = number of cores). Busy CPUs slow 2 OpenMP threads down "
                        "badly: benchmark on an idle machine")
    p.add_argument("--grace-s", type=float, default=120.0,
                   help="seconds JoeyNMT gets after SIGINT to save and exit")
    p.add_argument("--startup-timeout-s", type=float, default=600.0)
    p.add_argument("--test-timeout-s", type=float, default=1800.0)
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.validation_freq % args.logging_freq:
        raise BenchError("--validation-freq must be a multiple of --logging-freq (JoeyNMT rule)")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = args.data_dir.resolve()
    for split in ("train", "val", "test_2016_flickr"):
        for lang in (SRC, TRG):
            if not (data / f"{split}.{lang}").is_file():
                raise BenchError(f"missing data file {data / f'{split}.{lang}'}")
    versions = joey_versions(args.joey_python, args.torch_threads)
    log(f"JoeyNMT {versions['joeynmt']}, torch {versions['torch']} "
        f"({versions['torch_threads']} threads)")

    work, made_work = None, False
    if args.max_sentences:
        if args.work_dir is None:
            work, made_work = Path(tempfile.mkdtemp(prefix="bench-joeynmt-")), True
        else:
            work = args.work_dir.resolve()
            if work == REPO or REPO in work.parents:
                raise BenchError(f"--work-dir {work} is inside the repository: "
                                 "data copies stay out of it")
            work.mkdir(parents=True, exist_ok=True)
    try:
        train_prefix = data / "train"
        n_train = None
        if work is not None:
            train_prefix = work / "train"
            counts = {first_lines(data / f"train.{lang}", work / f"train.{lang}",
                                  args.max_sentences) for lang in (SRC, TRG)}
            if len(counts) != 1:
                raise BenchError(f"train.{SRC}/train.{TRG} line counts differ: {counts}")
            n_train = counts.pop()
        spm, spm_dir = {}, out / "spm"
        spm_dir.mkdir(exist_ok=True)
        for lang in (SRC, TRG):
            t0 = time.monotonic()
            spm[lang] = train_spm(args.joey_python, Path(f"{train_prefix}.{lang}"),
                                  spm_dir / f"spm.{lang}", args.vocab_size,
                                  args.spm_model_type)
            log(f"sentencepiece {lang}: {spm[lang][2]} pieces in {time.monotonic() - t0:.1f}s")

        model_dir = out / "model"
        values = {
            "MODEL_DIR": str(model_dir), "TRAIN_PREFIX": str(train_prefix),
            "TEST_PREFIX": str(data / "test_2016_flickr"),
            "SRC_VOCAB": str(spm[SRC][1]), "SRC_SPM": str(spm[SRC][0]),
            "TRG_VOCAB": str(spm[TRG][1]), "TRG_SPM": str(spm[TRG][0]),
            "EPOCHS": str(args.epochs), "LOGGING_FREQ": str(args.logging_freq),
            "VALIDATION_FREQ": str(args.validation_freq), "DEV_SUBSET": str(args.dev_subset),
            "LR": repr(args.lr), "LABEL_SMOOTHING": repr(args.label_smoothing),
            "SEED": str(args.seed), "NORMALIZATION": args.normalization,
            **INITS[args.init],
        }
        template = TEMPLATES[args.setup].read_text(encoding="utf-8")
        train_cfg = out / "train.yaml"
        train_cfg.write_text(fill_template(template, {**values, "DEV_PREFIX": q(data / "val"),
                                                      "LOAD_MODEL": "null"}), encoding="utf-8")

        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if args.torch_threads:  # JoeyNMT never calls torch.set_num_threads: OpenMP's env rules
            env["OMP_NUM_THREADS"] = str(args.torch_threads)
        run = run_training(args, train_cfg, out, env)
        stats = parse_train_log(model_dir / "train.log")

        latest = model_dir / "latest.ckpt"
        if not latest.is_file():
            raise BenchError(f"{latest} not found: JoeyNMT saved no checkpoint at the stop")
        ckpt_stats = checkpoint_stats(args.joey_python, latest)
        if ckpt_stats["steps"] != stats["interrupt_step"]:
            raise BenchError(f"step mismatch: checkpoint {ckpt_stats['steps']}, "
                             f"log {stats['interrupt_step']}")
        ckpt = model_dir / f"{args.ckpt}.ckpt"
        ckpt_note = args.ckpt
        if not ckpt.is_file():
            ckpt, ckpt_note = latest, "latest (no validation checkpoint before the stop)"
            log("no best.ckpt (no validation ran): testing latest.ckpt")
        elif args.ckpt == "best" and args.validate_at_stop:
            chooses_by_bleu = 'early_stopping_metric: "bleu"' in template
            trained_past_best = ckpt_stats["steps"] > ckpt_stats["best_ckpt_iter"]
            if chooses_by_bleu and trained_past_best and validate_at_stop(
                    args, template, values, out, env, data, latest,
                    ckpt_stats.get("best_ckpt_score")):
                ckpt, ckpt_note = latest, "latest (validated at the stop: better than best)"
        ckpt = ckpt.resolve()

        test_cfg = out / "test.yaml"
        test_cfg.write_text(fill_template(
            template, {**values, "DEV_PREFIX": "null", "LOAD_MODEL": q(ckpt)}), encoding="utf-8")
        test = run_test(args, test_cfg, out, env, data / "test_2016_flickr")
    finally:
        if made_work and not args.keep_work_dir:
            shutil.rmtree(work, ignore_errors=True)

    tokens = ckpt_stats["total_tokens"]
    result = {
        "tool": "joeynmt",
        "tokens_per_s": round(stats["tokens_per_s"], 1),
        "bleu_test_beam5": test["bleu_test_beam5"],
        "steps": ckpt_stats["steps"],
        "epochs": ckpt_stats["epochs"],  # the epoch training was in when stopped (1-based)
        "budget_s": args.budget_s,
        "budget_from": args.budget_from,
        "completed_epochs": len(stats["completed_epochs"]),
        "train_target_tokens": tokens,
        "train_wall_s": round(stats["train_wall_s"], 2),
        "tokens_per_wall_s": round(tokens / stats["train_wall_s"], 1),
        "log_train_s": round(stats["log_train_s"], 2),
        "startup_s": None if run["startup_s"] is None else round(run["startup_s"], 2),
        "validations": stats["validations"],
        "validation_freq": args.validation_freq, "logging_freq": args.logging_freq,
        "dev_subset": args.dev_subset,
        "last_validation_greedy": stats["last_validation"],
        "tested_ckpt": ckpt_note,
        "tested_ckpt_step": int(ckpt.stem) if ckpt.stem.isdigit() else ckpt.stem,
        "bleu_test_beam5_recheck": test.get("bleu_test_beam5_recheck"),
        "sacrebleu_signature": test["sacrebleu_signature"],
        "test_s": round(test["test_s"], 1),
        "total_params": stats["total_params"],
        "vocab": {"type": f"sentencepiece {args.spm_model_type}, separate {SRC}/{TRG}",
                  SRC: spm[SRC][2], TRG: spm[TRG][2]},
        "setup": args.setup, "seed": args.seed,
        **({"lr": args.lr, "label_smoothing": args.label_smoothing,
            "normalization": args.normalization, "init": args.init,
            "batch": "64 sentences, random order (batch_type sentence)"}
           if args.setup == "matched" else {"recipe": TEMPLATES[args.setup].name}),
        "train_pairs": n_train if n_train is not None else "all",
        "tokens_counted": "target only (non-pad target tokens incl. </s>, excl. <s>)",
        "joeynmt": versions["joeynmt"], "torch": versions["torch"],
        "torch_threads": versions["torch_threads"],
        "out": str(out),
    }
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    try:
        main()
    except BenchError as err:
        print(f"bench_joeynmt: error: {err}", file=sys.stderr)
        sys.exit(1)
