"""Keypoint similarity: CoMotion's modified OKS (paper appendix A.3.4, spec section 4.3).

COCO's OKS with three changes: a Cauchy kernel instead of a Gaussian (a nonzero signal for
far-apart poses), one constant ``std`` for every keypoint, and a person scale estimated on the
fly from projected limb lengths (there is no ground-truth area to normalise by).

Keypoints are the 27 CoMotion points (22 SMPL joints, nose, right eye, left eye, right ear,
left ear).  Callers pass coordinates in whatever unit they compare in; the pipeline divides
pixels by 1024 so that the scale clamp [0.02, 1] means 20-1024 pixels.
"""

from __future__ import annotations

import torch

# (keypoint a, keypoint b, reference length in normalised units)
LIMBS: tuple[tuple[int, int, float], ...] = (
    (23, 24, 0.07),  # eyes
    (22, 16, 0.30),  # nose - left shoulder
    (22, 17, 0.30),  # nose - right shoulder
    (16, 17, 0.35),  # shoulders
    (16, 1, 0.55),  # left shoulder - left hip
    (17, 2, 0.55),  # right shoulder - right hip
    (16, 18, 0.26),  # left shoulder - elbow
    (17, 19, 0.26),  # right shoulder - elbow
    (20, 18, 0.25),  # left wrist - elbow
    (21, 19, 0.25),  # right wrist - elbow
    (4, 1, 0.38),  # left knee - hip
    (5, 2, 0.38),  # right knee - hip
    (4, 7, 0.40),  # left knee - ankle
    (5, 8, 0.40),  # right knee - ankle
)

MIN_SCALE = 1e-3
PAIR_SCALE_RANGE = (0.02, 1.0)


def skeleton_scale(keypoints: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Person size ``(...)`` from keypoints ``(..., 27, 2)``: the largest limb-length ratio.

    A keypoint is unusable for the scale if both coordinates are exactly 0 or its validity is
    not > 0.  Taking the max over limbs ignores foreshortened ones.  Floored at 1e-3.
    """
    usable = (keypoints != 0).any(dim=-1)
    if valid is not None:
        usable = usable & (valid > 0)
    a = torch.tensor([limb[0] for limb in LIMBS], device=keypoints.device)
    b = torch.tensor([limb[1] for limb in LIMBS], device=keypoints.device)
    length = torch.tensor([limb[2] for limb in LIMBS], dtype=keypoints.dtype, device=keypoints.device)
    ratio = (keypoints[..., a, :] - keypoints[..., b, :]).norm(dim=-1) / length
    ratio = torch.where(usable[..., a] & usable[..., b], ratio, torch.zeros_like(ratio))
    return ratio.amax(dim=-1).clamp(min=MIN_SCALE)


def oks_similarity(
    keypoints_a: torch.Tensor,
    keypoints_b: torch.Tensor,
    conf_a: torch.Tensor | None = None,
    conf_b: torch.Tensor | None = None,
    std: float = 0.08,
    return_distances: bool = False,
):
    """Pairwise similarity ``(Na, Nb)`` in [0, 1] of two sets of people ``(Na|Nb, K, 2)``.

    ``conf_*`` ``(N, K)`` weight each keypoint (default 1: every point counts, even one at the
    origin).  The pair's scale is the larger of the two people's skeleton scales, clamped to
    [0.02, 1]; per-point distance ``d`` is divided by it and scored ``1 / (1 + (d / std)^2)``;
    the score is the confidence-weighted mean (0 where all weights are 0).

    With ``return_distances`` also returns the scale-normalised distances ``(Na, Nb, K)``.
    """
    unweighted = conf_a is None and conf_b is None
    if conf_a is None:
        conf_a = torch.ones(keypoints_a.shape[:-1], dtype=keypoints_a.dtype, device=keypoints_a.device)
    if conf_b is None:
        conf_b = torch.ones(keypoints_b.shape[:-1], dtype=keypoints_b.dtype, device=keypoints_b.device)
    scale = torch.maximum(
        skeleton_scale(keypoints_a, conf_a)[:, None], skeleton_scale(keypoints_b, conf_b)[None, :]
    ).clamp(*PAIR_SCALE_RANGE)
    # cdist per keypoint keeps memory at (K, Na, Nb) and the exact (non-matmul) distance formula.
    dist = torch.cdist(
        keypoints_a.transpose(0, 1).contiguous(),
        keypoints_b.transpose(0, 1).contiguous(),
        compute_mode="donot_use_mm_for_euclid_dist",
    ).permute(1, 2, 0)
    dist = dist / scale[..., None]
    kernel = 1.0 / (1.0 + (dist / std) ** 2)
    if unweighted:  # every weight is 1: skip the (Na, Nb, K) weight tensor (NMS over ~1000 candidates)
        score = kernel.mean(dim=-1)
    else:
        weight = (conf_a[:, None] * conf_b[None, :]).sqrt()
        total = weight.sum(dim=-1)
        score = (weight * kernel).sum(dim=-1) / torch.where(total > 0, total, torch.ones_like(total))
        score = torch.where(total > 0, score, torch.zeros_like(score))
    if return_distances:
        return score, dist
    return score
