"""nlpseq from Python: train, evaluate and use models without knowing Hydra.

    import nlpseq
    run = nlpseq.train(["encoder=gru", "trainer.max_epochs=3"])   # the CLI's overrides
    run.metrics["test/acc"], run.dir
    model = nlpseq.load(run.dir)                                   # or a .ckpt file
    model.predict(["a gripping film", "dull"])                     # labels + probabilities
    nlpseq.evaluate(run.dir, data=["data=files", "data.test_file=x.tsv"])

``train`` and ``evaluate`` run exactly what ``nlpseq-train`` and ``nlpseq-eval`` run (the
same config checks, run directory, log file and metrics.json); a mistake raises
``nlpseq.NlpseqError`` with the one line the command would print. ``load`` rebuilds a
checkpoint's task (checked as the commands check it: no code runs) and offers
``predict``, ``generate`` and ``translate`` with ``nlpseq-predict``'s options.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nlpseq.errors import NlpseqError

if TYPE_CHECKING:
    from nlpseq.export.runtime import ExportedModel


@dataclass
class Run:
    """A finished command: its run directory and the metrics it wrote (metrics.json)."""

    dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def best_checkpoint(self) -> Path:
        return self.dir / "checkpoints" / "best.ckpt"


def train(overrides: Sequence[str] = (), run_dir: str | Path | None = None) -> Run:
    """Train one model as ``nlpseq-train <overrides>`` would, in this process.

    ``overrides``: the command line's ``key=value`` items (``["experiment=sst2",
    "encoder=gru"]``); ``run_dir``: where the run is written (default: the command's
    ``outputs/<date>/<time>``). Sweeps (``-m``) stay on the command line."""
    return _run("train", "train", [*_overrides(overrides, "overrides"),
                                   *_run_dir_override(run_dir)], lock=True)


def evaluate(checkpoint: str | Path, data: Sequence[str] = (), overrides: Sequence[str] = (),
             run_dir: str | Path | None = None) -> dict[str, Any]:
    """The metrics of a checkpoint (a ``.ckpt`` file or a run directory) as ``nlpseq-eval``
    computes them; ``data``: what to evaluate on (``["data=files",
    "data.test_file=x.tsv"]``; default: the run's own test split); ``overrides``: other
    ``nlpseq-eval`` options (``["split=validation", "beam_size=5"]``)."""
    items = [f"ckpt_path={_quoted(_path(checkpoint, 'checkpoint'))}",
             *_overrides(data, "data"), *_overrides(overrides, "overrides"),
             *_run_dir_override(run_dir)]
    return _run("eval", "evaluate", items, lock=True).metrics


def load(path: str | Path, device: str = "auto",
         allowed_targets: Sequence[str] = ()) -> Model | ExportedModel:
    """The model saved at ``path`` (a run directory or a ``.ckpt`` file), ready to predict
    on ``device`` (``auto``: a GPU when there is one, ``cpu``, ``cuda``, ``mps``).
    ``allowed_targets``: components of your own the checkpoint may name (``["mypkg.*"]``),
    as the commands' ``allowed_targets=``.

    What ``nlpseq-export format=onnx`` wrote (its directory or ``model.onnx``) loads as an
    ``ExportedModel`` on onnxruntime, without torch: ``predict``, ``generate`` and
    ``translate`` (greedy) on lists of texts."""
    from nlpseq.export.runtime import ExportedModel, is_export

    path = _path(path, "path")
    if is_export(path):
        return ExportedModel(path)
    from nlpseq.cli.common import pick_device
    from nlpseq.tasks.checkpoint import load_task

    task, tokenizer, config = load_task(path, trusted=list(allowed_targets))
    return Model(task.to(pick_device(device)), tokenizer, config)


class Model:
    """A trained model: ``predict`` for any task, ``generate`` for a language model,
    ``translate`` for a translation model. Options and their checks are
    ``nlpseq-predict``'s (conf/predict.yaml)."""

    def __init__(self, task, tokenizer, config) -> None:
        self.task = task  # the LightningModule (task.model: the plain nn.Module)
        self.tokenizer = tokenizer
        self.config = config  # the training run's config
        self.task_name: str = task.task_name
        self.label_names: list[str] | None = getattr(task, "label_names", None)

    def __repr__(self) -> str:
        return (f"Model(task={self.task_name!r}, cell={self.config.encoder.cell!r}, "
                f"device={str(self.task.device)!r})")

    def predict(self, texts: str | Sequence[str], **options) -> list[dict]:
        """One row per text, as ``nlpseq-predict`` writes them: sentiment ``{"label",
        "probability", "probabilities"}``, generation ``{"prompt", "continuation"}``,
        translation ``{"source", "translations"}``. ``options``: the task's
        ``nlpseq-predict`` keys (``batch_size``, ``max_new_tokens``, ``beam_size``, ...)."""
        texts = _texts(texts)
        if not texts:
            raise NlpseqError("No texts to predict: give a string or a list of strings")
        unknown = sorted(set(options) - set(self.task.predict_options))
        if unknown:
            raise NlpseqError(f"{', '.join(unknown)}: not an option of a {self.task_name} "
                              f"model; it reads {', '.join(self.task.predict_options)}")
        from nlpseq.config.schema import PredictConfig
        from nlpseq.config.validate import check_options

        check_options(options, PredictConfig)
        return self.task.predict(texts, **self.task.prediction_options(options))

    def generate(self, prompt: str | Sequence[str] = "", **options) -> str | list[str]:
        """The continuation of a prompt (a list of prompts: one each). ``options``:
        ``max_new_tokens``, ``temperature``, ``top_k``, ``top_p``, ``greedy``, ``seed``,
        ``stop_at_eos``."""
        self._need("generation", "generate")
        rows = self.predict(prompt, **options)
        found = [row["continuation"] for row in rows]
        return found[0] if isinstance(prompt, str) else found

    def translate(self, texts: str | Sequence[str], **options) -> str | list[str]:
        """The best translation of each text (a string gives a string). ``options``:
        ``beam_size``, ``length_penalty``, ``batch_size``."""
        self._need("translation", "translate")
        if options.get("n_best", 1) != 1:
            raise NlpseqError("translate gives the best translation; for the n best use "
                              "predict(texts, n_best=N)")
        rows = self.predict(texts, **options)
        found = [row["translations"][0]["text"] for row in rows]
        return found[0] if isinstance(texts, str) else found

    def _need(self, task_name: str, method: str) -> None:
        if self.task_name != task_name:
            raise NlpseqError(f"{method} needs a {task_name} model; this is a "
                              f"{self.task_name} one (use predict)")


# ------------------------------------------------------------------------- the commands
def _run(config_name: str, module: str, overrides: list[str], lock: bool) -> Run:
    """Run a command's work as its console entry point does (``nlpseq.cli.entry``): check
    the overrides, pin and lock the run directory, then Hydra's run (config files, log
    file); a user's mistake raises ``NlpseqError``."""
    import importlib

    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from nlpseq.cli.common import (
        CONFIG_DIR,
        checked_run,
        flush_denormals,
        user_error,
    )

    flag = next((item for item in overrides if item.startswith("-")), None)
    if flag is not None:
        raise NlpseqError(f"{flag}: flags are the command line's; give key=value overrides "
                          "(sweeps: nlpseq-train -m)")
    work = getattr(importlib.import_module(f"nlpseq.cli.{module}"), module)  # train.train, ...

    def task_function(cfg):
        flush_denormals()
        try:
            return work(cfg)
        except Exception as err:  # Hydra wraps what an instantiated object raised
            cause = user_error(err)
            if cause is None or cause is err:
                raise
            raise cause from None

    with checked_run(config_name, overrides, module, lock) as pinned:
        GlobalHydra.instance().clear()
        with initialize_config_dir(CONFIG_DIR, version_base="1.3", job_name=module):
            job = GlobalHydra.instance().hydra.run(config_name, task_function, pinned)
    run_dir = Path(job.hydra_cfg.hydra.runtime.output_dir)
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return Run(run_dir, metrics)


def _overrides(items, name: str) -> list[str]:
    """``items`` as a list of ``key=value`` strings; a single string (which Python would
    read character by character) or anything else is refused."""
    if isinstance(items, (str, bytes)) or not isinstance(items, (list, tuple)):
        raise NlpseqError(f"{name} must be a list of 'key=value' strings, got "
                          f"{type(items).__name__} {items!r}")
    for item in items:
        if not isinstance(item, str):
            raise NlpseqError(f"{name} must be a list of 'key=value' strings; {item!r} is "
                              f"{type(item).__name__}")
    return list(items)


def _path(value, name: str) -> str | Path:
    if not isinstance(value, (str, Path)):
        raise NlpseqError(f"{name} must be a run directory or a checkpoint file (str or Path), "
                          f"got {type(value).__name__} {value!r}")
    return value


def _texts(texts) -> list[str]:
    """A string or a list of strings, as a list."""
    if isinstance(texts, str):
        return [texts]
    if not isinstance(texts, (list, tuple)):
        raise NlpseqError(f"texts must be a string or a list of strings, got "
                          f"{type(texts).__name__}")
    for number, text in enumerate(texts):
        if not isinstance(text, str):
            raise NlpseqError(f"texts[{number}] is {type(text).__name__}, not a string")
    return list(texts)


def _run_dir_override(run_dir: str | Path | None) -> list[str]:
    return [] if run_dir is None else [f"hydra.run.dir={_quoted(run_dir)}"]


def _quoted(path: str | Path) -> str:
    """A path as one override value, whatever characters it holds (Hydra's quoting)."""
    text = str(Path(path).expanduser())
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
