"""Pinhole camera with 2x3 intrinsics ``K = [[fx, s, cx], [t, fy, cy]]`` (pixels).

Conventions (OpenCV): x right, y down, z forward, metres; pixel j covers [j, j+1).
"""

from __future__ import annotations

import torch

MIN_DEPTH = 1e-3


def project_points(points: torch.Tensor, K: torch.Tensor, min_depth: float = MIN_DEPTH) -> torch.Tensor:
    """Project camera-frame points ``(..., P, 3)`` with ``K (..., 2, 3)`` to pixels ``(..., P, 2)``.

    Depths below ``min_depth`` are clamped before dividing, so points behind the camera keep the
    signs of x and y and land far outside the image instead of producing inf/nan.
    """
    depth = points[..., 2:].clamp(min=min_depth)
    normalized = torch.cat([points[..., :2] / depth, torch.ones_like(depth)], dim=-1)
    return normalized @ K.transpose(-1, -2)


def pixels_to_camera(uv: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels ``(..., 2)`` -> normalised camera coordinates ``((u - cx) / fx, (v - cy) / fy)``.

    ``K``'s leading dims broadcast against ``uv``'s leading dims (pass ``K[:, None]`` for
    per-batch intrinsics over ``(B, P, 2)`` points).
    """
    fx, fy = K[..., 0, 0], K[..., 1, 1]
    cx, cy = K[..., 0, 2], K[..., 1, 2]
    return torch.stack([(uv[..., 0] - cx) / fx, (uv[..., 1] - cy) / fy], dim=-1)


def default_intrinsics(height: int, width: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The reference's default ``K (2, 3)``: f = 2 * max(H, W), principal point at the centre."""
    focal = 2.0 * max(height, width)
    return torch.tensor([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0]], dtype=dtype)


def points_in_image(uv: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bool ``(..., P)``: strictly inside the image, ``0 < u < W`` and ``0 < v < H``."""
    u, v = uv[..., 0], uv[..., 1]
    return (u > 0) & (u < width) & (v > 0) & (v < height)


def boxes_from_points(uv: torch.Tensor, pad: float = 0.0) -> torch.Tensor:
    """Axis-aligned boxes ``(..., 2, 2)`` = ``[[x1, y1], [x2, y2]]`` around points ``(..., P, 2)``.

    With ``pad > 0`` both axes grow on both sides by ``pad * max(width, height)`` (the
    reference pads by the longer side so thin people still get a sensible box).
    """
    lo = uv.amin(dim=-2)
    hi = uv.amax(dim=-2)
    if pad:
        side = (hi - lo).amax(dim=-1, keepdim=True)
        lo = lo - pad * side
        hi = hi + pad * side
    return torch.stack([lo, hi], dim=-2)


def clamp_boxes_reference(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """The reference's box clamping: min corner >= 0.01, max x <= W - 1, max y <= H - 1.

    Only these three bounds are applied (quirk Q19): a box beyond the right/bottom border keeps a
    min corner larger than its max corner.
    """
    lo = boxes[..., 0, :].clamp(min=0.01)
    limit = torch.tensor([width - 1.0, height - 1.0], dtype=boxes.dtype, device=boxes.device)
    hi = torch.minimum(boxes[..., 1, :], limit)
    return torch.stack([lo, hi], dim=-2)


def clamp_boxes_to_image(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Clamp both corners of ``(..., 2, 2)`` boxes into ``[0, W - 1] x [0, H - 1]`` (the fixed Q19)."""
    limit = torch.tensor([width - 1.0, height - 1.0], dtype=boxes.dtype, device=boxes.device)
    return torch.minimum(boxes.clamp(min=0.0), limit)
