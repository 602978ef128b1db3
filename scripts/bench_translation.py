"""nlpseq against JoeyNMT 2.3.0 on Multi30k de->en: the same model size, data, tokenizer
kind and wall-clock budget on the same machine; then decoding speed, greedy vs beam 5.

    python scripts/bench_translation.py --budget-s 300 [--skip-joeynmt]

The nlpseq side trains ``task=translation`` sized like ``scripts/joeynmt/multi30k_gru.yaml``
(bi-GRU 1 x 256 per direction, GRU decoder 256, Luong general attention with input
feeding, bridge, tied target embedding, dropout 0.2, label smoothing 0.1, Adam lr 1e-3
constant, 64 sentences a batch, sentencepiece unigram 8000 per language, greedy validation
BLEU every 200 steps), stopped by ``trainer.max_time``. Both sides count training tokens
the same way: real target tokens, ``<eos>`` included. JoeyNMT runs through
``scripts/bench_joeynmt.py`` in its own virtualenv (see ``install_commands()`` there).
Prints one JSON object: tokens/s of each, their ratio, test BLEU (beam 5) at the budget,
and nlpseq's test decoding speed in sentences/s for greedy and beam 5.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MATCHED = [  # the JoeyNMT config's sizes and training settings, as nlpseq overrides
    "task=translation", "data=multi30k", "encoder=gru", "encoder.hidden_size=256",
    "encoder.bidirectional=true", "task.embedding_dim=256", "task.embedding_dropout=0.2",
    "task.decoder.hidden_size=256", "task.decoder.attention=luong_general",
    "task.decoder.input_feeding=true", "task.decoder.dropout=0.2", "task.label_smoothing=0.1",
    "tokenizer=sp_unigram", "tokenizer.vocab_size=8000", "optimizer=adam",
    "optimizer.lr=0.001", "optimizer.weight_decay=0.0", "scheduler=constant",
    "data.batch_size=64", "data.max_source_length=null", "data.max_target_length=null",
    "trainer.max_epochs=1000", "trainer.val_check_interval=200",
    "callbacks.early_stopping.patience=1000", "trainer.enable_progress_bar=false",
]


def run(command: list[str], env: dict) -> None:
    print("+", " ".join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, env=env)


def nlpseq_side(budget_s: float, out: Path, env: dict) -> dict:
    """Train for the budget, then evaluate the best checkpoint greedy and with beam 5."""
    bin_dir = Path(sys.executable).parent
    minutes, seconds = divmod(int(budget_s), 60)
    run_dir = out / "nlpseq"
    run([str(bin_dir / "nlpseq-train"), *MATCHED, f"trainer.max_time=00:00:{minutes:02d}:"
         f"{seconds:02d}", "test=false", f"hydra.run.dir={run_dir}"], env)
    trained = json.loads((run_dir / "metrics.json").read_text())
    result = {"tokens_per_s": trained["train/tokens_per_s"], "params": trained["params"],
              "train_time_s": trained["train/time_s"], "epochs": trained["train/epochs"]}
    for beam in (1, 5):
        eval_dir = out / f"nlpseq_eval_beam{beam}"
        run([str(bin_dir / "nlpseq-eval"), f"ckpt_path={run_dir}", f"beam_size={beam}",
             f"hydra.run.dir={eval_dir}"], env)
        metrics = json.loads((eval_dir / "metrics.json").read_text())
        result[f"bleu_test_beam{beam}"] = metrics["test/bleu"]
        result[f"sentences_per_s_beam{beam}"] = metrics["test/sentences_per_s"]
    result["beam5_speed_vs_greedy"] = (result["sentences_per_s_beam5"]
                                       / result["sentences_per_s_beam1"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget-s", type=float, default=300.0, help="training seconds each")
    parser.add_argument("--data-dir", type=Path, default=HERE.parent.parent / "shared" / "data")
    parser.add_argument("--joey-python", default="/tmp/joey/bin/python")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench_translation"))
    parser.add_argument("--skip-joeynmt", action="store_true")
    args = parser.parse_args()
    env = {**os.environ, "NLPSEQ_DATA_DIR": str(args.data_dir.resolve()),
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    args.out.mkdir(parents=True, exist_ok=True)
    report = {"budget_s": args.budget_s, "nlpseq": nlpseq_side(args.budget_s, args.out, env)}
    if not args.skip_joeynmt:
        joey_out = args.out / "joeynmt"
        run([sys.executable, str(HERE / "bench_joeynmt.py"), "--budget-s", str(args.budget_s),
             "--joey-python", args.joey_python, "--data-dir",
             str(args.data_dir / "multi30k"), "--out", str(joey_out)], env)
        report["joeynmt"] = json.loads((joey_out / "result.json").read_text())
        report["tokens_per_s_ratio"] = (report["nlpseq"]["tokens_per_s"]
                                        / report["joeynmt"]["tokens_per_s"])
    (args.out / "result.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
