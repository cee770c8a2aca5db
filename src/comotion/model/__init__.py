"""The CoMotion network: image preparation, encoder, detection head, pose-update module, loading."""

from comotion.model.comotion import CoMotion, Detections, FrameFeatures, PreparedFrame, UpdatedTracks
from comotion.model.config import DetectionConfig, EncoderConfig, ModelConfig, UpdateConfig, get_preset, with_fixes

__all__ = [
    "CoMotion",
    "DetectionConfig",
    "Detections",
    "EncoderConfig",
    "FrameFeatures",
    "ModelConfig",
    "PreparedFrame",
    "UpdateConfig",
    "UpdatedTracks",
    "get_preset",
    "with_fixes",
]
