"""Training losses (paper section 4.2 and appendix A.3.2), each a small function over tensors.

Pose losses take matched predictions and targets of ``M`` people plus validity masks and return
a scalar mean over the valid entries (0 when nothing is valid, so an image without annotations
contributes no gradient).  Units: 2-D in pixels normalised by the image side, 3-D in metres.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from comotion.geometry.rotations import axis_angle_to_matrix

ROOT_KEYPOINT = 0  # pelvis


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mask = mask.to(values.dtype)
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def reprojection_loss(pred_2d: torch.Tensor, target_2d: torch.Tensor, valid: torch.Tensor, image_size: float) -> torch.Tensor:
    """L1 2-D keypoint error: mean over valid points of ``(|du| + |dv|) / image_size``.

    Args:
        pred_2d, target_2d: ``(M, 27, 2)`` pixels.
        valid: ``(M, 27)`` bool.
        image_size: side of the square network input, pixels.
    """
    error = (pred_2d - target_2d).abs().sum(-1) / image_size
    return _masked_mean(error, valid)


def root_relative_joints_loss(pred_3d: torch.Tensor, target_3d: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L1 error of root-relative 3-D keypoints (pelvis subtracted from each person), metres:
    mean over valid people and their 27 points of ``|dx| + |dy| + |dz|``.

    Args:
        pred_3d, target_3d: ``(M, 27, 3)`` camera frame.
        valid: ``(M,)`` bool.
    """
    pred = pred_3d - pred_3d[:, ROOT_KEYPOINT : ROOT_KEYPOINT + 1]
    target = target_3d - target_3d[:, ROOT_KEYPOINT : ROOT_KEYPOINT + 1]
    error = (pred - target).abs().sum(-1).mean(-1)  # (M,)
    return _masked_mean(error, valid)


