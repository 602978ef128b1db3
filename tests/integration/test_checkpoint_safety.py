"""Loading a checkpoint never calls what its stored config names unless nlpseq's conf/ builds
it (or the command's allowed_targets admits it), and a checkpoint of the wrong shape is
refused with one line: through the real nlpseq-eval, -predict, -inspect and -train."""

import copy
from pathlib import Path

import pytest
import torch

from tests.integration.conftest import error_line, run_cli_cases

REFUSED = "refuses to load: 'shutil.copyfile' is not an nlpseq component"


def copy_file(source, sentinel, **more) -> dict:
    """A node whose target, if ever called, copies ``source`` to ``sentinel``."""
    return {"_target_": "shutil.copyfile", "src": str(source), "dst": str(sentinel), **more}


def crafted(trained_run, path, edit):
    """The trained run's best checkpoint, changed by ``edit(checkpoint)``, saved at path."""
    checkpoint = torch.load(trained_run / "checkpoints" / "best.ckpt", weights_only=True)
    edit(checkpoint)
    torch.save(checkpoint, path)
    return path


def set_config(*keys, value):
    """An edit that puts ``value`` at nlpseq.config.<keys...>."""
    def edit(checkpoint):
        node = checkpoint["nlpseq"]["config"]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = copy.deepcopy(value)
    return edit


def foreign_configs(source, sentinel) -> dict[str, object]:
    """A foreign target at each place of a stored config (name -> edit). Unchecked,
    nlpseq-eval calls the ones inside what it rebuilds (model, optimizer, scheduler, data:
    the sentinel appears), fails with a traceback on a task target, and loads the rest
    without a word."""
    target = copy_file(source, sentinel)
    warmup = {"_target_": "nlpseq.tasks.schedules.warmup_cosine", "_partial_": True}
    return {
        "task": set_config("task", "_target_", value="shutil.copyfile"),
        "task argument in a list": set_config("task", "extra", value=[1, target]),
        "encoder": set_config("encoder", value=target),
        "decoder": set_config("task", "decoder", value=target),
        "optimizer": set_config("optimizer", value=target),
        "scheduler": set_config("scheduler", value=target),
        "scheduler _partial_": set_config("scheduler", value={**target, "_partial_": True}),
        "nested _args_": set_config("scheduler", value={**warmup, "_args_": [target]}),
        "argument of a partial": set_config("scheduler", value={**warmup, "warmup_steps": target}),
        "callbacks": set_config("callbacks", "early_stopping", value=target),
        "data": set_config("data", "text_column", value=target),
        "logger": set_config("logger", value={"csv": target}),
        "a key nlpseq does not have": set_config("extra", value=target),
    }


def drop(*keys):
    def edit(checkpoint):
        node = checkpoint
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
    return edit


def put(*keys, value):
    def edit(checkpoint):
        node = checkpoint
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    return edit


