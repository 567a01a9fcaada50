"""Training: the engine, the objectives, the data and the teacher-embedding cache."""

from acula_pipeline.training.engine import TrainCfg, Trainer
from acula_pipeline.training.objectives import AlignObjective, align_step, pretrain_step

__all__ = ["AlignObjective", "TrainCfg", "Trainer", "align_step", "pretrain_step"]