def joint_angle_loss(pred_pose: torch.Tensor, target_pose: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L1 distance of the rotation matrices of the 24 SMPL joints (root orientation included):
    mean over valid people and joints of ``sum |R_pred - R_target|`` (9 entries).

    Rotation matrices avoid the axis-angle ambiguity at pi and the wrap-around of angles.

    Args:
        pred_pose, target_pose: ``(M, 72)`` axis-angle.
        valid: ``(M,)`` bool.
    """
    pred = axis_angle_to_matrix(pred_pose.reshape(-1, 24, 3))
    target = axis_angle_to_matrix(target_pose.reshape(-1, 24, 3))
    error = (pred - target).abs().sum((-1, -2)).mean(-1)  # (M,)
    return _masked_mean(error, valid)


def root_depth_loss(pred_3d: torch.Tensor, target_3d: torch.Tensor, valid: torch.Tensor, min_depth: float) -> torch.Tensor:
    """L1 error of the log depth of the root keypoint: mean over valid people of
    ``|log z_pred - log z_target|`` (depths clamped below at ``min_depth`` metres).

    Beyond the paper.  The reprojection loss sees a wrong depth only through the size of the
    projected body, so its gradient on the depth of a person 40 px tall is a fifth of that of a
    person 200 px tall; a relative depth error costs the same for both here.

    Args:
        pred_3d, target_3d: ``(M, 27, 3)`` camera frame, metres.
        valid: ``(M,)`` bool.
    """
    pred = pred_3d[:, ROOT_KEYPOINT, 2].clamp(min=min_depth).log()
    target = target_3d[:, ROOT_KEYPOINT, 2].clamp(min=min_depth).log()
    return _masked_mean((pred - target).abs(), valid)


def box_loss(pred_boxes: torch.Tensor, target_boxes: torch.Tensor, valid: torch.Tensor, image_size: float, min_height: float = 8.0) -> torch.Tensor:
    """L1 error of body boxes relative to the person's height: mean over valid people of the mean
    ``|d|`` of the four coordinates, both boxes clamped into the image, divided by the target
    box's height (at least ``min_height`` pixels).

    Beyond the paper.  The keypoint losses pull an uncertain limb to its median place, near
    the body, so the extremes of the pose, which set the person's box, come out too close
    together (the tiny model's boxes were a median 13-30 % too narrow); trained on the extremes
    directly, the box's median is unbiased.  Relative to height like the IoU the tracking
    evaluation pairs boxes with, so a small person counts as much as a large one.

    Args:
        pred_boxes, target_boxes: ``(M, 2, 2)`` ``[[x1, y1], [x2, y2]]`` pixels of the network input.
        valid: ``(M,)`` bool.
        image_size: side of the square network input, pixels.
    """
    pred = pred_boxes.clamp(0.0, image_size)
    target = target_boxes.clamp(0.0, image_size)
    height = (target[:, 1, 1] - target[:, 0, 1]).clamp(min=min_height)
    error = (pred - target).abs().mean((-1, -2)) / height
    return _masked_mean(error, valid)


def betas_loss(pred_betas: torch.Tensor, target_betas: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L1 shape error: mean over valid people of the mean ``|d beta|`` of the 10 betas.

    ``valid`` must exclude pseudo-labelled people (paper: no betas loss on pseudo-labels).
    """
    return _masked_mean((pred_betas - target_betas).abs().mean(-1), valid)


def sample_negatives(num_candidates: int, positives: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` distinct random candidate indices not in ``positives`` (fewer if not enough exist)."""
    is_negative = torch.ones(num_candidates, dtype=torch.bool)
    is_negative[positives.cpu()] = False
    pool = is_negative.nonzero()[:, 0]
    order = torch.randperm(len(pool), generator=generator)[:count]
    return pool[order].to(positives.device)


def confidence_loss(logits: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on confidence logits: matched candidates are 1, the sampled unmatched
    ones 0; mean over both sets together.

    Args:
        logits: ``(N,)`` confidence logits of all candidates of an image.
        positives, negatives: long indices into ``logits``.
    """
    index = torch.cat([positives, negatives])
    if index.numel() == 0:
        return logits.sum() * 0.0
    target = torch.cat([torch.ones(len(positives)), torch.zeros(len(negatives))]).to(logits)
    return F.binary_cross_entropy_with_logits(logits[index], target)


def keypoint_heatmaps(keypoints_2d: torch.Tensor, valid: torch.Tensor, size: int, stride: int, sigma: float) -> torch.Tensor:
    """Target heatmaps: per keypoint type, the max over people of a Gaussian at each point.

    Args:
        keypoints_2d: ``(P, 27, 2)`` pixels.
        valid: ``(P, 27)`` bool.
        size: side of the heatmap in cells.
        stride: pixels per cell; cell ``j`` is centred at ``(j + 0.5) * stride``.
        sigma: Gaussian standard deviation in cells.

    Returns:
        ``(27, size, size)`` in [0, 1].
    """
    gauss = _keypoint_gaussians(keypoints_2d, valid, size, stride, sigma)
    if gauss.shape[0] == 0:
        return gauss.new_zeros(keypoints_2d.shape[1], size, size)
    return gauss.amax(0)


def _keypoint_gaussians(keypoints_2d: torch.Tensor, valid: torch.Tensor, size: int, stride: int, sigma: float) -> torch.Tensor:
    """``(P, K, 2)`` pixels -> ``(P, K, size, size)`` Gaussians of ``sigma`` cells (zero where not
    ``valid``); cell ``j`` is centred at ``(j + 0.5) * stride`` pixels."""
    centres = torch.arange(size, dtype=keypoints_2d.dtype, device=keypoints_2d.device) + 0.5
    cells = keypoints_2d / stride  # (P, K, 2) in cell units
    du = centres - cells[..., 0:1]  # (P, K, size) along x
    dv = centres - cells[..., 1:2]
    gauss = torch.exp(-(dv[..., :, None] ** 2 + du[..., None, :] ** 2) / (2 * sigma**2))
    return gauss * valid[..., None, None].to(gauss.dtype)


def attention_localization_loss(
    logits: torch.Tensor, keypoints_2d: torch.Tensor, valid: torch.Tensor, size: int, stride: int, sigma: float
) -> torch.Tensor:
    """Cross-entropy of image-attention distributions against where each person is.

    The target of person ``m`` is the normalised sum of Gaussians (``sigma`` cells) at its valid
    keypoints on the ``size x size`` feature grid; every query of the person is pulled towards it.

    Args:
        logits: ``(M, Q, size * size)`` attention logits of ``Q`` queries per person (row-major cells).
        keypoints_2d: ``(M, 27, 2)`` pixels where the people are in the attended image.
        valid: ``(M, 27)`` bool.
        stride: pixels per cell.

    Returns:
        Mean over people with a valid keypoint and their queries (0 when there are none).
    """
    target = _keypoint_gaussians(keypoints_2d, valid, size, stride, sigma).sum(1).flatten(1)  # (M, cells)
    mass = target.sum(-1, keepdim=True)
    seen = mass[:, 0] > 0
    target = target[seen] / mass[seen]
    if target.shape[0] == 0:
        return logits.sum() * 0.0
    cross_entropy = -(target[:, None] * torch.log_softmax(logits[seen].float(), dim=-1)).sum(-1)
    return cross_entropy.mean()


def heatmap_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error of predicted keypoint heatmaps ``(27, h, w)`` against targets (the
    auxiliary loss of Cao et al., 2017)."""
    return F.mse_loss(pred, target)
