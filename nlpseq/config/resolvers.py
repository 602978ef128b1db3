"""The config resolvers nlpseq adds to OmegaConf's: values that follow another choice.

``${nlpseq.line_end:${oc.select:tokenizer.model,''}}`` in conf/data/base/generation.yaml:
a character-level language model reads its text exactly as written, line breaks and blank
lines included (``newline``); a word or subword model reads one sentence a line, each
ended by ``<eos>`` (``eos``). Stored configs are saved resolved, so a checkpoint keeps the
value its run used.

``${nlpseq.stage:sst2_lm,outputs/sst2_lm}`` in conf/experiment/sst2_transfer.yaml: the run
directory of an earlier stage of a recipe. One run reads the default; a job of a sweep
(``nlpseq-train -m experiment=sst2_lm,sst2_transfer seed=1,2,3``) reads the job of the same
sweep that ran ``experiment=sst2_lm`` with its other overrides (the same seed, ...), which
Hydra's launcher ran before it.
"""

from pathlib import Path

from omegaconf import OmegaConf

from nlpseq.errors import NlpseqError


def line_end_for(tokenizer_model: str) -> str:
    """``newline`` for a character tokenizer, ``eos`` for any other."""
    return "newline" if tokenizer_model == "char" else "eos"


def stage_run(experiment: str, default: str) -> str:
    """``default`` outside a sweep; in a sweep, the run directory of this sweep's job whose
    overrides are this job's with ``experiment=<experiment>``."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    if hydra is None or hydra.mode != RunMode.MULTIRUN:
        return default
    wanted = sorted([*(o for o in hydra.overrides.task if not o.startswith("experiment=")),
                     f"experiment={experiment}"])
    for overrides in sorted(Path(hydra.sweep.dir).glob("*/.hydra/overrides.yaml")):
        if sorted(OmegaConf.to_container(OmegaConf.load(overrides))) == wanted:
            return str(overrides.parent.parent)
    raise NlpseqError(f"no job of the sweep in {hydra.sweep.dir} ran experiment={experiment} "
                      "with this job's other overrides: sweep both stages, earlier first "
                      f"(-m experiment={experiment},...)")


for name, resolver in (("nlpseq.line_end", line_end_for), ("nlpseq.stage", stage_run)):
    if not OmegaConf.has_resolver(name):
        OmegaConf.register_new_resolver(name, resolver)
