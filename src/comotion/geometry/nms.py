"""Non-maximum suppression of pose candidates by keypoint similarity (spec section 4.4)."""

from __future__ import annotations

import torch

from comotion.geometry.similarity import oks_similarity


def oks_nms(
    keypoints: torch.Tensor,
    logits: torch.Tensor,
    std: float = 0.08,
    iou_thr: float = 0.4,
    conf_thr: float = 0.2,
    transitive: bool = False,
) -> torch.Tensor:
    """Indices (long, decreasing confidence) of the candidates that survive NMS.

    Args:
        keypoints: ``(N, 27, 2)`` candidate keypoints (pixels / 1024 in the pipeline).
        logits: ``(N,)`` confidence logits; candidates with ``sigmoid(logit) <= conf_thr`` drop.
        std: OKS kernel width.
        iou_thr: a candidate is suppressed by a more confident one with similarity above this.
        transitive: ``False`` reproduces the reference (quirk Q4): a candidate is suppressed by
            *any* more confident candidate, even one that was itself suppressed.  ``True`` is
            classic greedy NMS, where only kept candidates suppress.
    """
    order = torch.argsort(logits, descending=True, stable=True)
    order = order[torch.sigmoid(logits[order]) > conf_thr]
    if order.numel() == 0:
        return order
    similarity = oks_similarity(keypoints[order], keypoints[order], std=std)
    above = torch.triu(similarity > iou_thr, diagonal=1)  # above[i, j]: i earlier than j
    if not transitive:
        return order[~above.any(dim=0)]
    keep = torch.ones(order.numel(), dtype=torch.bool, device=order.device)
    for i in range(order.numel()):
        if keep[i]:
            keep &= ~above[i]
    return order[keep]
