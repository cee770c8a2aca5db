"""Online tracking (detect, update, match, start and end tracks) and the offline cleanup."""

from comotion.tracking.cleanup import CleanupConfig, CleanupResult, cleanup_results, cleanup_tracks, format_mot_rows
from comotion.tracking.config import TrackerConfig
from comotion.tracking.shots import ShotDetector
from comotion.tracking.state import TrackState
from comotion.tracking.tracker import FrameResult, Tracker, TrackingEngine

__all__ = [
    "CleanupConfig",
    "CleanupResult",
    "FrameResult",
    "ShotDetector",
    "TrackState",
    "Tracker",
    "TrackerConfig",
    "TrackingEngine",
    "cleanup_results",
    "cleanup_tracks",
    "format_mot_rows",
]
