"""Pose accuracy metrics: PCK (2D), MPJPE, PA-MPJPE and 3D-PCK.

All functions take batches of people: arrays ``(B, J, D)`` with a boolean ``valid (B, J)`` mask of the
ground-truth joints that count, and return per-person values ``(B,)`` (NaN for a person without any
valid joint) so that callers can average over people, frames or sequences as they need.

PCK normaliser (PCKn): a 2D keypoint is correct when its distance to the ground truth is at most
``threshold * max(w, h)`` of the person's ground-truth box, the scale used by the HMR2.0 /
4D Humans evaluation that the paper's Table 3 follows (their crops are squares of the box's longer
side; errors are measured in crop units).  ``PCKn@0.05`` therefore allows 5 % of the box's longer side.
"""

from __future__ import annotations

import numpy as np


def _per_person_mean(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Mean of ``values (B, J)`` over the valid joints of each person, NaN without valid joints."""
    valid = np.asarray(valid, bool)
    count = valid.sum(axis=-1)
    total = np.where(valid, values, 0.0).sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def box_normaliser(boxes: np.ndarray) -> np.ndarray:
    """PCKn scale ``max(w, h)`` ``(B,)`` of ground-truth boxes ``(B, 4)`` ``[x1, y1, x2, y2]`` pixels."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def keypoint_box(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Tight boxes ``(B, 4)`` ``[x1, y1, x2, y2]`` around the valid keypoints ``(B, J, 2)`` (NaN when none)."""
    keypoints = np.asarray(keypoints, np.float64)
    valid = np.asarray(valid, bool)[..., None]
    lo = np.where(valid, keypoints, np.inf).min(axis=-2)
    hi = np.where(valid, keypoints, -np.inf).max(axis=-2)
    boxes = np.concatenate([lo, hi], axis=-1)
    return np.where(np.isfinite(boxes), boxes, np.nan)


def pck(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, normaliser: np.ndarray, threshold: float) -> np.ndarray:
    """Per-person fraction of valid joints within ``threshold * normaliser`` of the ground truth.

    Args:
        pred, gt: ``(B, J, 2)`` pixels.
        valid: ``(B, J)`` ground-truth joints that count (annotated / visible).
        normaliser: ``(B,)`` pixels, e.g. :func:`box_normaliser` of the ground-truth boxes.
        threshold: fraction of the normaliser (0.05 for PCKn@0.05).

    Returns:
        ``(B,)`` in [0, 1], NaN for a person without valid joints.
    """
    distance = np.linalg.norm(np.asarray(pred, np.float64) - np.asarray(gt, np.float64), axis=-1)
    limit = threshold * np.asarray(normaliser, np.float64)[:, None]
    return _per_person_mean((distance <= limit).astype(np.float64), valid)


def root_centred(points: np.ndarray, root: int | tuple[int, ...]) -> np.ndarray:
    """Subtract the root joint (or the mean of several joints, e.g. both hips) ``(B, J, 3)``."""
    points = np.asarray(points, np.float64)
    index = [root] if isinstance(root, int) else list(root)
    return points - points[:, index].mean(axis=1, keepdims=True)


def mpjpe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, root: int | tuple[int, ...] = 0) -> np.ndarray:
    """Mean per-joint position error after centring both skeletons on the root (pelvis) joint.

    Args:
        pred, gt: ``(B, J, 3)`` metres.
        valid: ``(B, J)`` joints that count.
        root: pelvis joint index, or indices whose mean is the root.

    Returns:
        ``(B,)`` metres (NaN for a person without valid joints).
    """
    error = np.linalg.norm(root_centred(pred, root) - root_centred(gt, root), axis=-1)
    return _per_person_mean(error, valid)


def procrustes_align(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """``pred`` mapped onto ``gt`` by the similarity transform (scale, rotation, translation) that
    minimises the squared error over the valid joints (Umeyama 1991; reflections excluded).

    Args:
        pred, gt: ``(B, J, 3)``.
        valid: ``(B, J)`` joints used to fit the transform (at least 3 for a unique rotation).

    Returns:
        ``(B, J, 3)`` aligned prediction (all joints transformed).
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    weight = np.asarray(valid, np.float64)[..., None]
    count = np.maximum(weight.sum(axis=1, keepdims=True), 1.0)
    mu_pred = (pred * weight).sum(axis=1, keepdims=True) / count
    mu_gt = (gt * weight).sum(axis=1, keepdims=True) / count
    x = (pred - mu_pred) * weight
    y = (gt - mu_gt) * weight
    covariance = np.einsum("bji,bjk->bik", y, x)  # (B, 3, 3) = sum y x^T
    u, s, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(u @ vt))
    sign = np.where(sign == 0, 1.0, sign)
    d = np.ones_like(s)
    d[:, -1] = sign
    rotation = u @ (d[:, :, None] * vt)
    variance = (x**2).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.where(variance > 0, (s * d).sum(axis=1) / variance, 1.0)
    return scale[:, None, None] * np.einsum("bik,bjk->bji", rotation, pred - mu_pred) + mu_gt


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """MPJPE after :func:`procrustes_align` (``(B,)`` metres)."""
    aligned = procrustes_align(pred, gt, valid)
    return _per_person_mean(np.linalg.norm(aligned - np.asarray(gt, np.float64), axis=-1), valid)


def pck_3d(
    pred: np.ndarray, gt: np.ndarray, valid: np.ndarray, threshold: float = 0.1, root: int | tuple[int, ...] = 0
) -> np.ndarray:
    """Per-person fraction of valid joints within ``threshold`` metres of the ground truth after
    root centring (3D-PCK@0.1 m by default).  ``(B,)``."""
    error = np.linalg.norm(root_centred(pred, root) - root_centred(gt, root), axis=-1)
    return _per_person_mean((error <= threshold).astype(np.float64), valid)
