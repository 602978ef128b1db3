"""Print evaluation reports as rich tables: one printer per task, picked by task name."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_classification_report(report: dict, prefix: str, label_names: list[str]) -> None:
    """Show accuracy/F1/loss, per-class precision and recall, and the confusion matrix."""
    console = Console()
    summary = Table(title=f"{prefix}: {report[f'{prefix}/examples']} examples")
    for column in ("accuracy", "macro-F1", "loss"):
        summary.add_column(column, justify="right")
    summary.add_row(f"{report[f'{prefix}/acc']:.4f}", f"{report[f'{prefix}/f1']:.4f}",
                    f"{report[f'{prefix}/loss']:.4f}")
    per_class = Table(title="per class")
    per_class.add_column("label")
    per_class.add_column("precision", justify="right")
    per_class.add_column("recall", justify="right")
    for name in label_names:
        per_class.add_row(name, f"{report[f'{prefix}/precision/{name}']:.4f}",
                          f"{report[f'{prefix}/recall/{name}']:.4f}")
    confusion = Table(title="confusion matrix (rows: true, columns: predicted)")
    confusion.add_column("")
    for name in label_names:
        confusion.add_column(name, justify="right")
    for name, row in zip(label_names, report[f"{prefix}/confusion"], strict=True):
        confusion.add_row(name, *(str(v) for v in row))
    for table in (summary, per_class, confusion):
        console.print(table)


def print_language_model_report(report: dict, prefix: str) -> None:
    """Show loss (nats per token), perplexity and, for characters, bits per character."""
    table = Table(title=f"{prefix}: {report[f'{prefix}/tokens']} tokens")
    columns = [("loss (nats/token)", "loss"), ("perplexity", "ppl"), ("bits/char", "bpc")]
    shown = [(title, key) for title, key in columns if f"{prefix}/{key}" in report]
    for title, _ in shown:
        table.add_column(title, justify="right")
    table.add_row(*(f"{report[f'{prefix}/{key}']:.4f}" for _, key in shown))
    Console().print(table)


def print_translation_report(report: dict, prefix: str) -> None:
    """Show BLEU and chrF (with the sacrebleu signature), loss, perplexity, decoding speed."""
    table = Table(title=f"{prefix}: {report[f'{prefix}/sentences']} sentences, beam "
                        f"{report[f'{prefix}/beam_size']}")
    columns = [("BLEU", "bleu", "{:.2f}"), ("chrF", "chrf", "{:.2f}"), ("loss", "loss", "{:.4f}"),
               ("perplexity", "ppl", "{:.2f}"), ("sentences/s", "sentences_per_s", "{:.1f}")]
    for title, _, _ in columns:
        table.add_column(title, justify="right")
    table.add_row(*(form.format(report[f"{prefix}/{key}"]) for _, key, form in columns))
    console = Console()
    console.print(table)
    console.print(f"sacrebleu BLEU {report[f'{prefix}/bleu_signature']}", soft_wrap=True)
    console.print(f"sacrebleu chrF {report[f'{prefix}/chrf_signature']}", soft_wrap=True)


def print_probe_report(report: dict, prefix: str, score: str) -> None:
    """Show the probe's loss and score beside the chance level."""
    table = Table(title=f"{prefix}: {report[f'{prefix}/examples']} sequences")
    for column in ("loss", score, f"{score} at chance"):
        table.add_column(column, justify="right")
    table.add_row(*(f"{report[f'{prefix}/{key}']:.4f}" for key in ("loss", score, "chance")))
    Console().print(table)


def print_report(task, report: dict, prefix: str) -> None:
    """The task's own report printer."""
    if task.task_name == "probe":
        print_probe_report(report, prefix, task.score_name)
    elif task.task_name == "sentiment":
        print_classification_report(report, prefix, task.label_names)
    elif task.task_name == "translation":
        print_translation_report(report, prefix)
    else:
        print_language_model_report(report, prefix)
