"""Evaluation: box tracking (PoseTrack21 protocol with the ignore-region fix, plain MOT with HOTA)
and pose accuracy (PCKn, MPJPE, PA-MPJPE, 3D-PCK) -- see docs/evaluation.md.

Entry points::

    from comotion.eval import evaluate_tracking, evaluate_pose
    report = evaluate_tracking("PoseTrack21/", "out/mot/", protocol="posetrack21")
    report.overall["mota"], report.per_sequence["000342_mpii_test"]["idf1"]
"""

from __future__ import annotations

from comotion.eval.pose import evaluate_pose, evaluate_pose_sequence
from comotion.eval.tracking import (
    PROTOCOLS,
    TrackingReport,
    evaluate_sequence,
    evaluate_tracking,
)

__all__ = ["PROTOCOLS", "TrackingReport", "evaluate_pose", "evaluate_pose_sequence", "evaluate_sequence", "evaluate_tracking"]
