"""Training CoMotion (paper section 4): datasets, matching, losses, the three stages, the loop.

``comotion train CONFIG`` runs one process; ``torchrun --nproc_per_node N -m comotion.train
CONFIG`` runs N data-parallel processes.  See docs/training.md.
"""

from comotion.train.config import DataSource, TrainConfig, load_config
from comotion.train.data import Sample, collate, crop_sample
from comotion.train.loop import train
from comotion.train.matching import Matching, match_candidates
from comotion.train.stages import (
    DetectionObjective,
    KeypointHeatmapHead,
    ObjectiveConfig,
    UpdateObjective,
)

__all__ = [
    "DataSource",
    "DetectionObjective",
    "KeypointHeatmapHead",
    "Matching",
    "ObjectiveConfig",
    "Sample",
    "TrainConfig",
    "UpdateObjective",
    "collate",
    "crop_sample",
    "load_config",
    "match_candidates",
    "train",
]
