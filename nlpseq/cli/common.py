"""What the three entry points share: the config folder, error handling, devices, output."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import OverrideType
from hydra.errors import (
    ConfigCompositionException,
    InstantiationException,
    MissingConfigException,
    OverrideParseException,
)
from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from nlpseq.cli.rundir import (
    KeptConfigRecord,
    RunLock,
    make_writable_dir,
    pinned_argv,
    planned_dir,
    refuse_finished_run,
    secondary_rank,
)
from nlpseq.cli.stopping import RunStopped, sigterm_stops_run
from nlpseq.config.folder import config_dir
from nlpseq.errors import NlpseqError

if TYPE_CHECKING:
    import torch

log = logging.getLogger("nlpseq")


CONFIG_DIR = config_dir()


def run_command(command: Callable[[DictConfig], object], cfg: DictConfig) -> object:
    """Run ``command``; a user error becomes one line on stderr and exit status 2."""
    flush_denormals()
    try:
        return command(cfg)
    except (NlpseqError, InstantiationException, MemoryError, RuntimeError) as err:
        cause = user_error(err)
        if cause is None:
            raise
        log.debug("user error", exc_info=True)
        print(f"error: {cause}", file=sys.stderr)
        sys.exit(2)


def run_entry_point(config_name: str, hydra_main: Callable[[], object], job_name: str,
                    lock: bool = True) -> None:
    """What every console entry point does: one-line errors for bad overrides; the run
    directory pinned, checked and (``lock``) locked before Hydra writes anything in it
    (``nlpseq.cli.rundir``); then Hydra. A run stopped by SIGTERM or Ctrl-C ends with one
    line and exit status 143 or 130."""
    try:
        with checked_run(config_name, sys.argv[1:], job_name, lock) as argv:
            sys.argv[1:] = argv
            with sigterm_stops_run():
                hydra_main()
    except NlpseqError as err:  # the command line's and the run directory's checks
                                # (run_command handles the rest)
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except RunStopped as stop:
        print(f"error: {stop}", file=sys.stderr)
        sys.exit(stop.status)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(130)


@contextmanager
def checked_run(config_name: str, argv: list[str], job_name: str, lock: bool):
    """The overrides checked (``check_overrides``: NlpseqError on a bad one), then the run
    directory pinned, checked and (``lock``) locked until the block ends; yields the argv
    to hand to Hydra. Shared by the console commands and the Python API."""
    cfg = check_overrides(config_name, argv, job_name)
    held = kept = None
    if cfg is not None and not secondary_rank():
        argv, held, kept = prepare_run_dir(config_name, cfg, argv, lock)
    try:
        yield argv
    except BaseException as err:  # a continued run that fails leaves its record as it was
        if kept is not None and not (isinstance(err, SystemExit) and not err.code):
            kept.restore()
        raise
    finally:
        if held is not None:
            held.release()


def prepare_run_dir(config_name: str, cfg: DictConfig, argv: list[str], lock: bool
                    ) -> tuple[list[str], RunLock | None, KeptConfigRecord | None]:
    """Pin the run directory in ``argv`` and check it (see ``nlpseq.cli.rundir``); returns
    the argv to hand to Hydra, the lock taken and, for a run continued in place, its
    ``.hydra/`` record as it was."""
    multirun = bool({"-m", "--multirun"} & set(argv)) or str(  # hparams_search sets the mode
        OmegaConf.select(cfg, "hydra.mode", default="")).endswith("MULTIRUN")
    planned = planned_dir(cfg, multirun)
    if planned is None:
        return argv, None, None
    key, directory = planned
    make_writable_dir(directory, key)
    held = RunLock(directory, key, config_name) if lock else None
    if held is not None:
        held.acquire()
    continued = config_name == "train" and continues_run(cfg, directory, multirun)
    try:
        if not continued:
            refuse_finished_run(directory, key, resume_hint=config_name == "train")
        kept = KeptConfigRecord(directory) if continued else None
    except (NlpseqError, OSError):
        if held is not None:
            held.release()
        raise
    return pinned_argv(argv, cfg, key, directory), held, kept


def continues_run(cfg: DictConfig, directory: Path, multirun: bool) -> bool:
    """``resume=true``, or ``ckpt_path`` inside this run directory: the training run goes on
    in place and may write over its own checkpoints."""
    if cfg.get("resume"):
        return True
    ckpt = cfg.get("ckpt_path")
    if not ckpt or multirun:
        return False
    path = Path(str(ckpt)).expanduser().resolve()
    return directory.resolve() in (path, *path.parents[1:2])


def flush_denormals() -> None:
    """Flush denormal floats to zero: after a few optimizer steps, one-step recurrent
    kernels (a translation decoder with input feeding) met enough of them to run 25x
    slower on a CPU (9.5 s against 0.36 s per batch, 2-core CPU, GRU 512)."""
    import torch  # here, not above: the entry points answer --help without it

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
    ``hydra.utils.instantiate`` raised (Hydra wraps it in an InstantiationException); a
    model or batch too large for the memory becomes one too."""
    while err is not None and not isinstance(err, NlpseqError):
        if out_of_memory(err):
            return NlpseqError(f"out of memory ({hydra_message(err)}); make the model or the "
                               "batch smaller (encoder.hidden_size, task.embedding_dim, "
                               "data.batch_size)")
        err = err.__cause__
    return err


