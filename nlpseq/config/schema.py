"""Top-level keys of each command's config (the groups are checked against the code).

``validate_config`` rejects any top-level key not listed here, so a misspelt key in an
experiment file fails at once instead of being silently ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass
class TrainConfig:
    task: Any
    encoder: Any
    data: Any
    tokenizer: Any
    optimizer: Any
    trainer: Any
    scheduler: Any = None
    logger: Any = None
    callbacks: Any = None
    seed: int = 42
    test: bool = True  # evaluate the best checkpoint on validation and test after training
    resume: bool = False  # continue the run directory's checkpoints/last.ckpt
    ckpt_path: str | None = None  # continue from this checkpoint in a new run directory
    float32_matmul_precision: Literal["highest", "high", "medium"] = "high"
    allowed_targets: list[str] = field(default_factory=list)  # admitted in checkpoints read


@dataclass
class EvalConfig:
    ckpt_path: str
    data: Any = None  # None: the data the checkpoint was trained on
    split: Literal["train", "validation", "test"] = "test"
    batch_size: int | None = None  # None: the data config's eval_batch_size
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    seed: int | None = None  # None: the run's own, so a held-out split is the one it held out
    beam_size: int | None = None  # translation: None = the checkpoint's task.beam_size
    length_penalty: float | None = None  # translation: GNMT alpha; None = task's
    allowed_targets: list[str] = field(default_factory=list)  # admitted in checkpoints read


@dataclass
class PredictConfig:
    ckpt_path: str
    text: str | None = None
    input_file: str | None = None  # "-" or unset with no text: read standard input
    output_file: str | None = None  # unset: write JSON lines to standard output
    prompt: str | None = None  # generation: the text to continue ("" starts from scratch)
    max_new_tokens: int = 200
    greedy: bool = False  # always the most likely token; otherwise sample
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float = 1.0
    seed: int | None = None  # repeatable samples
    stop_at_eos: bool | None = None  # None: a lines model stops at <eos>, a stream's goes on
    beam_size: int | None = None  # translation: None = the checkpoint's task.beam_size
    length_penalty: float | None = None  # translation: GNMT alpha; None = task's
    n_best: int = 1  # translation: > 1 writes JSON lines with the n best and their scores
    attention_file: str | None = None  # translation: attention weights of text=... (.json/.png)
    batch_size: int = 256
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    allowed_targets: list[str] = field(default_factory=list)  # admitted in checkpoints read


@dataclass
class InspectConfig:
    ckpt_path: str
    text: str | None = None  # the text to trace; probes: the first sequence of the split
    split: Literal["train", "validation", "test"] | None = None  # gate saturation over it
    max_batches: int = 20  # of the split, for the saturation statistics
    heatmaps: bool = True
    allowed_targets: list[str] = field(default_factory=list)  # admitted in checkpoints read


@dataclass
class ExportConfig:
    ckpt_path: str
    format: Literal["onnx", "torchscript"] = "onnx"
    quantize: Literal["dynamic"] | None = None  # int8 weights, activations quantized on the fly
    output: str | None = None  # the export directory; None: <run dir>/export/<format>[-int8]
    allowed_targets: list[str] = field(default_factory=list)  # admitted in checkpoints read


@dataclass
class ServeConfig:
    ckpt_path: str
    host: str = "127.0.0.1"  # 0.0.0.0: reachable from other machines
    port: int = 8000
    batching: bool = True  # answer concurrent requests with the same options in one batch
    max_batch_size: int = 64  # texts in one batch
    max_wait_ms: float = 0.0  # how long a batch waits for more requests
    max_text_chars: int = 10_000  # a longer text is refused (413)
    max_texts: int = 256  # texts in one request
    max_new_tokens_cap: int = 1024  # a request asking for more is refused (400)
    beam_size_cap: int = 16  # a request's beam_size and n_best at most this
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    allowed_targets: list[str] = field(default_factory=list)  # admitted in checkpoints read