class Touch:
    """Pickled, an instruction to create ``path`` when the file is unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return Path.touch, (Path(self.path),)


def shrink_weight(checkpoint):
    weights = checkpoint["state_dict"]
    name = next(key for key in weights if key.endswith("embedding.weight"))
    weights[name] = weights[name][:-1]


MALFORMED = {  # edit -> the end of the line the user gets after "error: <ckpt>: "
    "section a string": (put("nlpseq", value="sentiment"),
                         "malformed checkpoint: its 'nlpseq' section is a str, not a dict"),
    "config missing": (drop("nlpseq", "config"), "malformed checkpoint: nlpseq.config is missing"),
    "config a string": (put("nlpseq", "config", value="task: sentiment"),
                        "malformed checkpoint: nlpseq.config should be the run's config (a "
                        "dict), got str 'task: sentiment'"),
    "task name a number": (put("nlpseq", "task", value=3),
                           "malformed checkpoint: nlpseq.task should be a task name, got int 3"),
    "encoder a string": (put("nlpseq", "config", "encoder", value="lstm"),
                         "malformed checkpoint: nlpseq.config.encoder should be a dict with a "
                         "_target_, got str 'lstm'"),
    "encoder without target": (drop("nlpseq", "config", "encoder", "_target_"),
                               "malformed checkpoint: nlpseq.config.encoder should be a dict "
                               "with a _target_"),
    "config value a tensor": (put("nlpseq", "config", "seed", value=torch.zeros(2)),
                              "malformed checkpoint: config value seed is a Tensor"),
    "tokenizer a number": (put("nlpseq", "tokenizer", value=5),
                           "malformed checkpoint: nlpseq.tokenizer should be a tokenizer state "
                           "(a dict) or None, got int 5"),
    "tokenizer state garbled": (put("nlpseq", "tokenizer", "payload", value=7),
                                "its tokenizer cannot be rebuilt (Tokenizer payload is not a "
                                "valid tokenizer.json"),
    "tokenizer state missing keys": (put("nlpseq", "tokenizer", value={"format": 1}),
                                     "its tokenizer cannot be rebuilt (Tokenizer state lacks"),
    "label names a string": (put("nlpseq", "label_names", value="negative,positive"),
                             "malformed checkpoint: nlpseq.label_names should be a list of "
                             "strings, got str 'negative,positive'"),
    "label names numbers": (put("nlpseq", "label_names", value=[0, 1]),
                            "malformed checkpoint: nlpseq.label_names should be a list of "
                            "strings, got list [0, 1]"),
    "a label more than the head": (put("nlpseq", "label_names", value=["a", "b", "c"]),
                                   "its weights do not fit the model its config describes ("),
    "format from the future": (put("nlpseq", "format_version", value=2),
                               "malformed checkpoint: nlpseq.format_version is 2; this nlpseq "
                               "reads 1"),
    "a wrong encoder argument": (put("nlpseq", "config", "encoder", "hidden_size", value="big"),
                                 "its config does not build a model ("),
    "a task that is not the one named": (
        put("nlpseq", "config", "task", "_target_", value="nlpseq.tasks.GenerationTask"),
        "its config does not build a model ("),
    "weights missing": (drop("state_dict"), "malformed checkpoint: state_dict should map "
                                            "parameter names to tensors, got NoneType None"),
    "a weight missing": (drop("state_dict", "model.embedding.weight"),
                         "its weights do not fit the model its config describes (missing "
                         "model.embedding.weight)"),
    "a weight of another shape": (shrink_weight, "its weights do not fit the model its config "
                                                 "describes (model.embedding.weight has shape"),
}


def command_cases(trained_run, root) -> dict[str, tuple[str, ...]]:
    """Every command of this file (name -> argv), over checkpoints crafted under root."""
    source, cases = trained_run / "metrics.json", {}

    def ckpt(name, edit, folder=None):
        path = (folder or root) / f"{name.replace(' ', '_')}.ckpt"
        path.parent.mkdir(parents=True, exist_ok=True)
        return crafted(trained_run, path, edit)

    for name, edit in foreign_configs(source, root / "sentinel").items():
        cases[f"foreign {name}"] = ("evaluate", f"ckpt_path={ckpt(name, edit)}")
    bad = ckpt("bad", set_config("encoder", value=copy_file(source, root / "sentinel")))
    sweep = root / "sweep"  # ckpt_path=DIR: every run's best.ckpt, the second one crafted
    for name, checkpoint in (("0", trained_run / "checkpoints" / "best.ckpt"), ("1", bad)):
        (sweep / name / "checkpoints").mkdir(parents=True)
        (sweep / name / "checkpoints" / "best.ckpt").write_bytes(checkpoint.read_bytes())
    (root / "resumed" / "checkpoints").mkdir(parents=True)
    (root / "resumed" / "checkpoints" / "last.ckpt").write_bytes(bad.read_bytes())
    cases |= {
        "command eval": ("evaluate", f"ckpt_path={bad}"),
        "command eval DIR": ("evaluate", f"ckpt_path={sweep}", f"hydra.run.dir={root}/sweep_eval"),
        "command predict": ("predict", f"ckpt_path={bad}", "text=a fine film"),
        "command inspect": ("inspect_cells", f"ckpt_path={bad}", "text=a fine film"),
        "command resume": ("train", "resume=true", f"hydra.run.dir={root}/resumed"),
        "command ckpt_path": ("train", f"ckpt_path={bad}", f"hydra.run.dir={root}/continued"),
    }
    for name, value in INTERPOLATIONS.items():
        made = value.format(source=source, sentinel=root / "sentinel")
        path = ckpt(f"interpolation {name}", set_config(*name.split("."), value=made))
        cases[f"interpolation {name}"] = ("evaluate", f"ckpt_path={path}")
    for name, (edit, _) in MALFORMED.items():
        cases[f"malformed {name}"] = ("evaluate", f"ckpt_path={ckpt(name, edit)}")
    cases["malformed predict"] = ("predict", f"ckpt_path={root}/section_a_string.ckpt",
                                  "text=a fine film")
    cases["malformed inspect"] = ("inspect_cells", f"ckpt_path={root}/config_missing.ckpt",
                                  "text=a fine film")
    pickled = ckpt("pickled", put("nlpseq", "label_names", value=Touch(root / "sentinel")))
    cases["pickled object"] = ("predict", f"ckpt_path={pickled}", "text=a fine film")
    (root / "rng" / "checkpoints").mkdir(parents=True)
    ckpt("last", put("nlpseq_rng", "python", value="seed"), root / "rng" / "checkpoints")
    cases["malformed rng"] = ("train", "resume=true", f"hydra.run.dir={root}/rng")
    return cases | opt_in_cases(trained_run, root, ckpt)


def opt_in_cases(trained_run, root, ckpt) -> dict[str, tuple[str, ...]]:
    """A run of one's own: an optimizer conf/ does not name, trusted on the command line."""
    rmsprop = {"_target_": "torch.optim.RMSprop", "_partial_": True, "lr": 0.01}
    own = ckpt("own", set_config("optimizer", value=rmsprop))

    def trusts_itself(checkpoint):
        config = checkpoint["nlpseq"]["config"]
        config["optimizer"] = rmsprop
        config["allowed_targets"] = ["shutil.*", "torch.*"]  # a file trusts nothing
        config["scheduler"] = copy_file(trained_run / "metrics.json", root / "sentinel")

    copies = ckpt("copies", set_config("scheduler", value=copy_file(
        trained_run / "metrics.json", root / "asked_for")))
    return {
        "opt-in not given": ("evaluate", f"ckpt_path={own}"),
        "opt-in by the file": ("evaluate", f"ckpt_path={ckpt('self', trusts_itself)}",
                               "allowed_targets=[torch.optim.RMSprop]"),
        "opt-in everything": ("evaluate", f"ckpt_path={own}", "allowed_targets=[*]"),
        "opt-in a name": ("evaluate", f"ckpt_path={own}", "split=validation",
                          "allowed_targets=[torch.optim.RMSprop]"),
        "opt-in a package": ("predict", f"ckpt_path={own}", "text=a fine film",
                             "allowed_targets=[torch.optim.*]"),
        "opt-in to a copy": ("evaluate", f"ckpt_path={copies}", "allowed_targets=[shutil.*]"),
    }


