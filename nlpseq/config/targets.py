"""Which ``_target_`` a config read from a file may name: what nlpseq's own conf/ builds,
and nothing else unless the user says so on the command line.

A checkpoint stores the resolved config of its run, and loading it rebuilds the task by
instantiating targets of that config. The file can say anything, so before anything is
imported or called the whole stored tree is checked, as data: every ``_target_`` at every
depth (in lists, ``_args_`` and partials too) must be one that conf/ names under the same
top-level key (a ``task`` node may build what conf/ builds under ``task``, an ``optimizer``
node one of the torch optimizers conf/optimizer names, ...), or match a pattern of the
command's ``allowed_targets``. A stored config was resolved when it was saved, so a
``${...}`` left in it is refused as well: loading resolves nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from functools import cache
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf

from nlpseq.config.folder import config_dir
from nlpseq.errors import NlpseqError

PATTERN = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(\.\*)?")  # mypkg.MyTask or mypkg.*
OPT_IN = "a run that used components of its own loads with allowed_targets=[package.*]"


@cache
def conf_targets() -> dict[str, frozenset[str]]:
    """Every ``_target_`` that nlpseq's conf/ names, by the top-level config key it sits
    under (``task``, ``encoder``, ``optimizer``, ...). Hydra's own settings (conf/hydra and
    ``hydra:`` sections: launchers, sweep callbacks) are left out: a run's stored config
    never holds them."""
    conf = Path(config_dir())
    found: dict[str, set[str]] = {}
    for path in sorted(conf.rglob("*.yaml")):
        folder = path.relative_to(conf).parts[:-1]
        if folder[:1] == ("hydra",):
            continue
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        for group, node in _placed(content, _package(path, folder)):
            if group not in ("hydra", "defaults"):
                found.setdefault(group, set()).update(targets_in(node))
    return {group: frozenset(targets) for group, targets in found.items() if targets}


def _package(path: Path, folder: tuple[str, ...]) -> str:
    """Where Hydra places a config file's content, as a dotted path ("" for the root):
    its ``# @package`` header, else the folder it is in."""
    group = ".".join(folder)
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        match = re.match(r"#\s*@package\s+(\S+)", line)
        if match:
            package = match.group(1)
            for alias, meaning in (("_global_", ""), ("_group_", group)):
                if package == alias or package.startswith(alias + "."):
                    package = (meaning + package[len(alias):]).strip(".")
            return package
    return group


def _placed(content, package: str) -> Iterator[tuple[str, object]]:
    """``(top-level key, subtree)`` for the content of a file placed at ``package``."""
    if package:
        yield package.split(".")[0], content
    elif isinstance(content, dict):
        yield from ((str(key), node) for key, node in content.items())


def targets_in(tree) -> set[str]:
    """Every string ``_target_`` in a plain or OmegaConf tree, at any depth."""
    if isinstance(tree, DictConfig):
        tree = OmegaConf.to_container(tree, resolve=False)
    return {node["_target_"] for node, _ in _nodes(tree, "")
            if isinstance(node, dict) and isinstance(node.get("_target_"), str)}


def _nodes(tree, where: str) -> Iterator[tuple[object, str]]:
    """Every node of a plain tree with its dotted location, parents first (no recursion:
    a deeply nested file cannot exhaust the stack)."""
    stack = [(tree, where)]
    while stack:
        node, where = stack.pop()
        yield node, where
        if isinstance(node, dict):
            children = [(value, f"{where}.{key}") for key, value in node.items()]
        elif isinstance(node, (list, tuple)):
            children = [(value, f"{where}.{i}") for i, value in enumerate(node)]
        else:
            continue
        stack.extend(reversed(children))


def check_patterns(patterns: Iterable) -> tuple[str, ...]:
    """The ``allowed_targets`` patterns, each a dotted name or ``package.*``."""
    checked = []
    for pattern in patterns:
        if not isinstance(pattern, str) or not PATTERN.fullmatch(pattern):
            raise NlpseqError(f"allowed_targets: {pattern!r} is not a dotted name "
                              "(mypkg.MyTask) or a package pattern (mypkg.*)")
        checked.append(pattern)
    return tuple(checked)


def allowed_targets(cfg) -> tuple[str, ...]:
    """A command's ``allowed_targets``: what its user trusts beyond nlpseq's own conf/."""
    patterns = cfg.get("allowed_targets") or ()
    return check_patterns([patterns] if isinstance(patterns, str) else patterns)


def run_targets(cfg) -> tuple[str, ...]:
    """What a training run admits in the checkpoints it reads (the one it resumes, its own
    best): its ``allowed_targets`` and every target its own config names, which the user
    runs anyway by training with it."""
    return (*allowed_targets(cfg), *sorted(targets_in(cfg)))


def matches(target: str, patterns: Sequence[str]) -> bool:
    """Whether the user trusts ``target``: it is one of ``patterns`` or in a ``pkg.*``."""
    return any(target == pattern or (pattern.endswith(".*") and target.startswith(pattern[:-1]))
               for pattern in patterns)


def check_stored_config(config: dict, source: str, trusted: Sequence[str] = ()) -> None:
    """Refuse a stored config (read by ``torch.load(weights_only=True)``: plain values) that
    names a target conf/ does not build at that place and ``trusted`` does not match, holds
    an interpolation, or holds something other than plain values. Nothing is imported."""
    admitted = conf_targets()
    for group, subtree in config.items():
        allowed = admitted.get(str(group), frozenset())
        for node, where in _nodes(subtree, str(group)):
            if isinstance(node, dict):
                _check_target(node, where, allowed, trusted, source)
            elif isinstance(node, str) and "${" in node:
                shown = node if len(node) <= 80 else node[:77] + "..."
                raise NlpseqError(f"{source}: refuses to load: {where} is an interpolation "
                                  f"'{shown}'; a saved config holds resolved values only")
            elif not (node is None or isinstance(node, (bool, int, float, str, list, tuple))):
                raise NlpseqError(f"{source}: malformed checkpoint: config value {where} is a "
                                  f"{type(node).__name__}; a saved config holds plain values")


def _check_target(node: dict, where: str, allowed: frozenset[str], trusted: Sequence[str],
                  source: str) -> None:
    for key in node:
        if not isinstance(key, (str, int)) or isinstance(key, bool):
            raise NlpseqError(f"{source}: malformed checkpoint: config key {key!r} in {where} "
                              "is not a string")
    if "_target_" not in node:
        return
    target = node["_target_"]
    if isinstance(target, str) and (target in allowed or matches(target, trusted)):
        return
    shown = f"'{target}'" if isinstance(target, str) else repr(target)
    raise NlpseqError(f"{source}: refuses to load: {shown} is not an nlpseq component "
                      f"(at {where}._target_; {OPT_IN})")
