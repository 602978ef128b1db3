"""nlpseq's config resolvers: a line end that follows the tokenizer, and the run directory
of an earlier stage of a recipe (alone: the default; in a sweep: its job of that stage)."""

from types import SimpleNamespace

import pytest
import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

from nlpseq.config.resolvers import line_end_for, stage_run
from nlpseq.errors import NlpseqError


def test_a_character_model_keeps_line_breaks_and_others_end_lines_with_eos():
    assert [line_end_for(m) for m in ("char", "word", "bpe", "")] == [
        "newline", "eos", "eos", "eos"]


def as_job(monkeypatch, sweep_dir, mode, overrides):
    """HydraConfig as a job of a run or a sweep with these overrides sees it."""
    hydra = SimpleNamespace(mode=mode, sweep=SimpleNamespace(dir=str(sweep_dir)),
                            overrides=SimpleNamespace(task=overrides))
    monkeypatch.setattr(HydraConfig, "initialized", staticmethod(lambda: True))
    monkeypatch.setattr(HydraConfig, "get", staticmethod(lambda: hydra))


def test_a_stage_is_the_default_alone_and_the_matching_job_in_a_sweep(monkeypatch, tmp_path):
    for number, seed in enumerate((1, 2)):  # the sweep's language-model jobs, already run
        (tmp_path / str(number) / ".hydra").mkdir(parents=True)
        (tmp_path / str(number) / ".hydra" / "overrides.yaml").write_text(
            yaml.safe_dump(["experiment=lm", f"seed={seed}"]))
    as_job(monkeypatch, tmp_path, RunMode.RUN, ["experiment=clf", "seed=2"])
    assert stage_run("lm", "outputs/lm") == "outputs/lm"
    as_job(monkeypatch, tmp_path, RunMode.MULTIRUN, ["seed=2", "experiment=clf"])
    assert stage_run("lm", "outputs/lm") == str(tmp_path / "1")
    as_job(monkeypatch, tmp_path, RunMode.MULTIRUN, ["experiment=clf", "seed=3"])
    with pytest.raises(NlpseqError, match=r"no job of the sweep in .* ran experiment=lm with "
                                          r"this job's other overrides"):
        stage_run("lm", "outputs/lm")
