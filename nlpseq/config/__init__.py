"""Config checks that run before any work: top-level schemas and target signatures."""

from nlpseq.config.schema import EvalConfig, PredictConfig, TrainConfig
from nlpseq.config.validate import validate_config

__all__ = ["EvalConfig", "PredictConfig", "TrainConfig", "validate_config"]
