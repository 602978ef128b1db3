"""Write a translation's attention weights as JSON (matrix + tokens) or as a PNG heatmap."""

from __future__ import annotations

import json
from pathlib import Path

from nlpseq.errors import NlpseqError

FORMATS = (".json", ".png")


def save_attention(attention: dict, path: str | Path) -> Path:
    """Save ``TranslationTask.attention_map`` output; the extension picks the format.

    PNG: one row per target token, one column per source token, darker = more weight.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise NlpseqError(f"attention_file '{path}' must end in {' or '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".json":
        path.write_text(json.dumps(attention, ensure_ascii=False, indent=1) + "\n",
                        encoding="utf-8")
        return path
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    sources, targets = attention["source_tokens"], attention["target_tokens"]
    figure, axes = plt.subplots(figsize=(1 + 0.45 * len(sources), 1 + 0.4 * len(targets)))
    axes.imshow(attention["weights"], cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    axes.set_xticks(range(len(sources)), sources, rotation=90)
    axes.set_yticks(range(len(targets)), targets)
    axes.set_xlabel("source")
    axes.set_ylabel("translation")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
