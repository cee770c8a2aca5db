"""Getting frames in and results out: frame sources, the results file, exports and overlays.

* :func:`open_source` -> an iterable of :class:`Frame` ``(index, image (3, H, W) uint8, K (2, 3))``
* :class:`TrackWriter` / :func:`load_tracks`: the streamed per-frame, per-track results folder
* :func:`export_outputs`: MOT text, PoseTrack JSON, AMASS npz and BVH from loaded results

File layouts and units are documented in docs/outputs.md.
"""

from comotion.io.export import export_outputs
from comotion.io.results import TrackResults, TrackWriter, load_tracks
from comotion.io.sources import Frame, FrameSource, Intrinsics, SourceInfo, open_source

__all__ = [
    "Frame",
    "FrameSource",
    "Intrinsics",
    "SourceInfo",
    "TrackResults",
    "TrackWriter",
    "export_outputs",
    "load_tracks",
    "open_source",
]