def out_of_memory(err: BaseException) -> bool:
    """MemoryError, or torch's allocator failing on the CPU or a GPU."""
    return isinstance(err, MemoryError) or (isinstance(err, RuntimeError) and any(
        words in str(err) for words in ("can't allocate memory", "out of memory")))


def pick_device(accelerator: str) -> torch.device:
    """``auto`` takes a GPU when there is one; ``gpu`` without one is a clear error."""
    import torch

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
    return write_atomic(run_dir / "metrics.json", json.dumps(flat, indent=2, sort_keys=True)
                        + "\n")


def write_atomic(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` whole or not at all: into a temporary file beside it, then
    renamed over it, so a command stopped mid-write leaves the old file, never half of the
    new one. Creates missing folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        temporary.write_text(text, encoding="utf-8")
        if path.exists():
            shutil.copymode(path, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def write_hypotheses(run_dir: Path, report: dict, prefix: str) -> Path | None:
    """Move a translation report's hypotheses out of it into ``hypotheses.<prefix>.txt``
    (one line per sentence of the split, in its order)."""
    hypotheses = report.pop(f"{prefix}/hypotheses", None)
    if hypotheses is None:
        return None
    path = run_dir / f"hypotheses.{prefix}.txt"
    write_atomic(path, "".join(line + "\n" for line in hypotheses))
    log.info("Hypotheses written to %s", path)
    return path


HYDRA_KEYS_KEPT = ("hydra.searchpath=", "hydra.run.dir=", "hydra.sweep.dir=")


def check_overrides(config_name: str, argv: list[str], job_name: str = "app"
                    ) -> DictConfig | None:
    """Compose the config once before Hydra runs, so that a bad override (an unknown group
    choice or key) raises ``NlpseqError`` with one line instead of Hydra's multi-line
    report. Returns the composed config (with Hydra's own, as ``job_name`` will see it).

    With ``-m`` (a sweep) each swept key is checked with its first value, and each other
    value of a swept config group (``encoder=gru,lsmt``) is composed too. Skipped (None)
    when any other flag is given (``--help``, ``--cfg``): Hydra handles those.
    """
    flags = {arg for arg in argv if arg.startswith("-")}
    if flags - {"-m", "--multirun"}:
        return None
    overrides = [arg for arg in argv if not arg.startswith("-")  # hydra.* is Hydra's own,
                 and (not arg.lstrip("+~").startswith("hydra")  # but the search path adds
                      or arg.startswith(HYDRA_KEYS_KEPT))]  # configs users compose, and
    job, cfg = overrides, None                              # the run dir is checked first
    try:
        if not flags:
            sweep = sweep_without_multirun(overrides)
            if sweep:
                raise NlpseqError(sweep)
        for job in first_of_each_sweep(overrides) if flags else [overrides]:
            unknown = unknown_key(config_name, job, job_name)
            if unknown:
                raise NlpseqError(unknown)
            with initialize_config_dir(CONFIG_DIR, version_base="1.3", job_name=job_name):
                composed = compose(config_name, overrides=job, return_hydra_config=True)
            cfg = cfg or composed
        unknown = unknown_sweep_parameter(cfg)
        if unknown:
            raise NlpseqError(unknown)
    except MissingConfigException as err:
        raise NlpseqError(missing_choice_message(err, job)) from None
    except OverrideParseException as err:
        raise NlpseqError(quoting_hint(overrides) or hydra_message(err)) from None
    except ConfigCompositionException as err:
        raise NlpseqError(hydra_message(err)) from None
    return cfg


def hydra_message(err: BaseException) -> str:
    """The first line of Hydra's own message (its text is written for users; no type)."""
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def quote_advice(key: str, value: str) -> str:
    """How to write ``key=value`` so that the shell passes it to Hydra as one quoted string."""
    texts = key.lstrip("+~") in ("text", "prompt")  # what nlpseq-predict also reads on stdin
    stdin = " (nlpseq-predict also reads texts from standard input)" if texts else ""
    if "'" not in value:
        return f"quote the value inside the shell's quotes, '{key}=\"{value}\"'{stdin}"
    if not any(char in value for char in '"$`\\!'):  # ! : bash's history in "..."
        return f"quote the value inside the shell's quotes, \"{key}=\\\"{value}\\\"\"{stdin}"
    if texts:
        return "give the text on standard input instead (one text a line)"
    return "the value holds both kinds of quote: put it in a file and refer to that instead"


def sweep_without_multirun(overrides: list[str]) -> str | None:
    """A comma-separated value without ``-m``: free text to quote, or a sweep that lacks
    its ``-m``."""
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.is_sweep_override():
            key, _, value = override.input_line.partition("=")
            if key.lstrip("+~").split("@")[0] in config_groups():
                return f"'{override.input_line}' is a sweep: add -m to run each choice"
            return (f"'{override.input_line}' reads as a list of values: "
                    f"{quote_advice(key, value)}, or add -m to sweep over the values")
    return None


def quoting_hint(overrides: list[str]) -> str | None:
    """How to pass free text that Hydra's override grammar cannot read as it stands (a
    comma makes a sweep list; quotes, brackets and ``=`` are syntax)."""
    parser = OverridesParser.create()
    for text in overrides:
        try:
            parser.parse_overrides([text])
        except OverrideParseException:
            key, _, value = text.partition("=")
            return f"cannot read '{text}' as key=value: {quote_advice(key, value)}"
    return None


def unknown_key(config_name: str, overrides: list[str], job_name: str) -> str | None:
    """The first ``key=value`` in ``overrides`` whose key the config, composed with the
    overrides' group choices, does not have (Hydra accepts new keys only as ``+key=``),
    described with the keys its parent has; or the first ``+key=value`` whose key it has."""
    choices, keys, added = [], [], []
    for text, override in zip(overrides, OverridesParser.create().parse_overrides(overrides),
                              strict=True):
        name = override.key_or_group.split("@")[0]
        if name in config_groups() or "/" in name or name.startswith("hydra"):
            choices.append(text)
        elif override.type == OverrideType.CHANGE:  # ~key= needs no check
            keys.append(name)
        elif override.type == OverrideType.ADD:
            added.append((name, text))
    if not keys and not added:
        return None
    with initialize_config_dir(CONFIG_DIR, version_base="1.3", job_name=job_name):
        cfg = compose(config_name, overrides=choices)
    for key in keys:
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent, throw_on_resolution_failure=False) if parent else cfg
        if not isinstance(node, DictConfig):
            return f"Unknown key '{key}' ({parent} is not a group of keys)"
        if leaf not in node.keys():
            hint = (f" (the task's other data options are added with +{key}=...)"
                    if config_name == "eval" and parent == "data" else "")
            return (f"Unknown key '{key}'; {parent or 'the config'} has: "
                    f"{keys_of(node) or 'no keys'}{hint}")
    for key, text in added:
        if OmegaConf.select(cfg, key, default=KeyError, throw_on_resolution_failure=False
                            ) is not KeyError:
            return f"'{key}' is already in the config: set it without the '+' ({text[1:]})"
    return None


