"""Training engine, objectives and the pretrain / align stages (no Kedro here)."""

from acula_pipeline.training.engine import TrainCfg, Trainer
from acula_pipeline.training.objectives import AlignObjective, PretrainObjective

__all__ = ["AlignObjective", "PretrainObjective", "TrainCfg", "Trainer"]
