"""Pose evaluation: pair predictions with annotated people, then score them.

Two settings (paper section 5, Table 3):

``oracle``
    Each annotated person is paired with the prediction on the same frame whose keypoint box (tight
    box around its 2D keypoints) has the highest IoU with the person's ground-truth box -- the
    detection CoMotion returns for an oracle crop.  Several people may pick the same prediction, as
    crops are independent.  A person with no overlapping prediction is unmatched.

``full``
    Full-image tracking output: on each frame, people and predictions are paired one-to-one by a
    Hungarian assignment on the mean normalised 2D keypoint distance
    ``mean_j |pred_j - gt_j| / max(w, h)`` over the person's valid joints; pairs farther than
    ``max_distance`` (default 0.5 box sizes) stay unmatched.

Metrics are averaged over matched people (per-person means, then the mean over people);
``matched_fraction`` reports how many annotated people were matched.  2D: ``pck@0.05`` and
``pck@0.1`` (PCKn, normaliser ``max(w, h)`` of the ground-truth box).  3D (when the ground truth has
3D joints): ``mpjpe`` and ``pa_mpjpe`` in millimetres (pelvis-centred; Procrustes with scale),
``pck3d@0.1`` (fraction of joints within 0.1 m after pelvis centring).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from comotion.errors import InputError
from comotion.eval import pose_metrics
from comotion.eval.pose_data import (
    PELVIS,
    PoseGroundTruth,
    PosePredictions,
    find_ground_truth,
    find_predictions,
    read_ground_truth,
    read_pose_predictions,
)
from comotion.eval.tracking import box_iou

SETTINGS = ("oracle", "full")
PCK_THRESHOLDS = (0.05, 0.1)
PCK3D_THRESHOLD = 0.1  # metres
FULL_IMAGE_MAX_DISTANCE = 0.5  # mean keypoint distance, in ground-truth box sizes
METRIC_KEYS = ("pck@0.05", "pck@0.1", "mpjpe", "pa_mpjpe", "pck3d@0.1")


@dataclass
class PoseMatches:
    """Ground-truth rows ``gt_rows (K,)`` paired with prediction rows ``pred_rows (K,)``."""

    gt_rows: np.ndarray
    pred_rows: np.ndarray


def _match_by_frame(gt: PoseGroundTruth, pred: PosePredictions, pair) -> PoseMatches:
    """Pairs rows frame by frame: ``pair(g, p)`` gets one frame's ground-truth rows ``g`` and
    (non-empty) prediction rows ``p`` and returns the matched ``(gt rows, prediction rows)``."""
    gt_rows, pred_rows = [], []
    for frame in np.unique(gt.frame_index):
        g = np.nonzero(gt.frame_index == frame)[0]
        p = np.nonzero(pred.frame_index == frame)[0]
        if len(p) == 0:
            continue
        matched_gt, matched_pred = pair(g, p)
        gt_rows.extend(matched_gt.tolist())
        pred_rows.extend(matched_pred.tolist())
    return PoseMatches(np.array(gt_rows, np.int64), np.array(pred_rows, np.int64))


def match_oracle(gt: PoseGroundTruth, pred: PosePredictions) -> PoseMatches:
    """Oracle-crop pairing: per annotated person, the same-frame prediction with the best box IoU."""
    keypoints = pred.keypoints_for(gt.skeleton_2d)
    pred_boxes = pose_metrics.keypoint_box(keypoints, np.ones(keypoints.shape[:2], bool))

    def pair(g: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        iou = box_iou(gt.box[g], pred_boxes[p])
        best = iou.argmax(axis=1)
        has = iou[np.arange(len(g)), best] > 0
        return g[has], p[best[has]]

    return _match_by_frame(gt, pred, pair)


def keypoint_distance_matrix(
    gt_keypoints: np.ndarray, gt_valid: np.ndarray, normaliser: np.ndarray, pred_keypoints: np.ndarray
) -> np.ndarray:
    """Mean normalised keypoint distance ``(N, M)`` between ``N`` people ``(N, J, 2)`` (valid
    ``(N, J)``, normaliser ``(N,)`` pixels) and ``M`` predictions ``(M, J, 2)``; inf without valid joints."""
    distance = np.linalg.norm(gt_keypoints[:, None] - pred_keypoints[None], axis=-1)  # (N, M, J)
    valid = np.asarray(gt_valid, bool)[:, None, :]
    count = valid.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, distance, 0.0).sum(axis=-1) / count / np.asarray(normaliser)[:, None]
    return np.where((count > 0) & np.isfinite(mean), mean, np.inf)


def match_full_image(gt: PoseGroundTruth, pred: PosePredictions, max_distance: float = FULL_IMAGE_MAX_DISTANCE) -> PoseMatches:
    """Full-image pairing: per frame, one-to-one Hungarian assignment on the normalised keypoint distance."""
    pred_keypoints = pred.keypoints_for(gt.skeleton_2d)
    normaliser = pose_metrics.box_normaliser(gt.box)

    def pair(g: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cost = keypoint_distance_matrix(gt.keypoints_2d[g], gt.valid_2d[g], normaliser[g], pred_keypoints[p])
        allowed = cost <= max_distance
        rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e6))
        keep = allowed[rows, cols]
        return g[rows[keep]], p[cols[keep]]

    return _match_by_frame(gt, pred, pair)


@dataclass
class PersonScores:
    """Per matched person ``(K,)`` scores (NaN where not applicable), the number of matched and of
    annotated people."""

    scores: dict[str, np.ndarray]
    num_matched: int
    num_people: int


def score_matches(gt: PoseGroundTruth, pred: PosePredictions, matches: PoseMatches, source: str) -> PersonScores:
    """Per-person metric values of the matched pairs."""
    g, p = matches.gt_rows, matches.pred_rows
    kp2d = pred.keypoints_for(gt.skeleton_2d)[p]
    normaliser = pose_metrics.box_normaliser(gt.box[g])
    scores = {
        f"pck@{t:g}": pose_metrics.pck(kp2d, gt.keypoints_2d[g], gt.valid_2d[g], normaliser, t) for t in PCK_THRESHOLDS
    }
    if gt.keypoints_3d is not None:
        kp3d = pred.keypoints_3d_for(gt.skeleton_3d, source)[p]
        target, valid = gt.keypoints_3d[g], gt.valid_3d[g]
        scores["mpjpe"] = 1000.0 * pose_metrics.mpjpe(kp3d, target, valid, root=PELVIS)
        scores["pa_mpjpe"] = 1000.0 * pose_metrics.pa_mpjpe(kp3d, target, valid)
        scores["pck3d@0.1"] = pose_metrics.pck_3d(kp3d, target, valid, PCK3D_THRESHOLD, root=PELVIS)
    return PersonScores(scores, len(g), len(gt))


def summarize_scores(results: list[PersonScores]) -> dict[str, float | int]:
    """Means over all matched people of the given sequences, and match counts."""
    matched = sum(r.num_matched for r in results)
    people = sum(r.num_people for r in results)
    out: dict[str, float | int] = {}
    for key in METRIC_KEYS:
        values = [r.scores[key] for r in results if key in r.scores]
        if values:
            joined = np.concatenate(values)
            joined = joined[~np.isnan(joined)]
            out[key] = float(joined.mean()) if len(joined) else math.nan
    out["num_people"] = people
    out["num_matched"] = matched
    out["matched_fraction"] = matched / people if people else math.nan
    return out


def evaluate_pose_sequence(
    gt: PoseGroundTruth, pred: PosePredictions, setting: str = "full", source: str = "predictions"
) -> PersonScores:
    """Pair and score one sequence under ``setting`` (``"oracle"`` or ``"full"``)."""
    if setting == "oracle":
        matches = match_oracle(gt, pred)
    elif setting == "full":
        matches = match_full_image(gt, pred)
    else:
        raise InputError(f"unknown setting {setting!r} (choose from {', '.join(SETTINGS)})")
    return score_matches(gt, pred, matches, source)


@dataclass
class PoseReport:
    """``overall`` (all matched people of all sequences) and ``per_sequence`` metric dicts."""

    setting: str
    overall: dict[str, float | int]
    per_sequence: dict[str, dict[str, float | int]]


def evaluate_pose(gt: str | Path, pred: str | Path, fmt: str, setting: str = "full") -> PoseReport:
    """Evaluate predictions against ground truth in format ``fmt`` (``coco``, ``posetrack``, ``3dpw``,
    ``synthetic``).

    Args:
        gt: a ground-truth file / clip folder, or a folder of them (one sequence each).
        pred: for one sequence, a predictions ``.npz`` or results folder; for several, a folder with
            ``<name>.npz`` or ``<name>/`` per sequence.
        setting: ``"oracle"`` or ``"full"``.
    """
    if setting not in SETTINGS:
        raise InputError(f"unknown setting {setting!r} (choose from {', '.join(SETTINGS)})")
    sources = find_ground_truth(gt, fmt)
    pred = Path(pred)
    per_sequence: dict[str, PersonScores] = {}
    for source in sources:
        truth = read_ground_truth(source, fmt)
        pred_path = find_predictions(pred, truth.name, single=len(sources) == 1)
        per_sequence[truth.name] = evaluate_pose_sequence(truth, read_pose_predictions(pred_path), setting, str(pred_path))
    return PoseReport(
        setting,
        summarize_scores(list(per_sequence.values())),
        {name: summarize_scores([scores]) for name, scores in per_sequence.items()},
    )
