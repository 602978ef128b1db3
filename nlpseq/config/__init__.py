"""Config checks that run before any work: top-level schemas and target signatures."""

from nlpseq.config import resolvers  # noqa: F401  (registers nlpseq.line_end, nlpseq.stage)
from nlpseq.config.schema import (
    EvalConfig,
    ExportConfig,
    InspectConfig,
    PredictConfig,
    ServeConfig,
    TrainConfig,
)
from nlpseq.config.validate import validate_config

__all__ = ["EvalConfig", "ExportConfig", "InspectConfig", "PredictConfig", "ServeConfig",
           "TrainConfig", "validate_config"]
