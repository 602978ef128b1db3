"""Where nlpseq's conf/ tree is: beside the package in a source checkout, inside it when
installed."""

from __future__ import annotations

from pathlib import Path


def config_dir() -> str:
    """The conf/ tree: beside the package in a source checkout, inside it when installed."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "conf", package / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"nlpseq configs not found next to {package}")