INTERPOLATIONS = {  # where -> a stored value; resolving the first builds, then calls, copyfile
    "encoder": "${{oc.create:{{_target_: shutil.copyfile, src: '{source}', dst: '{sentinel}'}}}}",
    "data.text_column": "${{oc.env:HOME}}",
}


@pytest.fixture(scope="module")
def outcomes(trained_run, tmp_path_factory):
    """Run every command of this file at once (forks of one process that imported the CLI),
    each in a run directory of its own unless it names one: name -> (argv, result)."""
    root = tmp_path_factory.mktemp("crafted")
    cases = command_cases(trained_run, root)
    argvs = [(*argv, f"hydra.run.dir={root}/runs/{i}")
             if not any(arg.startswith("hydra.run.dir=") for arg in argv) else argv
             for i, argv in enumerate(cases.values())]
    results = run_cli_cases(argvs)
    return root, dict(zip(cases, zip(argvs, results, strict=True), strict=True))


def option(argv, key: str) -> Path:
    return Path(next(arg for arg in argv if arg.startswith(f"{key}=")).split("=", 1)[1])


def ckpt_of(argv) -> str:
    return str(option(argv, "ckpt_path"))


def refused(outcome) -> str:
    """The one error line of a command that exited with status 2 and no traceback."""
    argv, result = outcome
    assert result.returncode == 2, (argv, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, argv
    return error_line(result)


def test_eval_refuses_a_foreign_target_at_every_level(outcomes):
    root, found = outcomes
    names = [name for name in found if name.startswith("foreign ")]
    assert len(names) == 13
    for name in names:
        argv, _ = found[name]
        assert refused(found[name]).startswith(f"error: {ckpt_of(argv)}: {REFUSED} (at "), name
        assert not (option(argv, "hydra.run.dir") / "metrics.json").exists()
    assert not (root / "sentinel").exists()


def test_every_command_that_loads_a_checkpoint_refuses_it(outcomes):
    root, found = outcomes
    for name in [name for name in found if name.startswith("command ")]:
        assert REFUSED in refused(found[name]), name
    assert "/sweep/1/checkpoints/best.ckpt: " in refused(found["command eval DIR"])
    assert not (root / "sweep_eval" / "0").exists()  # refused before the first evaluation
    assert not list(root.glob("continued/checkpoints/*.ckpt"))
    assert not (root / "sentinel").exists()


def test_an_interpolation_in_a_stored_config_is_refused_unresolved(outcomes):
    root, found = outcomes
    for where in INTERPOLATIONS:
        argv, _ = found[f"interpolation {where}"]
        assert refused(found[f"interpolation {where}"]).startswith(
            f"error: {ckpt_of(argv)}: refuses to load: {where} is an interpolation '${{oc.")
    assert not (root / "sentinel").exists()


def test_a_checkpoint_of_the_wrong_shape_is_one_line(outcomes):
    _, found = outcomes
    expected = {name: end for name, (_, end) in MALFORMED.items()}
    expected |= {"predict": expected["section a string"], "inspect": expected["config missing"]}
    for name, end in expected.items():
        argv, _ = found[f"malformed {name}"]
        assert refused(found[f"malformed {name}"]).startswith(f"error: {ckpt_of(argv)}: {end}"), \
            name


def test_a_pickled_object_is_never_unpickled(outcomes):
    root, found = outcomes
    argv, _ = found["pickled object"]
    assert refused(found["pickled object"]) == (
        f"error: '{ckpt_of(argv)}' is not a readable checkpoint (it holds a pickled object "
        "('getattr'); nlpseq reads tensors and plain values only)")
    assert not (root / "sentinel").exists()


def test_resuming_refuses_a_generator_state_of_the_wrong_shape(outcomes):
    root, found = outcomes
    assert refused(found["malformed rng"]).startswith(
        f"error: {root}/rng/checkpoints/last.ckpt: malformed checkpoint: nlpseq_rng is not "
        "the generators' state (")


def test_the_opt_in_is_the_commands_own_never_the_checkpoints(outcomes):
    root, found = outcomes
    argv, _ = found["opt-in not given"]
    assert refused(found["opt-in not given"]) == (
        f"error: {ckpt_of(argv)}: refuses to load: 'torch.optim.RMSprop' is not an nlpseq "
        "component (at optimizer._target_; a run that used components of its own loads with "
        "allowed_targets=[package.*])")
    assert REFUSED in refused(found["opt-in by the file"])
    assert "allowed_targets: '*' is not a dotted name" in refused(found["opt-in everything"])
    assert not (root / "sentinel").exists()
    for name in ("opt-in a name", "opt-in a package", "opt-in to a copy"):
        argv, result = found[name]
        assert result.returncode == 0, (name, result.stderr[-2000:])
    assert '"label": ' in found["opt-in a package"][1].stdout
    assert (root / "asked_for").exists()  # what the user trusts is built as before
