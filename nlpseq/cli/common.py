"""What the three entry points share: the config folder, error handling, devices, output."""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from nlpseq.errors import NlpseqError

log = logging.getLogger("nlpseq")


def config_dir() -> str:
    """The conf/ tree: beside the package in a source checkout, inside it when installed."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "conf", package / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise RuntimeError(f"nlpseq configs not found next to {package}")


CONFIG_DIR = config_dir()


def run_command(command: Callable[[DictConfig], object], cfg: DictConfig) -> object:
    """Run ``command``; a user error becomes one line on stderr and exit status 2.

    Denormal floats are flushed to zero first: after a few optimizer steps, one-step
    recurrent kernels (a translation decoder with input feeding) met enough of them to
    run 25x slower on a CPU (9.5 s against 0.36 s per batch, 2-core CPU, GRU 512).
    """
    torch.set_flush_denormal(True)
    try:
        return command(cfg)
    except (NlpseqError, InstantiationException) as err:
        cause = user_error(err)
        if cause is None:
            raise
        log.debug("user error", exc_info=True)
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def user_error(err: BaseException) -> NlpseqError | None:
    """The NlpseqError behind ``err``: itself, or what an object built by
    ``hydra.utils.instantiate`` raised (Hydra wraps it in an InstantiationException)."""
    while err is not None and not isinstance(err, NlpseqError):
        err = err.__cause__
    return err


def pick_device(accelerator: str) -> torch.device:
    """``auto`` takes a GPU when there is one; ``gpu`` without one is a clear error."""
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise NlpseqError(f"accelerator={accelerator} but no CUDA GPU is available")
    if accelerator == "mps":
        return torch.device("mps")
    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def write_metrics(run_dir: Path, metrics: dict) -> Path:
    """Write the scalar metrics as one flat JSON object (``metrics.json``)."""
    flat = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}
    path = run_dir / "metrics.json"
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n")
    return path


def write_hypotheses(run_dir: Path, report: dict, prefix: str) -> Path | None:
    """Move a translation report's hypotheses out of it into ``hypotheses.<prefix>.txt``
    (one line per sentence of the split, in its order)."""
    hypotheses = report.pop(f"{prefix}/hypotheses", None)
    if hypotheses is None:
        return None
    path = run_dir / f"hypotheses.{prefix}.txt"
    path.write_text("".join(line + "\n" for line in hypotheses), encoding="utf-8")
    log.info("Hypotheses written to %s", path)
    return path


def check_overrides(config_name: str, argv: list[str]) -> None:
    """Compose the config once before Hydra runs, to turn its multi-line composition
    errors (unknown group choice, unknown key) into one line and exit status 2.

    Skipped when any flag is given (``--help``, ``--cfg``, ``-m``): Hydra handles those.
    """
    if any(arg.startswith("-") for arg in argv):
        return
    overrides = [arg for arg in argv if not arg.lstrip("+~").startswith("hydra")]
    try:
        with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
            compose(config_name, overrides=overrides)
    except MissingConfigException as err:
        print(f"error: {_missing_choice_message(err, overrides)}", file=sys.stderr)
        sys.exit(2)
    except (ConfigCompositionException, OverrideParseException) as err:
        print(f"error: {_composition_message(err, config_name, overrides)}", file=sys.stderr)
        sys.exit(2)


def _missing_choice_message(err: MissingConfigException, overrides: list[str]) -> str:
    group = (err.missing_cfg_file or "").rsplit("/", 1)[0]
    wanted = next((o.split("=", 1)[1] for o in overrides
                   if o.lstrip("+~").split("=", 1)[0] == group), err.missing_cfg_file)
    if err.options:
        return f"Unknown choice {group}={wanted}; choose one of {', '.join(err.options)}"
    return str(err).strip().splitlines()[0]


def _composition_message(err: Exception, config_name: str, overrides: list[str]) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    match = re.match(r"Could not override '([^']+)'", first)
    if not match:
        return first
    key = match.group(1)
    parent, _, leaf = key.rpartition(".")
    others = [o for o in overrides if o.split("=", 1)[0] != key]
    choices = [o for o in others if "." not in o.split("=", 1)[0]]  # group choices only
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        try:
            cfg = compose(config_name, overrides=others)
        except (ConfigCompositionException, OverrideParseException, MissingConfigException):
            cfg = compose(config_name, overrides=choices)  # another key is unknown too
    node = OmegaConf.select(cfg, parent) if parent else cfg
    if isinstance(node, DictConfig):
        keys = ", ".join(str(k) for k in node.keys() if not str(k).startswith("_"))
        hint = ""
        if config_name == "eval" and parent == "data":
            hint = f" (the task's other data options are added with +{key}=...)"
        return f"Unknown key '{key}'; {parent or 'the config'} has: {keys}{hint}"
    return f"Unknown key '{key}' ({parent} is not a group of keys)"


def class_of(node: DictConfig):
    """The class a config node's ``_target_`` names, or None when it names none (the config
    validation reports a bad ``_target_`` with its key)."""
    try:
        return get_class(node._target_)
    except Exception:
        return None


def check_data_fits_task(data_cfg: DictConfig, task_name: str, action: str) -> None:
    """Refuse data made for another task (``data=sst2`` for a language model)."""
    data_task = getattr(class_of(data_cfg), "task_name", None)
    if data_task and data_task != task_name:
        raise NlpseqError(
            f"data={data_cfg.get('name', 'this')} is a {data_task} dataset and cannot "
            f"{action}; pick a {task_name} dataset, data=sample or data=files"
        )
