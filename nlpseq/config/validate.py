"""Check a composed config against the code before anything expensive runs.

The schema is the code itself: every node with a ``_target_`` is checked against the
signature of the class or function it names (unknown keys, wrong types, values outside a
``Literal``), and the top-level keys against a dataclass per command. A typo fails in
the first second with a message that names the key and the allowed values.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from typing import Any, Literal, Union

from hydra.utils import get_object
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import InterpolationKeyError

from nlpseq.checks import is_int, is_number
from nlpseq.config.ranges import check_ranges
from nlpseq.config.targets import check_patterns
from nlpseq.errors import NlpseqError


def validate_config(cfg: DictConfig, schema: type | None = None) -> None:
    """Raise NlpseqError on the first unknown key, wrong type or invalid choice, or an
    optimizer or schedule number out of range (``ranges``)."""
    if schema is not None:
        _check_top_level(cfg, schema)
    try:
        for key in cfg:
            if key != "hydra":
                _walk(cfg[key], prefix=f"{key}.")
    except InterpolationKeyError as err:  # ${task.monitor} where the task's config sets none
        message = str(err).strip().splitlines()[0]
        raise NlpseqError(f"{err.full_key}: {message}; set that key in the config or on "
                          "the command line") from None
    check_ranges(cfg)


def _check_top_level(cfg: DictConfig, schema: type) -> None:
    fields = [f.name for f in dataclasses.fields(schema)]
    needed = [f.name for f in dataclasses.fields(schema)
              if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    for key in needed:
        if key not in cfg.keys():  # a value still to give (???) is checked below
            raise NlpseqError(f"The config has no '{key}' (was it removed with ~{key}?); a "
                              f"run needs {', '.join(needed)}")
    hints = typing.get_type_hints(schema)
    for key in cfg:
        if key == "hydra":  # present when tests compose with return_hydra_config=True
            continue
        if key not in fields:
            raise NlpseqError(
                f"Unknown config key '{key}'; top-level keys are: {', '.join(sorted(fields))}"
            )
        if OmegaConf.is_missing(cfg, key):
            raise NlpseqError(f"'{key}' is required: add {key}=... to the command line")
        value = OmegaConf.select(cfg, key)
        if key == "allowed_targets":
            check_patterns(value if isinstance(value, ListConfig) else [value])
        elif not isinstance(value, (DictConfig, ListConfig)):
            _check_value(key, value, hints[key])


def check_options(options: dict, schema: type) -> None:
    """Options given in Python (not through a config file) against the types of ``schema``'s
    fields of the same names: ``batch_size="8"`` fails as ``batch_size=8.5`` would."""
    hints = typing.get_type_hints(schema)
    for key, value in options.items():
        if key in hints and value is not None:
            _check_value(key, value, hints[key])


def _walk(node: Any, prefix: str) -> None:
    if isinstance(node, DictConfig):
        if "_target_" in node:
            _check_target(node, prefix)
        for key in node:
            value = OmegaConf.select(node, str(key), throw_on_missing=False)
            _walk(value, f"{prefix}{key}.")
    elif isinstance(node, ListConfig):
        for i, item in enumerate(node):
            _walk(item, f"{prefix}{i}.")


def _check_target(node: DictConfig, prefix: str) -> None:
    target = node["_target_"]
    where = prefix.rstrip(".") or "config"
    try:
        obj = get_object(target)
    except Exception:
        raise NlpseqError(f"{where}._target_: cannot import '{target}' (is its package "
                          "installed, or on PYTHONPATH?)") from None
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return
    params = signature.parameters
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in params.values())
    hints = _type_hints(obj)
    allowed = [name for name, p in params.items()
               if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)]
    for key in node:
        key = str(key)
        if key.startswith("_"):
            continue
        if key not in params:
            if takes_kwargs:
                continue
            raise NlpseqError(
                f"Unknown key '{prefix}{key}' for {target}; valid keys: {', '.join(allowed)}"
            )
        if OmegaConf.is_missing(node, key):  # ??? in a config file: the user must give it
            raise NlpseqError(f"'{prefix}{key}' is required: add {prefix}{key}=... to the "
                              "command line")
        value = OmegaConf.select(node, key, throw_on_missing=False)
        if isinstance(value, (DictConfig, ListConfig)) or key not in hints:
            continue
        _check_value(f"{prefix}{key}", value, hints[key])


def _type_hints(obj: Any) -> dict[str, Any]:
    function = obj.__init__ if inspect.isclass(obj) else obj
    try:
        return typing.get_type_hints(function)
    except Exception:
        return {}


def _check_value(key: str, value: Any, hint: Any) -> None:
    if _accepts(value, hint) is False:
        raise NlpseqError(f"{key}={value!r} is not valid: expected {_describe(hint)}")


def _accepts(value: Any, hint: Any) -> bool | None:
    """True/False when the hint decides; None when it is too complex to check here."""
    if hint is Any:
        return True
    if hint is type(None) or hint is None:
        return value is None
    origin = typing.get_origin(hint)
    if origin is Literal:
        return value in typing.get_args(hint)
    if origin in (Union, types.UnionType):
        verdicts = [_accepts(value, arg) for arg in typing.get_args(hint)]
        if True in verdicts:
            return True
        return None if None in verdicts else False
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value)
    if hint is float:
        return is_number(value)
    if hint is str:
        return isinstance(value, str)
    return None


def _describe(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(repr(c) for c in typing.get_args(hint))
    if typing.get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    return "None" if hint is type(None) else getattr(hint, "__name__", str(hint))
