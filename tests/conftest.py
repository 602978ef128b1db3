"""Shared test set-up: an isolated datasets cache, offline hub, and small helpers."""

import os
import tempfile

os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="nlpseq-hf-cache-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Two test workers share two cores: torch's default of a thread per core in each process
# oversubscribes them, and OpenMP threads waiting on each other made two tiny trainings
# side by side 10x slower (75 s each against 8.5 s with one thread; 7.5 s alone).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def write_tsv(tmp_path):
    """Write rows (list of tuples) as a TSV file with a header; return its path."""

    def write(name: str, rows, header=("sentence", "label")) -> Path:
        path = tmp_path / name
        lines = ["\t".join(header)] + ["\t".join(str(c) for c in row) for row in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    return write
