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
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from nlpseq.config.folder import config_dir
from nlpseq.errors import NlpseqError

log = logging.getLogger("nlpseq")


CONFIG_DIR = config_dir()


def run_command(command: Callable[[DictConfig], object], cfg: DictConfig) -> object:
    """Run ``command``; a user error becomes one line on stderr and exit status 2."""
    flush_denormals()
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


def flush_denormals() -> None:
    """Flush denormal floats to zero: after a few optimizer steps, one-step recurrent
    kernels (a translation decoder with input feeding) met enough of them to run 25x
    slower on a CPU (9.5 s against 0.36 s per batch, 2-core CPU, GRU 512)."""
    torch.set_flush_denormal(True)


def describe_failure(err: BaseException) -> str:
    """One line for a failure: a user error's message, else the exception's type and text."""
    cause = user_error(err)
    if cause is not None:
        return str(cause)
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


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

    With ``-m`` (a sweep) each swept key is checked with its first value. Skipped when any
    other flag is given (``--help``, ``--cfg``): Hydra handles those.
    """
    flags = {arg for arg in argv if arg.startswith("-")}
    if flags - {"-m", "--multirun"}:
        return
    overrides = [arg for arg in argv if not arg.startswith("-")  # hydra.* is Hydra's own,
                 and (not arg.lstrip("+~").startswith("hydra")  # but the search path adds
                      or arg.startswith("hydra.searchpath="))]  # configs users compose
    try:
        if flags:
            overrides = first_of_each_sweep(overrides)
        with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
        unknown = unknown_sweep_parameter(cfg)
        if unknown:
            print(f"error: {unknown}", file=sys.stderr)
            sys.exit(2)
        make_study_folder(cfg)
    except MissingConfigException as err:
        print(f"error: {_missing_choice_message(err, overrides)}", file=sys.stderr)
        sys.exit(2)
    except (ConfigCompositionException, OverrideParseException) as err:
        print(f"error: {_composition_message(err, config_name, overrides)}", file=sys.stderr)
        sys.exit(2)


def first_of_each_sweep(overrides: list[str]) -> list[str]:
    """``encoder=rnn,lstm seed=range(1,4) optimizer.lr=interval(1e-4,1e-2)`` ->
    ``encoder=rnn seed=1 optimizer.lr=0.0001``: one job's overrides, to check the keys."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    single = []
    for text, override in zip(overrides, parsed, strict=True):
        if not override.is_sweep_override():
            single.append(text)
        elif override.is_discrete_sweep():
            first = next(override.sweep_string_iterator(), None)
            if first is not None:
                single.append(f"{override.get_key_element()}={first}")
        else:  # an interval: its lower end
            single.append(f"{override.get_key_element()}={override.value().start}")
    return single


def unknown_sweep_parameter(cfg: DictConfig) -> str | None:
    """The first key of an Optuna search space (``hydra.sweeper.params``) that is neither a
    config group nor a key of the config, described with the keys its parent has."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    groups = {path.name for path in Path(CONFIG_DIR).iterdir() if path.is_dir()}
    for key in params:
        if key in groups or OmegaConf.select(cfg, key, default=_ABSENT,
                                             throw_on_resolution_failure=False) is not _ABSENT:
            continue
        parent, _, _ = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        found = (", ".join(str(k) for k in node if not str(k).startswith("_"))
                 if isinstance(node, DictConfig) else f"{parent} is not a group of keys")
        return (f"Unknown sweep parameter '{key}' in hydra.sweeper.params; "
                f"{parent or 'the config'} has: {found}")
    return None


_ABSENT = object()


def make_study_folder(cfg: DictConfig) -> None:
    """SQLite does not create folders: make the one an Optuna study file goes in."""
    storage = str(OmegaConf.select(cfg, "hydra.sweeper.storage", default="") or "")
    if storage.startswith("sqlite:///"):
        Path(storage.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _missing_choice_message(err: MissingConfigException, overrides: list[str]) -> str:
    group = (err.missing_cfg_file or "").rsplit("/", 1)[0]
    if group.startswith(("hydra/sweeper", "hydra/launcher")):
        return (f"{group}={err.missing_cfg_file.rsplit('/', 1)[-1]} is a Hydra plugin that is "
                "not installed: pip install 'nlpseq[sweep]' (Optuna, joblib) or "
                "'nlpseq[slurm]' (submitit)")
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
            f"{action}; pick a {task_name} dataset" + (
                " (task=probe trains on it)" if data_task == "probe"
                else ": data=adding, copy or first_token" if task_name == "probe"
                else ", data=sample or data=files")
        )