def config_groups() -> set[str]:
    """The config groups (folders of conf/)."""
    return {path.name for path in Path(CONFIG_DIR).iterdir() if path.is_dir()}


def keys_of(node: DictConfig) -> str:
    return ", ".join(str(key) for key in node if not str(key).startswith("_"))


def first_of_each_sweep(overrides: list[str]) -> list[list[str]]:
    """``encoder=rnn,lstm seed=range(1,4) optimizer.lr=interval(1e-4,1e-2)`` ->
    ``[encoder=rnn seed=1 optimizer.lr=0.0001]``: one job's overrides, to check the keys;
    then one job more for each other value of a swept group (``[encoder=lstm seed=1 ...]``),
    whose config file must exist too."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    groups = config_groups()
    single, others = [], []
    for text, override in zip(overrides, parsed, strict=True):
        key = override.get_key_element()
        if not override.is_sweep_override():
            single.append(text)
        elif override.is_discrete_sweep():
            first, *rest = list(override.sweep_string_iterator()) or [None]
            if first is not None:
                single.append(f"{key}={first}")
            if key.lstrip("+~") in groups:
                others += [(len(single) - 1, f"{key}={value}") for value in rest]
        else:  # an interval: its lower end
            single.append(f"{key}={override.value().start}")
    jobs = [single]
    for position, text in others:
        jobs.append([*single[:position], text, *single[position + 1:]])
    return jobs


def unknown_sweep_parameter(cfg: DictConfig) -> str | None:
    """The first key of an Optuna search space (``hydra.sweeper.params``) that is neither a
    config group nor a key of the config, described with the keys its parent has."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    groups = config_groups()
    for key in params:
        if key in groups or OmegaConf.select(cfg, key, default=_ABSENT,
                                             throw_on_resolution_failure=False) is not _ABSENT:
            continue
        parent, _, _ = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        found = keys_of(node) if isinstance(node, DictConfig) else (
            f"{parent} is not a group of keys")
        return (f"Unknown sweep parameter '{key}' in hydra.sweeper.params; "
                f"{parent or 'the config'} has: {found}")
    return None


_ABSENT = object()


def missing_choice_message(err: MissingConfigException, overrides: list[str]) -> str:
    """An unknown group choice, with the group's options (from the exception's fields)."""
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


def class_of(node: DictConfig):
    """The class a config node's ``_target_`` names, or None when it names none (the config
    validation reports a bad ``_target_`` with its key)."""
    try:
        return get_class(node._target_)
    except Exception:
        return None
