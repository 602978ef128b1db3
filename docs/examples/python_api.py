"""nlpseq from Python: train, evaluate, load and use the three kinds of model.

Runs on the embedded sample data in about a minute on a laptop CPU (small models, a few
epochs; drop the size and epoch overrides for real ones):

    python docs/examples/python_api.py [OUTPUT_DIR]
"""

import sys
import tempfile
from pathlib import Path

import nlpseq

out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
small = ["task.embedding_dim=32", "encoder.hidden_size=32", "trainer.enable_progress_bar=false"]

# Sentiment (default sizes: its regularisation is set for them): the same overrides as on
# the command line; the run directory and its metrics
run = nlpseq.train(["encoder=gru", "optimizer.lr=0.01", "trainer.max_epochs=6",
                    "trainer.enable_progress_bar=false"], run_dir=out / "sentiment")
print(run.dir, f"validation accuracy {run.metrics['val/acc']:.3f}")
model = nlpseq.load(run.dir)                      # a run directory or a .ckpt file
for row in model.predict(["a gripping film", "dull and lifeless"]):
    print(row["label"], round(row["probability"], 3), row["text"])
metrics = nlpseq.evaluate(run.dir, overrides=["split=validation"], run_dir=out / "eval")
print("evaluated again:", round(metrics["val/acc"], 3))

# A language model: generate from a prompt
lm_run = nlpseq.train([*small, "task=generation", "tokenizer=char", "trainer.max_epochs=2"],
                      run_dir=out / "lm")
lm = nlpseq.load(lm_run.dir)
print(repr(lm.generate("ROMEO:", max_new_tokens=40, temperature=0.8, seed=1)))

# Translation: beam search over the best checkpoint
mt_run = nlpseq.train([*small, "task=translation", "trainer.max_epochs=1"],
                      run_dir=out / "translation")
mt = nlpseq.load(mt_run.dir)
print(mt.translate(["Ein Hund rennt."], beam_size=5))

# Mistakes raise one exception type, with the line the command would print
try:
    nlpseq.train(["encoder=lsmt"])
except nlpseq.NlpseqError as err:
    print("error:", err)
