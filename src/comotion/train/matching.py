"""Assigning detection candidates to ground-truth people (paper appendix A.3.2, "Supervision").

All candidates of an image are flattened and matched one-to-one to the annotated people with the
Hungarian algorithm.  The score of a (candidate, person) pair is the OKS of the candidate's
projected keypoints against the annotation, computed at the **annotation's** scale (the paper:
"when comparing to a ground-truth annotation we use the scale of the annotation"), times the
candidate's confidence ``sigmoid(logit) ** alpha`` so that, among similarly placed candidates,
confident ones are matched and receive the pose losses.  The cost minimised is the negated score.
``alpha = 0`` is pure OKS matching; the default 0.5 lets confidence break near-ties without
overruling geometry while the confidence head is still untrained.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from comotion.geometry.similarity import PAIR_SCALE_RANGE, skeleton_scale


@dataclass
class Matching:
    """Result of :func:`match_candidates` for one image.

    Attributes:
        candidate: ``(K,)`` long, matched candidate indices.
        person: ``(K,)`` long, the person each one is matched to (``K = min(N, M)``).
        score: ``(N, M)`` the matching score matrix (OKS x confidence term).
        oks: ``(N, M)`` the OKS part alone.
    """

    candidate: torch.Tensor
    person: torch.Tensor
    score: torch.Tensor
    oks: torch.Tensor


def ground_truth_oks(pred: torch.Tensor, target: torch.Tensor, target_valid: torch.Tensor, std: float = 0.08) -> torch.Tensor:
    """OKS (Cauchy kernel, spec 4.3) of predictions against annotations at the annotation's scale.

    Args:
        pred: ``(N, 27, 2)`` predicted keypoints, normalised units (pixels / normaliser).
        target: ``(M, 27, 2)`` annotated keypoints, same units.
        target_valid: ``(M, 27)`` bool, which annotated points count.
        std: width of the Cauchy kernel relative to the person's scale.

    Returns:
        ``(N, M)`` in [0, 1]; 0 for a person without valid points.
    """
    weight = target_valid.to(pred.dtype)  # (M, 27)
    scale = skeleton_scale(target, target_valid).clamp(*PAIR_SCALE_RANGE)  # (M,)
    distance = (pred[:, None] - target[None]).norm(dim=-1) / scale[None, :, None]  # (N, M, 27)
    kernel = 1.0 / (1.0 + (distance / std) ** 2)
    total = weight.sum(-1)  # (M,)
    return (kernel * weight).sum(-1) / total.clamp(min=1e-9) * (total > 0)


def match_candidates(
    pred_2d: torch.Tensor,
    conf_logit: torch.Tensor,
    target_2d: torch.Tensor,
    target_valid: torch.Tensor,
    normalizer: float,
    std: float = 0.08,
    alpha: float = 0.5,
) -> Matching:
    """Hungarian assignment of ``N`` candidates to ``M`` annotated people of one image.

    Args:
        pred_2d: ``(N, 27, 2)`` candidate keypoints, pixels.
        conf_logit: ``(N,)`` confidence logits.
        target_2d: ``(M, 27, 2)`` annotated keypoints, pixels.
        target_valid: ``(M, 27)`` bool.
        normalizer: pixels per OKS unit (the pipeline compares pixels / 1024 at 512 input).
        std: OKS kernel width.
        alpha: exponent of the confidence factor ``sigmoid(logit) ** alpha``.

    Every person gets a candidate when ``N >= M``.  No gradient flows through the matching.
    """
    with torch.no_grad():
        oks = ground_truth_oks(pred_2d / normalizer, target_2d / normalizer, target_valid, std)
        # Unsupervised candidates can decode to non-finite keypoints: they match nothing.
        oks = torch.nan_to_num(oks, nan=0.0, posinf=0.0, neginf=0.0)
        score = oks * torch.sigmoid(conf_logit)[:, None] ** alpha
        rows, cols = linear_sum_assignment(-score.double().cpu().numpy())
    device = pred_2d.device
    return Matching(
        candidate=torch.as_tensor(np.asarray(rows), dtype=torch.long, device=device),
        person=torch.as_tensor(np.asarray(cols), dtype=torch.long, device=device),
        score=score,
        oks=oks,
    )
