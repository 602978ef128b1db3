"""A fourth task written entirely outside nlpseq: token-level tagging (is each token a
number?). tests/integration/test_new_task.py trains, evaluates, predicts, reports and
inspects it through the real commands, none of which knows it exists."""
